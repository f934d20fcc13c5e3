"""Plays the people of a simulated Google Chat: interaction events with a correctly signed bearer token."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

from bot.gchat.render import COMMANDS_OPENING_A_DIALOG, OPENS_A_DIALOG
from bot.simchat.server import ChatMessage, SimChat
from bot.simslack.driver import Response as SlackResponse

# Chat sends a command's id as configured in the console; the app dispatches on the name, so any ids do.
_COMMAND_IDS: dict[str, str] = {}


class Response(SlackResponse):
    """What the app answered over HTTP (a Chat message, a dialog's actionResponse, or an error)."""

    @property
    def text(self) -> str:
        """The answer's text and its cards' words, one item per line, as the person sees them; or ''."""
        if not isinstance(self.body, dict):
            return self.body or ""
        status = ((self.body.get("actionResponse") or {}).get("dialogAction") or {}).get("actionStatus") or {}
        if status:
            return str(status.get("userFacingMessage") or "")  # a dialog closed with a notice
        shown = ChatMessage(name="reply/messages/0", space="reply", text=str(self.body.get("text") or ""),
                            cards_v2=self.body.get("cardsV2") or [], create_time="")
        return shown.plain()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _command_id(name: str) -> str:
    return _COMMAND_IDS.setdefault(name, str(len(_COMMAND_IDS) + 1))


def form_inputs(answers: dict[str, Any]) -> dict[str, Any]:
    """Chat's common.formInputs for answers: a string or a list of strings is a stringInputs; a dict
    (e.g. {"dateInput": {"msSinceEpoch": "…"}} or {"timeInput": {"hours": 14, "minutes": 30}}) is sent as is."""
    inputs: dict[str, Any] = {}
    for name, answer in answers.items():
        if isinstance(answer, dict):
            inputs[name] = answer
        else:
            values = [answer] if isinstance(answer, str) else list(answer or [])
            inputs[name] = {"stringInputs": {"value": values}}
    return inputs


class ChatDriver:
    """Sends interaction events to the app at `url` (POST /gchat/events) as Google Chat would, each with
    `Authorization: Bearer <token minted by the sim for audience>`."""

    def __init__(self, url: str, sim: SimChat, audience: str):
        self.url, self.sim, self.audience = url, sim, audience

    # ----- events -----

    def command(self, user: str, name: str, argument: str = "", space: str | None = None, *, dialog: bool | None = None) -> Response:
        """A slash command (`/out 2h`): a MESSAGE with the slash-command annotation, in the user's DM by default;
        `dialog`: a command configured to open a dialog (isDialogEvent, REQUEST_DIALOG); by default, as the
        README says to configure them."""
        if dialog is None:
            dialog = name in COMMANDS_OPENING_A_DIALOG
        command_id = _command_id(name)
        text = f"{name} {argument}".rstrip()
        message = self._message(user, space, text)
        message.update(
            argumentText=f" {argument}" if argument else "",
            slashCommand={"commandId": command_id},
            annotations=[{
                "type": "SLASH_COMMAND", "startIndex": 0, "length": len(name),
                "slashCommand": {"bot": {"name": "users/app", "type": "BOT"}, "type": "INVOKE",
                                 "commandName": name, "commandId": command_id, "triggersDialog": dialog},
            }],
        )
        event = self._event("MESSAGE", user, space, message=message)
        if dialog:
            event.update(isDialogEvent=True, dialogEventType="REQUEST_DIALOG")
        return self.send(event)

    def say(self, user: str, text: str, space: str | None = None) -> Response:
        """A plain message to the app (in the user's DM by default)."""
        return self.send(self._event("MESSAGE", user, space, message={**self._message(user, space, text), "argumentText": text}))

    def click(self, user: str, function: str, value: str, space: str | None = None, message_name: str | None = None,
              *, dialog: bool | None = None) -> Response:
        """A button click: CARD_CLICKED with common.invokedFunction and common.parameters {"value": …};
        a button that opens a dialog (interaction OPEN_DIALOG) arrives as a dialog request."""
        event = self._event("CARD_CLICKED", user, space, common={"invokedFunction": function, "parameters": {"value": value}})
        event["action"] = {"actionMethodName": function, "parameters": [{"key": "value", "value": value}]}
        if dialog if dialog is not None else function in OPENS_A_DIALOG:
            event.update(isDialogEvent=True, dialogEventType="REQUEST_DIALOG")
        if message_name:
            event["message"] = {"name": message_name}
        return self.send(event)

    def click_button(self, user: str, message: Any, label: str) -> Response:
        """Click the button labelled `label` on a message the sim shows (a ChatMessage)."""
        for button in message.buttons:
            if button["text"] == label:
                return self.click(user, button["function"], button["parameters"].get("value", ""), message.space, message.name)
        raise ValueError(f"no button {label!r} on {message.name}")

    def submit(self, user: str, function: str, answers: dict[str, Any], space: str | None = None, state: str | None = None) -> Response:
        """A dialog submission: CARD_CLICKED, isDialogEvent, SUBMIT_DIALOG, common.formInputs (and the dialog's
        `state` parameter, as its submit button carries it)."""
        common: dict[str, Any] = {"invokedFunction": function, "formInputs": form_inputs(answers)}
        if state is not None:
            common["parameters"] = {"state": state}
        event = self._event("CARD_CLICKED", user, space, common=common)
        event.update(isDialogEvent=True, dialogEventType="SUBMIT_DIALOG")
        return self.send(event)

    def cancel(self, user: str, function: str, space: str | None = None) -> Response:
        """A dialog closed by the person (CANCEL_DIALOG)."""
        event = self._event("CARD_CLICKED", user, space, common={"invokedFunction": function})
        event.update(isDialogEvent=True, dialogEventType="CANCEL_DIALOG")
        return self.send(event)

    def added(self, user: str, space: str | None = None) -> Response:
        """The app added to a space (or a person starting a DM with it): ADDED_TO_SPACE."""
        return self.send(self._event("ADDED_TO_SPACE", user, space))

    def removed(self, user: str, space: str | None = None) -> Response:
        """The app removed from a space: REMOVED_FROM_SPACE."""
        return self.send(self._event("REMOVED_FROM_SPACE", user, space))

    # ----- the wire -----

    def send(self, event: dict[str, Any], token: str | None = None, authorization: str | None = None) -> Response:
        """POST an event; `token` replaces the minted one, `authorization` the whole header ('' sends none)."""
        answer = self._post(event, token, authorization)
        kind = ((answer.body or {}).get("actionResponse") or {}).get("type") if isinstance(answer.body, dict) else None
        if kind == "DIALOG" and not event.get("isDialogEvent"):
            # Real Chat shows an error instead: a dialog may only answer a command or button that asked for one.
            raise AssertionError(f"a dialog in answer to an event that did not request one: {event.get('type')}")
        return answer

    def _post(self, event: dict[str, Any], token: str | None, authorization: str | None) -> Response:
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Google-Dynamite"}
        header = authorization if authorization is not None else f"Bearer {token or self.sim.mint_token(self.audience)}"
        if header:
            headers["Authorization"] = header
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return Response(answer.status, _json(answer.read()))
        except urllib.error.HTTPError as error:
            return Response(error.code, _json(error.read()))

    def _space(self, user: str, space: str | None) -> dict[str, Any]:
        if space is None or space == self.sim.dm_space(user):
            name = self.sim.dm_space(user) or f"spaces/new-dm-{user.rsplit('/', 1)[-1]}"
            return {"name": name, "type": "DM", "spaceType": "DIRECT_MESSAGE", "singleUserBotDm": True}
        return {"name": space, "type": "ROOM", "spaceType": "SPACE", "displayName": self.sim.space_names.get(space, space)}

    def _user(self, user: str) -> dict[str, Any]:
        return {"name": user, "displayName": self.sim.directory.get(user, user), "type": "HUMAN", "domainId": "sim"}

    def _message(self, user: str, space: str | None, text: str) -> dict[str, Any]:
        where = self._space(user, space)
        return {"name": f"{where['name']}/messages/in-{len(self.sim.calls)}", "sender": self._user(user),
                "createTime": _now(), "text": text, "space": where,
                "thread": {"name": f"{where['name']}/threads/in-{len(self.sim.calls)}"}}

    def _event(self, kind: str, user: str, space: str | None, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind, "eventTime": _now(), "space": self._space(user, space), "user": self._user(user),
                                 "common": {"hostApp": "CHAT", "userLocale": "en-GB", "timeZone": {"id": "Europe/London", "offset": 0}}}
        common = extra.pop("common", None)
        if common:
            event["common"].update(common)
        event.update(extra)
        return event


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
