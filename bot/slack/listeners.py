"""Bolt listeners: each acks, reads the payload, calls a command, and renders the answer."""
from __future__ import annotations

import logging
import re
import socket
from typing import Any, Callable

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from commands.logsafe import log_failure
from bot.interactions import FAILED, HELP, answer as _answer, on_own_visit as _on_own_visit, outcome_form, team_check
from bot import forms as neutral_forms
from bot.slack import buttons, conversations, forms, render
from bot.slack.exports import register_exports
from commands import aftervisit, board, confidential, decide, drill, outing, request, safeguarding, safety
from commands.context import CommandError, Ctx, Reply
from flows import actions, notices
from flows.messages import clean
from flows.request import FieldErrors

log = logging.getLogger("visitsafe.slack")


def reply_payload(reply: Reply) -> dict[str, Any]:
    """An ephemeral reply as a slash command response."""
    return {
        "response_type": "ephemeral",
        "text": render.fallback_text(reply.text),
        "blocks": render.blocks(reply.text, notes=reply.notes, buttons=reply.buttons),
    }


def _tell(client: WebClient, body: dict[str, Any], reply: Reply) -> None:
    """After a button click: an ephemeral note to the clicker, where they clicked."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = body["user"]["id"]
    payload = reply_payload(reply)
    if channel:
        client.chat_postEphemeral(channel=channel, user=user, text=payload["text"], blocks=payload["blocks"])
    else:
        client.chat_postMessage(channel=user, text=payload["text"], blocks=payload["blocks"])


NOT_OPENED = ":x: I could not open the form: Slack did not answer. Nothing was saved; please try again in a minute."
# A trigger id lasts 3 s and Bolt waits 3 s for the ack: a form opened before acking must answer sooner.
FORM_TIMEOUT_S = 2


SLOW_TO_OPEN = ":hourglass_flowing_sand: Slack is slow to answer: if the form has not opened in a few seconds, please type the command again."


def _opened(client: WebClient, body: dict[str, Any], view: dict[str, Any]) -> Reply | None:
    """Open a modal before acking, quickly; None if it opened, else what to answer (logged)."""
    quick = WebClient(token=client.token, base_url=client.base_url, timeout=FORM_TIMEOUT_S)
    try:
        quick.views_open(trigger_id=body["trigger_id"], view=view)
        return None
    except (TimeoutError, socket.timeout) as exc:  # Slack may still open it: say so, not "could not"
        log_failure(log, "opening a form", exc)
        return Reply(SLOW_TO_OPEN)
    except Exception as exc:  # noqa: BLE001 - Slack down, refusing the token, or the trigger expired
        log_failure(log, "opening a form", exc)
        return Reply(NOT_OPENED)


def _ack_form(ack: Ack, client: WebClient, body: dict[str, Any], view: dict[str, Any]) -> None:
    """A slash command that opens a form: if it cannot open, the answer to the command says so."""
    problem = _opened(client, body, view)
    if problem is None:
        ack()
    else:
        ack(**reply_payload(problem))


def _open_form(client: WebClient, body: dict[str, Any], view: dict[str, Any], say: Callable[[str], None]) -> None:
    """Open a modal; if Slack cannot, tell the person instead of leaving them waiting."""
    try:
        client.views_open(trigger_id=body["trigger_id"], view=view)
    except Exception as exc:  # noqa: BLE001 - Slack down or the trigger expired
        log_failure(log, "opening a form", exc)
        say(NOT_OPENED)


def _parsed(parse: Callable[[str], Any], action: dict[str, Any]) -> Any:
    """A button's value through its strict parser; None if it is not one we wrote."""
    value = action.get("value")
    try:
        return parse(value) if isinstance(value, str) else None
    except buttons.BadValue:
        return None


NOT_MINE = Reply(f":warning: {buttons.NOT_MINE}")


def what_was_asked(body: dict[str, Any]) -> tuple[str, str] | None:
    """(what, who) for a request's log line: a command, button, form or event name and a user id, never its text."""
    user = body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user") or "?"
    if body.get("command"):
        return str(body["command"]), str(user)
    if body.get("type") == "block_actions" and body.get("actions"):
        return f"button {body['actions'][0].get('action_id')}", str(user)
    if body.get("type") in ("view_submission", "view_closed"):
        return f"form {(body.get('view') or {}).get('callback_id')}", str(user)
    if body.get("type") == "event_callback":
        return f"event {(body.get('event') or {}).get('type')}", str(user)
    return None


def log_requests(app: App) -> None:
    """One INFO line per command, button, form or event handled: names and ids, no personal data."""

    @app.middleware
    def handled(body: dict[str, Any], next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
        next()
        asked = what_was_asked(body)
        if asked:
            log.info("handled %s from %s", *asked)


def post_reply(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """After a form closed: the reply its handler left in the context, as a DM to the person who submitted it."""
    if context.get("reply"):
        client.chat_postMessage(channel=body["user"]["id"], text=context["reply"])


def just_ack(ack: Ack) -> None:
    """Answer Slack at once; the listener's work, which calls Slack, runs after (a Bolt lazy listener)."""
    ack()


def register(app: App, ctx: Ctx) -> None:
    """Bind every command, button and form to its handler."""
    log_requests(app)

    def click(action_id: str, run: Callable[[str, int], Reply]) -> None:
        """A button whose value is a visit id: re-checked by the command, answered to the clicker."""

        def handler(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
            visit_id = _parsed(buttons.visit, action)
            if visit_id is None:
                _tell(client, body, NOT_MINE)
                return
            _tell(client, body, _answer(lambda: run(body["user"]["id"], visit_id), action_id))

        app.action(action_id)(ack=just_ack, lazy=[handler])

    def form_button(action_id: str, check: Callable[[str, int], None], view: Callable[[int], dict[str, Any]]) -> None:
        """A button that opens a form, after checking the click would count."""

        def handler(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
            visit_id = _parsed(buttons.visit, action)
            try:
                if visit_id is None:
                    raise CommandError(buttons.NOT_MINE)
                check(body["user"]["id"], visit_id)
            except CommandError as exc:
                _tell(client, body, Reply(f":warning: {exc}"))
                return
            _open_form(client, body, view(visit_id), lambda text: _tell(client, body, Reply(text)))

        app.action(action_id)(ack=just_ack, lazy=[handler])

    def form(callback_id: str, field: str, run: Callable[[str, int, str], Reply]) -> None:
        """A one-field form whose private_metadata is a visit id; refusals are shown beside the field."""

        def handler(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
            user = body["user"]["id"]
            visit_id = _parsed(buttons.visit, {"value": view.get("private_metadata")})
            if visit_id is None:
                ack(response_action="errors", errors={field: "This form has expired: click the button again."})
                return
            try:
                reply = run(user, visit_id, forms.values(view).get(field) or "")
            except CommandError as exc:
                ack(response_action="errors", errors={field: str(exc)})
                return
            except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
                log_failure(log, callback_id, exc)
                ack(response_action="errors", errors={field: FAILED.text})
                return
            ack()
            context["reply"] = render.fallback_text(reply.text)  # the lazy listener posts it, after the answer

        app.view(callback_id)(ack=handler, lazy=[post_reply])

    @app.command("/visit")
    def visit_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        # Opened before the answer, quickly, so that a Slack outage is told in the answer itself.
        today = ctx.now().astimezone(ctx.policy.tz).date()
        _ack_form(ack, client, body, forms.details_view(today))

    @app.view(actions.VISIT_FORM)
    def visit_details(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        raw = forms.details_answers(view)
        try:
            request.check_details(ctx, body["user"]["id"], raw)
        except FieldErrors as exc:
            ack(response_action="errors", errors=forms.field_errors(exc.errors, view))
            return
        ack(response_action="push", view=forms.risk_view(request.save_draft(ctx, body["user"]["id"], raw)))

    @app.view(actions.RISK_FORM)
    def visit_risk(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        draft_id = _parsed(buttons.visit, {"value": view.get("private_metadata")})
        try:
            if draft_id is None:
                raise CommandError(request.EXPIRED)
            request.submit_draft(ctx, user, draft_id, forms.risk_answers(view))
        except FieldErrors as exc:
            ack(response_action="errors", errors=forms.field_errors(exc.errors, view))
            return
        except CommandError as exc:
            ack(response_action="errors", errors=forms.field_errors({"risks": str(exc)}, view))
            return
        ack(response_action="clear")

    click(actions.APPROVE, lambda user, vid: decide.approve(ctx, user, vid))
    click(actions.CANCEL_VISIT, lambda user, vid: decide.cancel(ctx, user, vid))
    form_button(actions.DECLINE, lambda user, vid: decide.check_can_decide(ctx, user, vid), forms.decline_view)
    form(actions.DECLINE_FORM, "reason", lambda user, vid, reason: decide.decline(ctx, user, vid, reason))

    def start_click(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        parsed = _parsed(buttons.start, action)
        if parsed is None:
            _tell(client, body, NOT_MINE)
            return
        visit_id, text = parsed
        _tell(client, body, _answer(lambda: outing.start(ctx, body["user"]["id"], visit_id, text)))

    app.action(re.compile(rf"^{actions.START_VISIT}(:\d+)?$"))(ack=just_ack, lazy=[start_click])

    def start_round_click(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        parsed = _parsed(buttons.round_of, action)
        if parsed is None:
            _tell(client, body, NOT_MINE)
            return
        visit_ids, text = parsed
        _tell(client, body, _answer(lambda: outing.start_round(ctx, body["user"]["id"], visit_ids, text), "round"))

    app.action(re.compile(rf"^{actions.START_ROUND}(:\d+)?$"))(ack=just_ack, lazy=[start_round_click])

    def slash(name: str, run: Callable[[str, str], Reply]) -> None:
        @app.command(name)
        def handler(ack: Ack, command: dict[str, Any]) -> None:
            reply = _answer(lambda: run(command["user_id"], clean(command.get("text") or "")))
            ack(**reply_payload(reply))

    def _team_check(user: str, visit_id: int) -> None:
        team_check(ctx, user, visit_id)

    def on_own_visit(run: Callable[[str], Reply]) -> Callable[[str, int], Reply]:
        return _on_own_visit(ctx, run)

    def need_help(body: dict[str, Any], client: WebClient) -> None:
        # Never refused, however old or odd the button: an SOS always goes (for the visit they are on now).
        _tell(client, body, _answer(lambda: safety.sos(ctx, body["user"]["id"], "Pressed Need help", kind="help"), "need help"))

    app.action(actions.CHECKIN_HELP)(ack=just_ack, lazy=[need_help])

    click(actions.CHECKIN_OK, on_own_visit(lambda user: safety.checkin(ctx, user)))
    click(actions.VISITOR_BACK, on_own_visit(lambda user: outing.back(ctx, user, "")))
    click(actions.NEXT_VISIT, on_own_visit(lambda user: outing.next_visit(ctx, user)))
    click(actions.ALERT_ACK, lambda user, vid: safety.acknowledge(ctx, user, vid))
    click(actions.ALERT_NO_ANSWER, lambda user, vid: safety.no_answer(ctx, user, vid))
    click(actions.DRILL_ACK, lambda user, message_id: drill.acknowledge(ctx, user, message_id))
    form_button(actions.CHECKIN_EXTEND, _team_check, forms.extend_view)
    form_button(actions.ALERT_SAFE, lambda user, vid: safety.check_responder(ctx, user, vid), forms.safe_view)
    form(actions.EXTEND_FORM, "duration", lambda user, vid, text: safety.extend(ctx, user, text))
    form(actions.SAFE_FORM, "note", lambda user, vid, note: safety.confirm_safe(ctx, user, vid, note))

    def wants_duress_form(body: dict[str, Any]) -> bool:
        return clean(body.get("text") or "").strip().lower().split()[:1] == ["duress"]

    @app.command("/visitsafe")
    def visitsafe_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        if wants_duress_form(body):
            _ack_form(ack, client, body, forms.duress_view())
            return
        words = clean(body.get("text") or "").strip()
        if words.lower().split()[:1] == ["drill"]:
            ack(**reply_payload(_answer(lambda: drill.command(ctx, body["user_id"], words[len("drill"):]), "drill")))
            return
        ack(**reply_payload(Reply(HELP)))

    @app.view(actions.DURESS_FORM)
    def duress_word(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            safety.set_duress_word(ctx, body["user"]["id"], forms.values(view).get("word") or "")
        except CommandError as exc:
            ack(response_action="errors", errors={"word": str(exc)})
            return
        ack(response_action="update", view=forms.duress_saved_view())

    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        # Refreshed each time the tab is opened: the board as /visits shows it to this person.
        user = event.get("user") or ""
        if event.get("tab", "home") != "home" or not user:
            return
        board_reply = _answer(lambda: board.today(ctx, user), "home tab")
        try:
            client.views_publish(user_id=user, view=forms.home_view(board_reply.text, notices.safety_checklist(ctx.policy), HELP))
        except Exception as exc:  # noqa: BLE001 - Slack down: the tab shows its last board; a 500 only makes Slack resend
            log_failure(log, "publishing the home tab", exc)

    app.event("app_home_opened")(ack=just_ack, lazy=[home_opened])

    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # A typed answer to "Still OK?" counts as I'm OK; any typed text is checked for the duress word.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user = event.get("user") or ""
        reply = _answer(lambda: safety.typed(ctx, user, clean(str(event.get("text") or ""))), "typed message")
        try:
            client.chat_postMessage(channel=event.get("channel") or user, text=render.fallback_text(reply.text))
        except Exception as exc:  # noqa: BLE001 - the answer was recorded; a 500 would make Slack resend the message
            log_failure(log, "answering a typed message", exc)

    app.event("message")(ack=just_ack, lazy=[direct_message])

    slash("/checkin", lambda user, text: safety.checkin(ctx, user, text))
    slash("/extend", lambda user, text: safety.extend(ctx, user, text))
    slash("/sos", lambda user, text: safety.sos(ctx, user, text))
    slash("/out", lambda user, text: outing.out(ctx, user, text))
    slash("/next", lambda user, text: outing.next_visit(ctx, user))
    slash("/back", lambda user, text: outing.back(ctx, user, text))
    # /visits, /visits export and /visits report (bot/slack/exports.py)
    register_exports(app, ctx)

    register_confidential(app, ctx)
    register_safeguarding(app, ctx)
    register_after_visit(app, ctx)


def register_confidential(app: App, ctx: Ctx) -> None:
    """/confidential, its button on a visit and its form: a private conversation with the ELT."""

    def dm(client: WebClient, user: str) -> Callable[[Reply], None]:
        return lambda reply: client.chat_postMessage(channel=user, text=render.fallback_text(reply.text))

    def start(client: WebClient, body: dict[str, Any], user: str, opening: confidential.Opening, tell: Callable[[Reply], None]) -> None:
        # With one person to choose there is nothing to ask: open it at once.
        if len(opening.choices) == 1:
            tell(_answer(lambda: confidential.open_with(ctx, user, opening.choices[0], opening.visit_id), "confidential"))
            return
        view = forms.confidential_view(conversations.names(client, ctx.policy, opening.choices), opening.visit_id)
        _open_form(client, body, view, lambda text: tell(Reply(text)))

    @app.command("/confidential")
    def confidential_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user = body["user_id"]
        # Checked against the database first: a refusal is the command's answer, and nothing is opened.
        openings: list[confidential.Opening] = []
        refusal = _answer(lambda: openings.append(confidential.begin(ctx, user, clean(body.get("text") or ""))) or Reply(""), "confidential")
        if not openings:
            ack(**reply_payload(refusal))
            return
        ack()  # before any call to Slack
        start(client, body, user, openings[0], dm(client, user))

    @app.action(actions.CONFIDENTIAL)
    def confidential_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        visit_id = _parsed(buttons.visit, action)
        try:
            if visit_id is None:
                raise CommandError(buttons.NOT_MINE)
            opening = confidential.opening(ctx, user, visit_id)
        except CommandError as exc:
            _tell(client, body, Reply(f":warning: {exc}"))
            return
        start(client, body, user, opening, lambda reply: _tell(client, body, reply))

    @app.view(actions.CONFIDENTIAL_FORM)
    def confidential_pick(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        metadata = view.get("private_metadata") or ""
        visit_id = _parsed(buttons.visit, {"value": metadata}) if metadata else None
        other = forms.values(view).get("with") or ""
        try:
            if metadata and visit_id is None:
                raise CommandError("This form has expired: run `/confidential` again.")
            confidential.check_pick(ctx, user, other, visit_id)
        except CommandError as exc:
            ack(response_action="errors", errors={"with": str(exc)})
            return
        ack()  # the form closes; the conversation is opened after, outside Slack's 3 seconds
        dm(client, user)(_answer(lambda: confidential.open_with(ctx, user, other, visit_id), "confidential"))


def register_safeguarding(app: App, ctx: Ctx) -> None:
    """After the visit, the DSL's side: /concern and its form, /register, and the buttons and forms of the
    register and of a visit's record (referrals, information shared)."""

    @app.command("/concern")
    def concern_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        # Refused before any form opens when the person is not out; what they typed is kept in the form.
        found: list[int] = []
        refusal = _answer(lambda: found.append(safeguarding.concern_visit(ctx, body["user_id"])) or Reply(""), "concern")
        if not found:
            ack(**reply_payload(refusal))
            return
        _ack_form(ack, client, body, forms.modal(neutral_forms.concern(found[0], clean(body.get("text") or "").strip())))

    slash_reply = lambda user, text: safeguarding.register_command(ctx, user, text)  # noqa: E731

    @app.command("/register")
    def register_command(ack: Ack, command: dict[str, Any]) -> None:
        ack(**reply_payload(_answer(lambda: slash_reply(command["user_id"], clean(command.get("text") or "")), "register")))

    def opens(action_id: str, parse: Callable[[str], int | None], check: Callable[[str, int | None], None],
              view: Callable[[int | None], neutral_forms.Form]) -> None:
        """A button that opens a form once the clicker may fill it in (checked against the database)."""

        def handler(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
            value = action.get("value")
            try:
                record_id = parse(value) if isinstance(value, str) else None
                check(body["user"]["id"], record_id)
            except (buttons.BadValue, TypeError):
                _tell(client, body, NOT_MINE)
                return
            except CommandError as exc:
                _tell(client, body, Reply(f":warning: {exc}"))
                return
            _open_form(client, body, forms.modal(view(record_id)), lambda text: _tell(client, body, Reply(text)))

        app.action(action_id)(ack=just_ack, lazy=[handler])

    def add_value(value: str) -> None:
        if value != "add":
            raise buttons.BadValue()

    today = lambda: ctx.now().astimezone(ctx.policy.tz).date()  # noqa: E731
    opens(actions.REGISTER_ADD, add_value, lambda user, _: safeguarding.check_register(ctx, user), lambda _: neutral_forms.register_add())
    opens(actions.REGISTER_CLEAR, buttons.one_id, lambda user, i: safeguarding.check_clear(ctx, user, i or 0), neutral_forms.register_clear)
    opens(actions.REFERRAL, buttons.visit, lambda user, i: None if safeguarding.check_record(ctx, user, i or 0) else None,
          lambda i: neutral_forms.referral(i, today()))
    opens(actions.SHARE, buttons.visit, lambda user, i: None if safeguarding.check_record(ctx, user, i or 0) else None,
          lambda i: neutral_forms.share(i, today()))

    def submitted(callback_id: str, needs_id: bool, run: Callable[[str, int | None, dict[str, Any]], Reply]) -> None:
        """A form of several fields: problems are shown beside their fields and everything typed stays."""

        def handler(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
            user = body["user"]["id"]
            record_id = _parsed(buttons.visit, {"value": view.get("private_metadata")}) if needs_id else None
            try:
                if needs_id and record_id is None:
                    raise CommandError("This form has expired: close it and start again.")
                reply = run(user, record_id, forms.values(view))
            except FieldErrors as exc:
                ack(response_action="errors", errors=forms.field_errors(exc.errors, view))
                return
            except CommandError as exc:
                ack(response_action="errors", errors=forms.field_errors({"": str(exc)}, view))
                return
            except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
                log_failure(log, callback_id, exc)
                ack(response_action="errors", errors=forms.field_errors({"": FAILED.text}, view))
                return
            ack()
            context["reply"] = render.fallback_text(reply.text)  # the lazy listener posts it, after the answer

        def post_reply(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
            if context.get("reply"):
                client.chat_postMessage(channel=body["user"]["id"], text=context["reply"])

        app.view(callback_id)(ack=handler, lazy=[post_reply])

    submitted(actions.CONCERN_FORM, True, lambda user, i, answers: safeguarding.raise_concern(ctx, user, i or 0, answers))
    submitted(actions.REGISTER_ADD_FORM, False, lambda user, _, answers: safeguarding.add_flag(ctx, user, answers))
    submitted(actions.REGISTER_CLEAR_FORM, True, lambda user, i, answers: safeguarding.clear_flag(ctx, user, i or 0, answers))
    submitted(actions.REFERRAL_FORM, True, lambda user, i, answers: safeguarding.log_referral(ctx, user, i or 0, answers))
    submitted(actions.SHARE_FORM, True, lambda user, i, answers: safeguarding.log_share(ctx, user, i or 0, answers))

def register_after_visit(app: App, ctx: Ctx) -> None:
    """The outcome buttons and forms after /back, Recorded, and the debrief answer (issue 14)."""

    def on_visit(action_id: str, run: Callable[[str, int], Reply | dict[str, Any]]) -> None:
        """A button whose value is a visit id: `run` answers the clicker, or gives a form to open."""

        def handler(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
            visit_id = _parsed(buttons.visit, action)
            if visit_id is None:
                _tell(client, body, NOT_MINE)
                return
            opened: list[dict[str, Any]] = []
            reply = _answer(lambda: _or_form(run(body["user"]["id"], visit_id), opened), action_id)
            if opened:
                _open_form(client, body, opened[0], lambda text: _tell(client, body, Reply(text)))
            else:
                _tell(client, body, reply)

        app.action(action_id)(ack=just_ack, lazy=[handler])

    def _or_form(result: Reply | dict[str, Any], opened: list[dict[str, Any]]) -> Reply:
        if isinstance(result, Reply):
            return result
        opened.append(result)
        return Reply("")

    def form_of(kind: str) -> Callable[[str, int], dict[str, Any]]:
        return lambda user, visit_id: forms.modal(outcome_form(ctx, user, kind, visit_id))

    on_visit(actions.OUTCOME_NO_CONCERNS, lambda user, vid: aftervisit.no_concerns(ctx, user, vid))
    for kind, action_id in aftervisit.BUTTON_OF.items():
        if kind != "no_concerns":
            on_visit(action_id, form_of(kind))
    on_visit(actions.RECORDED, lambda user, vid: aftervisit.recorded(ctx, user, vid))
    on_visit(actions.DEBRIEF_YES, lambda user, vid: aftervisit.debrief(ctx, user, vid, True))
    on_visit(actions.DEBRIEF_NO, lambda user, vid: aftervisit.debrief(ctx, user, vid, False))

    def given(body: dict[str, Any], view: dict[str, Any]) -> tuple[dict[str, str], Reply | None]:
        """(errors beside the fields, or the reply) of an outcome form's submission."""
        first = next(b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input")
        visit_id = _parsed(buttons.visit, {"value": view.get("private_metadata")})
        if visit_id is None:
            return {first: "This form has expired: click the button again."}, None
        try:
            return {}, aftervisit.give(ctx, body["user"]["id"], visit_id, neutral_forms.OUTCOME_FORMS[view["callback_id"]], forms.values(view))
        except FieldErrors as exc:
            return forms.field_errors(exc.errors, view), None
        except CommandError as exc:
            return {first: str(exc)}, None
        except Exception as exc:  # noqa: BLE001 - the form must say something went wrong
            log_failure(log, view["callback_id"], exc)
            return {first: FAILED.text}, None

    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        errors, reply = given(body, view)
        if reply is None:
            ack(response_action="errors", errors=errors)
            return
        ack()
        context["reply"] = render.fallback_text(reply.text)  # the lazy listener posts it, after the answer

    for callback_id in neutral_forms.OUTCOME_FORMS:
        app.view(callback_id)(ack=submitted, lazy=[post_reply])
