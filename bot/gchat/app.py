"""POST /gchat/events: Google Chat's interaction events, verified, dispatched to commands/, answered synchronously.

The token is checked before the body is read; a request that fails it gets 401 and changes nothing. Slash
commands are dispatched on their name, buttons on their function (the same action ids as Slack's, values
parsed strictly by bot/buttons.py), dialog submissions on the form's callback id. The clicker is always the
event's `user.name`; every command checks what that person may do against the database.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from typing import Any, Callable, Iterable

from bot import buttons, forms
from bot.gchat import forms as dialogs
from bot.gchat import exports as chat_exports
from bot.gchat import render
from bot.gchat.auth import ChatAuthError, ChatVerifier
from bot.interactions import FAILED, HELP, answer, on_own_visit, outcome_form, team_check
from commands import aftervisit, board, confidential, decide, drill, outing, request, safeguarding, safety
from commands.context import CommandError, Ctx, Reply
from commands.logsafe import log_failure
from flows import actions
from flows.messages import clean
from flows.request import FieldErrors

log = logging.getLogger("visitsafe.gchat")

# Chat's events are a few KB; anything near this is not from Chat (waitress refuses more before we read it).
MAX_BODY = 1024 * 1024
NOT_MINE = Reply(f":warning: {buttons.NOT_MINE}")
EXPIRED_FORM = "This form has expired: click the button again."
WELCOME = (
    ":wave: Hello, I am VisitSafe: I keep staff safe on home visits. Request a visit with `/visit`, sign out with"
    " `/out`, check in with `/checkin`, sign back with `/back`; in an emergency `/sos`.\n"
) + HELP
# A start button may carry a suffix on Slack (its ids must be unique in a message); Chat's never do, both accepted.
_START = re.compile(rf"^({actions.START_VISIT}|{actions.START_ROUND})(:\d+)?$")

Json = dict[str, Any]


def _obj(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


NOT_A_DIALOG_COMMAND = (
    ":warning: `{command}` opens a form, but the Chat app is not configured to let it: ask your Google Workspace"
    " administrator to tick *Opens a dialog* for `{command}` in the Chat API's configuration."
)


class Event:
    """The parts of an interaction event the app reads, each defaulting to empty on a malformed event."""

    def __init__(self, raw: Json):
        self.raw = raw
        self.type = _str(raw.get("type"))
        self.user = _str(_obj(raw.get("user")).get("name"))
        space = _obj(raw.get("space"))
        self.space = _str(space.get("name"))
        self.in_dm = space.get("spaceType") == "DIRECT_MESSAGE" or space.get("type") == "DM"
        self.message = _obj(raw.get("message"))
        self.common = _obj(raw.get("common"))
        self.dialog = bool(raw.get("isDialogEvent"))
        self.dialog_type = _str(raw.get("dialogEventType"))

    @property
    def command(self) -> str | None:
        """The slash command's name (`/out`) from the message's SLASH_COMMAND annotation, if any."""
        for note in self.message.get("annotations") or []:
            note = _obj(note)
            if note.get("type") == "SLASH_COMMAND":
                return _str(_obj(note.get("slashCommand")).get("commandName")) or None
        return "" if self.message.get("slashCommand") else None  # a command without a name: unknown

    @property
    def argument(self) -> str:
        """The typed text after the command (or the whole text the person sent the app), cleaned."""
        text = self.message.get("argumentText")
        return clean(_str(text if isinstance(text, str) else self.message.get("text")).strip())

    @property
    def function(self) -> str:
        return _str(self.common.get("invokedFunction"))

    @property
    def value(self) -> str | None:
        """A button's `value` parameter (None if it has none)."""
        value = _obj(self.common.get("parameters")).get("value")
        return value if isinstance(value, str) else None


class ChatApp:
    """The WSGI handler of POST /gchat/events for one running bot."""

    def __init__(self, ctx: Ctx, verifier: ChatVerifier, names: Callable[[tuple[str, ...]], list[tuple[str, str]]] | None = None):
        self.ctx = ctx
        self.verifier = verifier
        # (id, name) of people for a picker: the policy's staff directory (Chat has no profile lookup here).
        self.names = names or self._staff_names
        self.people = render.staff_names(ctx.policy)
        # This server's https address for download links (set by the runtime from VISITSAFE_PUBLIC_URL).
        self.public_url: str | None = None
        ctx_ = ctx
        self.slash: dict[str, Callable[[Event], Json]] = {
            "/out": self._command(lambda u, t: outing.out(ctx_, u, t)),
            "/back": self._command(lambda u, t: outing.back(ctx_, u, t)),
            "/checkin": self._command(lambda u, t: safety.checkin(ctx_, u, t)),
            "/extend": self._command(lambda u, t: safety.extend(ctx_, u, t)),
            "/next": self._command(lambda u, t: outing.next_visit(ctx_, u)),
            "/sos": self._command(lambda u, t: safety.sos(ctx_, u, t)),
            # The board, and export / report as one-time links (bot/gchat/exports.py).
            "/visits": self._command(lambda u, t: chat_exports.visits(ctx_, self.public_url, u, t)),
            "/visit": self._visit_command,
            "/visitsafe": self._visitsafe_command,
            "/confidential": self._confidential_command,
        }
        # Buttons whose value is one visit id: function -> what it does for the clicker.
        self.clicks: dict[str, Callable[[Event, int], Json]] = {
            actions.APPROVE: self._told(lambda u, v: decide.approve(ctx_, u, v)),
            actions.CANCEL_VISIT: self._told(lambda u, v: decide.cancel(ctx_, u, v)),
            actions.CHECKIN_OK: self._told(on_own_visit(ctx_, lambda u: safety.checkin(ctx_, u))),
            actions.VISITOR_BACK: self._told(on_own_visit(ctx_, lambda u: outing.back(ctx_, u, ""))),
            actions.NEXT_VISIT: self._told(on_own_visit(ctx_, lambda u: outing.next_visit(ctx_, u))),
            actions.ALERT_ACK: self._told(lambda u, v: safety.acknowledge(ctx_, u, v)),
            actions.ALERT_NO_ANSWER: self._told(lambda u, v: safety.no_answer(ctx_, u, v)),
            actions.DRILL_ACK: self._told(lambda u, m: drill.acknowledge(ctx_, u, m)),
            actions.DECLINE: self._form_button(lambda u, v: decide.check_can_decide(ctx_, u, v), forms.decline),
            actions.CHECKIN_EXTEND: self._form_button(lambda u, v: team_check(ctx_, u, v), forms.extend),
            actions.ALERT_SAFE: self._form_button(lambda u, v: safety.check_responder(ctx_, u, v), forms.confirm_safe),
            actions.CONFIDENTIAL: self._confidential_click,
        }
        # One-field forms whose state is a visit id: callback -> (field, what the submission does).
        self.one_field: dict[str, tuple[str, Callable[[str, int, str], Reply]]] = {
            actions.DECLINE_FORM: ("reason", lambda u, v, text: decide.decline(ctx_, u, v, text)),
            actions.EXTEND_FORM: ("duration", lambda u, v, text: safety.extend(ctx_, u, text)),
            actions.SAFE_FORM: ("note", lambda u, v, text: safety.confirm_safe(ctx_, u, v, text)),
        }
        self._add_safeguarding(ctx_)
        self._add_after_visit()

    # ----- HTTP -----

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start_response, "405 Method Not Allowed", b"POST only", "text/plain")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _respond(start_response, "413 Payload Too Large", b"body too large", "text/plain")
        try:
            self.verifier.verify(environ.get("HTTP_AUTHORIZATION"))
        except ChatAuthError as exc:
            # The reason is ours (never the token's claims): enough to tell a wrong audience from an expired token.
            log.warning("refused a /gchat/events request: %s", exc)
            if exc.unavailable:
                return _respond(start_response, "503 Service Unavailable", b"cannot check the token now", "text/plain")
            return _respond(start_response, "401 Unauthorized", b"invalid token", "text/plain")
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return _respond(start_response, "400 Bad Request", b"not an interaction event", "text/plain")
        try:
            out = self.handle(Event(event))
        except Exception as exc:  # noqa: BLE001 - the person must hear back, not see Chat's "not responding"
            log_failure(log, "a Google Chat event", exc)
            out = render.reply(FAILED)
        return _respond(start_response, "200 OK", json.dumps(out).encode(), "application/json")

    # ----- dispatch -----

    def handle(self, event: Event) -> Json:
        """The synchronous answer to one verified event: a Chat message, a dialog actionResponse, or {}."""
        if not event.user.startswith("users/"):
            return {}
        log.info("chat %s from %s", event.type if not event.command else event.command, event.user)
        if event.type == "MESSAGE":
            out = self._message(event)
            if (out.get("actionResponse") or {}).get("type") == "DIALOG" and not event.dialog:
                # Chat would show an error: the command is not configured to open a dialog. Say how to fix it.
                return self._reply(event, Reply(NOT_A_DIALOG_COMMAND.format(command=clean(event.command or "")[:40])))
            return out
        if event.type == "CARD_CLICKED":
            if event.dialog and event.dialog_type == "SUBMIT_DIALOG":
                return self._submitted(event)
            if event.dialog and event.dialog_type == "CANCEL_DIALOG":
                return dialogs.closed()
            return self._clicked(event)
        if event.type == "ADDED_TO_SPACE":
            return render.reply(Reply(WELCOME))
        return {}  # REMOVED_FROM_SPACE, and event types the app does not use

    def _reply(self, event: Event, reply: Reply) -> Json:
        """A reply only the person who acted sees (in a DM everyone who can see it is them)."""
        if event.dialog and event.dialog_type == "REQUEST_DIALOG":
            # A command configured to open a dialog must answer with a dialog action: say it as a notice.
            return dialogs.closed(render.text(reply.text)[:1000])
        return render.reply(reply, None if event.in_dm else event.user, self.people)

    def _message(self, event: Event) -> Json:
        name = event.command
        if name is None:
            if not event.in_dm:
                return self._reply(event, Reply(HELP))  # the app @mentioned in a space
            # A typed answer to "Still OK?" counts as I'm OK; any typed text is checked for the duress word.
            return self._reply(event, answer(lambda: safety.typed(self.ctx, event.user, event.argument), "typed message"))
        run = self.slash.get(name)
        if run is None:
            return self._reply(event, Reply(f":warning: I do not know the command `{clean(name)[:40]}`.\n{HELP}"))
        return run(event)

    def _command(self, run: Callable[[str, str], Reply]) -> Callable[[Event], Json]:
        return lambda event: self._reply(event, answer(lambda: run(event.user, event.argument)))

    def _visit_command(self, event: Event) -> Json:
        return dialogs.dialog(forms.visit_details(self.ctx.now().astimezone(self.ctx.policy.tz).date()))

    def _visitsafe_command(self, event: Event) -> Json:
        if event.argument.lower().split()[:1] == ["duress"]:
            return dialogs.dialog(forms.duress_word())
        words = event.argument.strip()
        if words.lower().split()[:1] == ["drill"]:
            return self._reply(event, answer(lambda: drill.command(self.ctx, event.user, words[len("drill"):]), "drill"))
        return self._reply(event, Reply(HELP))

    # ----- buttons -----

    def _clicked(self, event: Event) -> Json:
        function, value = event.function, event.value
        match = _START.match(function)
        if match and value is not None:
            return self._start(event, match.group(1), value)
        if function == actions.REGISTER_ADD:
            return self._register_add(event)
        if function == actions.CHECKIN_HELP:
            # Never refused, however old or odd the button: an SOS always goes (for the visit they are on now).
            return self._reply(event, answer(lambda: safety.sos(self.ctx, event.user, "Pressed Need help", kind="help"), "need help"))
        run = self.clicks.get(function)
        if run is None or value is None:
            return self._reply(event, NOT_MINE)
        try:
            visit_id = buttons.visit(value)
        except buttons.BadValue:
            return self._reply(event, NOT_MINE)
        return run(event, visit_id)

    def _start(self, event: Event, kind: str, value: str) -> Json:
        try:
            if kind == actions.START_VISIT:
                visit_id, text = buttons.start(value)
                return self._reply(event, answer(lambda: outing.start(self.ctx, event.user, visit_id, text)))
            visit_ids, text = buttons.round_of(value)
            return self._reply(event, answer(lambda: outing.start_round(self.ctx, event.user, visit_ids, text), "round"))
        except buttons.BadValue:
            return self._reply(event, NOT_MINE)

    def _told(self, run: Callable[[str, int], Reply]) -> Callable[[Event, int], Json]:
        return lambda event, visit_id: self._reply(event, answer(lambda: run(event.user, visit_id)))

    def _form_button(self, check: Callable[[str, int], None], form: Callable[[int], forms.Form]) -> Callable[[Event, int], Json]:
        """A button that opens a form about one visit, once the clicker is allowed to fill it in."""

        def opened(event: Event, visit_id: int) -> Json:
            try:
                check(event.user, visit_id)
            except CommandError as exc:
                return self._reply(event, Reply(f":warning: {exc}"))
            return dialogs.dialog(form(visit_id))

        return opened

    # ----- dialogs -----

    def _submitted(self, event: Event) -> Json:
        function = event.function
        if function == actions.CONFIDENTIAL_FORM:
            return self._confidential_pick(event)
        if function in self.safeguarding_forms:
            return self._safeguarding_form(event, function)
        if function in forms.OUTCOME_FORMS:
            return self._outcome_submitted(event)
        found = dialogs.submitted(event.raw)
        if found is None:
            return dialogs.closed(buttons.NOT_MINE)
        form, values, state = found
        user = event.user
        if function == actions.VISIT_FORM:
            raw = forms.details_answers(values)
            try:
                request.check_details(self.ctx, user, raw)
            except FieldErrors as exc:
                return dialogs.dialog_with_errors(form, values, exc.errors)
            return dialogs.dialog(forms.visit_risk(request.save_draft(self.ctx, user, raw)))
        if function == actions.RISK_FORM:
            return self._risk(event, values, state)
        if function == actions.DURESS_FORM:
            try:
                safety.set_duress_word(self.ctx, user, values.get("word") or "")
            except CommandError as exc:
                return dialogs.dialog_with_errors(form, {}, {"word": str(exc)})
            return dialogs.done(forms.DURESS_SAVED)
        field, run = self.one_field[function]
        filled = forms.BY_CALLBACK[function]  # redrawn with its state, so a second submit still names the visit
        try:
            visit_id = buttons.visit(state)
        except buttons.BadValue:
            return dialogs.dialog_with_errors(form, values, {field: EXPIRED_FORM})
        try:
            reply = run(user, visit_id, values.get(field) or "")
        except CommandError as exc:
            return dialogs.dialog_with_errors(filled(visit_id), values, {field: str(exc)})
        except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
            log_failure(log, function, exc)
            return dialogs.dialog_with_errors(filled(visit_id), values, {field: FAILED.text})
        return self._closed_with(event, reply)

    def _risk(self, event: Event, values: Json, state: str) -> Json:
        try:
            draft_id = buttons.visit(state)
        except buttons.BadValue:
            draft_id = None
        form = forms.visit_risk(draft_id)
        try:
            if draft_id is None:
                raise CommandError(request.EXPIRED)
            visit = request.submit_draft(self.ctx, event.user, draft_id, forms.risk_answers(values))
        except FieldErrors as exc:
            return dialogs.dialog_with_errors(form, values, exc.errors)
        except CommandError as exc:
            return dialogs.dialog_with_errors(form, values, {"risks": str(exc)})
        return dialogs.closed(f"Visit #{visit.id} sent for approval.")

    def _closed_with(self, event: Event, reply: Reply) -> Json:
        """A dialog closed by a message to the person who submitted it (the command's whole answer)."""
        return {**render.reply(reply, None if event.in_dm else event.user, self.people), "actionResponse": {"type": "NEW_MESSAGE"}}

    # ----- the confidential conversation -----

    def _confidential_command(self, event: Event) -> Json:
        try:
            opening = confidential.begin(self.ctx, event.user, event.argument)
        except CommandError as exc:
            return self._reply(event, Reply(f":warning: {exc}"))
        return self._confidential_start(event, opening)

    def _confidential_click(self, event: Event, visit_id: int) -> Json:
        try:
            opening = confidential.opening(self.ctx, event.user, visit_id)
        except CommandError as exc:
            return self._reply(event, Reply(f":warning: {exc}"))
        return self._confidential_start(event, opening)

    def _confidential_start(self, event: Event, opening: confidential.Opening) -> Json:
        # With one person to choose there is nothing to ask: open it at once (Chat waits up to 30 s for the answer).
        if len(opening.choices) == 1:
            other = opening.choices[0]
            return self._reply(event, answer(lambda: confidential.open_with(self.ctx, event.user, other, opening.visit_id), "confidential"))
        return dialogs.dialog(forms.confidential(self.names(opening.choices), opening.visit_id))

    def _confidential_pick(self, event: Event) -> Json:
        state = dialogs.state(event.raw)
        try:
            visit_id = buttons.visit(state) if state else None
        except buttons.BadValue:
            return dialogs.closed("This form has expired: run /confidential again.")
        try:
            choices = confidential.opening(self.ctx, event.user, visit_id).choices
        except CommandError as exc:
            return dialogs.closed(str(exc))
        form = forms.confidential(self.names(choices), visit_id)
        values = dialogs.answers(form, event.raw)
        other = values.get("with") or ""
        try:
            confidential.check_pick(self.ctx, event.user, other, visit_id)
        except CommandError as exc:
            return dialogs.dialog_with_errors(form, values, {"with": str(exc)})
        return self._closed_with(event, answer(lambda: confidential.open_with(self.ctx, event.user, other, visit_id), "confidential"))

    # ----- after the visit, the DSL's side -----

    def _add_safeguarding(self, ctx: Ctx) -> None:
        """/concern, /register, `/visits record N`, and the buttons and forms of the register and a visit's record."""
        today = lambda: ctx.now().astimezone(ctx.policy.tz).date()  # noqa: E731
        # `/visits record N` first; the board, export and report otherwise (bot/gchat/exports.py).
        self.slash["/visits"] = self._command(
            lambda u, t: safeguarding.visits_command(ctx, u, t, lambda: chat_exports.visits(ctx, self.public_url, u, t)))
        self.slash["/register"] = self._command(lambda u, t: safeguarding.register_command(ctx, u, t))
        self.slash["/concern"] = self._concern_command
        self.clicks[actions.REGISTER_CLEAR] = self._form_button(lambda u, i: safeguarding.check_clear(ctx, u, i), forms.register_clear)
        self.clicks[actions.REFERRAL] = self._form_button(lambda u, v: None if safeguarding.check_record(ctx, u, v) else None,
                                                          lambda v: forms.referral(v, today()))
        self.clicks[actions.SHARE] = self._form_button(lambda u, v: None if safeguarding.check_record(ctx, u, v) else None,
                                                       lambda v: forms.share(v, today()))
        # Forms of several fields: callback -> (carries an id?, the form drawn for that id, what the submission does).
        self.safeguarding_forms: dict[str, tuple[bool, Callable[..., forms.Form], Callable[[str, int | None, Json], Reply]]] = {
            actions.CONCERN_FORM: (True, forms.concern, lambda u, i, a: safeguarding.raise_concern(ctx, u, i or 0, a)),
            actions.REGISTER_ADD_FORM: (False, forms.register_add, lambda u, i, a: safeguarding.add_flag(ctx, u, a)),
            actions.REGISTER_CLEAR_FORM: (True, forms.register_clear, lambda u, i, a: safeguarding.clear_flag(ctx, u, i or 0, a)),
            actions.REFERRAL_FORM: (True, forms.referral, lambda u, i, a: safeguarding.log_referral(ctx, u, i or 0, a)),
            actions.SHARE_FORM: (True, forms.share, lambda u, i, a: safeguarding.log_share(ctx, u, i or 0, a)),
        }

    def _concern_command(self, event: Event) -> Json:
        try:
            visit_id = safeguarding.concern_visit(self.ctx, event.user)
        except CommandError as exc:
            return self._reply(event, Reply(f":warning: {exc}"))
        return dialogs.dialog(forms.concern(visit_id, event.argument))

    def _register_add(self, event: Event) -> Json:
        if event.value != "add":
            return self._reply(event, NOT_MINE)
        try:
            safeguarding.check_register(self.ctx, event.user)
        except CommandError as exc:
            return self._reply(event, Reply(f":warning: {exc}"))
        return dialogs.dialog(forms.register_add())

    def _safeguarding_form(self, event: Event, function: str) -> Json:
        """A form of several fields submitted: problems drawn beside their fields with everything typed kept."""
        found = dialogs.submitted(event.raw)
        if found is None:
            return dialogs.closed(buttons.NOT_MINE)
        _, values, state = found
        needs_id, make, run = self.safeguarding_forms[function]
        try:
            record_id = buttons.visit(state) if needs_id else None
        except buttons.BadValue:
            return dialogs.closed(EXPIRED_FORM)
        shown = make(record_id) if needs_id else make()
        try:
            reply = run(event.user, record_id, values)
        except FieldErrors as exc:
            return dialogs.dialog_with_errors(shown, values, exc.errors)
        except CommandError as exc:
            return dialogs.dialog_with_errors(shown, values, {shown.fields[0].name: str(exc)})
        except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
            log_failure(log, function, exc)
            return dialogs.dialog_with_errors(shown, values, {shown.fields[0].name: FAILED.text})
        return self._closed_with(event, reply)

    # ----- after the visit (issue 14): outcomes, Recorded, the debrief answer -----

    def _add_after_visit(self) -> None:
        ctx = self.ctx
        self.clicks.update({
            actions.OUTCOME_NO_CONCERNS: self._told(lambda u, v: aftervisit.no_concerns(ctx, u, v)),
            actions.RECORDED: self._told(lambda u, v: aftervisit.recorded(ctx, u, v)),
            actions.DEBRIEF_YES: self._told(lambda u, v: aftervisit.debrief(ctx, u, v, True)),
            actions.DEBRIEF_NO: self._told(lambda u, v: aftervisit.debrief(ctx, u, v, False)),
        })
        for kind, action_id in aftervisit.BUTTON_OF.items():
            if kind != "no_concerns":
                self.clicks[action_id] = self._outcome_button(kind)

    def _outcome_button(self, kind: str) -> Callable[[Event, int], Json]:
        def opened(event: Event, visit_id: int) -> Json:
            try:
                return dialogs.dialog(outcome_form(self.ctx, event.user, kind, visit_id))
            except CommandError as exc:
                return self._reply(event, Reply(f":warning: {exc}"))

        return opened

    def _outcome_submitted(self, event: Event) -> Json:
        found = dialogs.submitted(event.raw)
        if found is None:
            return dialogs.closed(buttons.NOT_MINE)
        form, values, state = found
        try:
            visit_id = buttons.visit(state)
        except buttons.BadValue:
            return dialogs.dialog_with_errors(form, values, {form.fields[0].name: EXPIRED_FORM})
        form = replace(form, state=state)  # redrawn with its state, so a second submit still names the visit
        try:
            reply = aftervisit.give(self.ctx, event.user, visit_id, forms.OUTCOME_FORMS[event.function], values)
        except FieldErrors as exc:
            return dialogs.dialog_with_errors(form, values, exc.errors)
        except CommandError as exc:
            return dialogs.dialog_with_errors(form, values, {form.fields[0].name: str(exc)})
        except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
            log_failure(log, event.function, exc)
            return dialogs.dialog_with_errors(form, values, {form.fields[0].name: FAILED.text})
        return self._closed_with(event, reply)

    def _staff_names(self, users: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(user, self.people.get(user, user)) for user in users]


def _respond(start_response: Callable[..., Any], status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
