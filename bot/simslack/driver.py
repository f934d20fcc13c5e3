"""Plays the people of a simulated workspace: signed slash commands, form submissions and clicks."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from bot.simslack.server import Posted, SimSlack, sign_request


@dataclass
class Response:
    """What the bot answered over HTTP."""

    status: int
    body: Any

    @property
    def text(self) -> str:
        """The reply's text (ephemeral command replies), or ''."""
        if isinstance(self.body, dict):
            parts = [self.body.get("text") or ""]
            for block in self.body.get("blocks") or []:
                for el in block.get("elements") or []:
                    if el.get("type") == "mrkdwn":
                        parts.append(el["text"])
            return "\n".join(p for p in parts if p)
        return self.body or ""


def _state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Slack's view.state.values for these answers (keyed by block id)."""
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        kind, action_id, answer = element["type"], element["action_id"], answers.get(block["block_id"])
        options = {o["value"]: o for o in element.get("options", [])}
        if kind == "plain_text_input":
            state = {"value": answer}
        elif kind in ("static_select", "radio_buttons"):
            state = {"selected_option": options[answer] if answer is not None else None}
        elif kind == "checkboxes":
            state = {"selected_options": [options[v] for v in answer or []]}
        elif kind == "datepicker":
            state = {"selected_date": answer}
        elif kind == "timepicker":
            state = {"selected_time": answer}
        elif kind == "multi_users_select":
            state = {"selected_users": list(answer or [])}
        else:
            raise ValueError(f"no simulation for {kind}")
        values[block["block_id"]] = {action_id: {"type": kind, **state}}
    return values


def command_body(sim: SimSlack, user: str, command: str, text: str, trigger_id: str) -> str:
    """The form body Slack POSTs when `user` types a slash command."""
    return urllib.parse.urlencode(
        {
            "token": "legacy-verification-unused",
            "team_id": sim.team_id,
            "api_app_id": sim.app_id,
            "channel_id": "D" + user,
            "user_id": user,
            "command": command,
            "text": text,
            "response_url": sim.base_url + "response",
            "trigger_id": trigger_id,
        }
    )


class Driver:
    """Sends what Slack would send when a person acts, signed with the app's signing secret."""

    def __init__(self, url: str, signing_secret: str, sim: SimSlack, settle: Callable[[], None] = lambda: None):
        self.url = url
        self.secret = signing_secret
        self.sim = sim
        self.settle = settle  # called after each request, e.g. to deliver the outbox
        self.stacks: dict[str, list[dict[str, Any]]] = {}
        self.last: tuple[str, dict[str, str]] | None = None  # the last body and headers sent, to replay

    def post(self, body: str, headers: dict[str, str] | None = None) -> Response:
        """POST a raw body to /slack/events (signed unless headers are given)."""
        headers = headers or sign_request(self.secret, body)
        self.last = (body, headers)
        request = urllib.request.Request(self.url, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, raw = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read().decode()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            parsed = raw
        self.settle()
        return Response(status, parsed)

    def _payload(self, payload: dict[str, Any]) -> Response:
        return self.post(urllib.parse.urlencode({"payload": json.dumps(payload)}))

    def command(self, user: str, command: str, text: str = "") -> Response:
        """A slash command typed by `user`."""
        views_before = len(self.sim.views(user))
        answer = self.post(command_body(self.sim, user, command, text, self.sim.new_trigger_id(user)))
        opened = self.sim.views(user)[views_before:]
        if opened:
            self.stacks[user] = [opened[-1].view]
        return answer

    def view(self, user: str) -> dict[str, Any]:
        """The modal `user` is looking at now."""
        return self.stacks[user][-1]

    def submit(self, user: str, answers: dict[str, Any]) -> Response:
        """Submit the modal `user` is looking at, with these answers by block id."""
        view = self.view(user)
        payload = {
            "type": "view_submission",
            "team": {"id": self.sim.team_id},
            "api_app_id": self.sim.app_id,
            "user": {"id": user},
            "trigger_id": self.sim.new_trigger_id(user),
            "view": {**view, "id": view.get("id", "V-sim"), "state": {"values": _state(view, answers)}},
        }
        answer = self._payload(payload)
        action = (answer.body or {}).get("response_action") if isinstance(answer.body, dict) else None
        if action == "push":
            self.stacks[user].append(answer.body["view"])
        elif action == "update":
            self.stacks[user][-1] = answer.body["view"]
        elif action == "clear" or (answer.status == 200 and action is None):
            self.stacks[user] = self.stacks[user][:-1] if action is None else []
        return answer

    def click(self, user: str, message: Posted, label: str, channel: str | None = None) -> Response:
        """Click the button labelled `label` on a message `user` can see."""
        for block in message.blocks or []:
            for element in block.get("elements") or []:
                if element.get("type") == "button" and element["text"]["text"] == label:
                    views_before = len(self.sim.views(user))
                    answer = self._payload(
                        {
                            "type": "block_actions",
                            "team": {"id": self.sim.team_id},
                            "api_app_id": self.sim.app_id,
                            "user": {"id": user},
                            "trigger_id": self.sim.new_trigger_id(user),
                            "channel": {"id": channel or message.channel},
                            "container": {"type": "message", "message_ts": message.ts, "channel_id": channel or message.channel},
                            "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
                            "actions": [{**element, "block_id": block.get("block_id", "b"), "action_ts": "1"}],
                        }
                    )
                    opened = self.sim.views(user)[views_before:]
                    if opened:
                        self.stacks[user] = [opened[-1].view]
                    return answer
        raise LookupError(f"no button {label!r} on that message")

    def action(self, user: str, action_id: str, value: str, channel: str | None = None) -> Response:
        """A click on a button with this action id and value, as a tampered client could send it."""
        return self._payload(
            {
                "type": "block_actions",
                "team": {"id": self.sim.team_id},
                "api_app_id": self.sim.app_id,
                "user": {"id": user},
                "trigger_id": self.sim.new_trigger_id(user),
                "channel": {"id": channel or "D" + user},
                "container": {"type": "message", "message_ts": "1.1", "channel_id": channel or "D" + user},
                "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b", "action_ts": "1"}],
            }
        )
