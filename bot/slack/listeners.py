"""Bolt listeners: each acks, reads the payload, calls a command, and renders the answer."""
from __future__ import annotations

import json
import logging
import re
import traceback
from typing import Any, Callable

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import forms, render
from commands import board, decide, outing, request
from commands.context import CommandError, Ctx, Reply
from flows import actions
from flows.request import FieldErrors

log = logging.getLogger("visitsafe.slack")


def reply_payload(reply: Reply) -> dict[str, Any]:
    """An ephemeral reply as a slash command response."""
    return {
        "response_type": "ephemeral",
        "text": render.fallback_text(reply.text),
        "blocks": render.blocks(reply.text, notes=reply.notes, buttons=reply.buttons),
    }


FAILED = Reply(
    ":x: Something went wrong on our side and nothing was changed. Please try again;"
    " if it keeps happening, phone the office."
)


def log_failure(where: str, exc: BaseException) -> None:
    """Log a failure by type and place only: exception messages can carry what a user typed."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f"{frame.filename}:{frame.lineno}" if frame else "?"
    log.error("%s failed: %s at %s", where, type(exc).__name__, place)


def _answer(run: Callable[[], Reply], where: str = "command") -> Reply:
    """Run a command; a refusal becomes the reply that says why, a crash an honest apology."""
    try:
        return run()
    except CommandError as exc:
        return Reply(f":warning: {exc}")
    except Exception as exc:  # noqa: BLE001 - the user must always hear back
        log_failure(where, exc)
        return FAILED


def _tell(client: WebClient, body: dict[str, Any], reply: Reply) -> None:
    """After a button click: an ephemeral note to the clicker, where they clicked."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = body["user"]["id"]
    payload = reply_payload(reply)
    if channel:
        client.chat_postEphemeral(channel=channel, user=user, text=payload["text"], blocks=payload["blocks"])
    else:
        client.chat_postMessage(channel=user, text=payload["text"], blocks=payload["blocks"])


def _visit_id(value: str) -> int | None:
    head = value.split("|", 1)[0]
    return int(head) if head.isdigit() else None


def register(app: App, ctx: Ctx) -> None:
    """Bind every command, button and form to its handler."""

    @app.command("/visit")
    def visit_command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        today = ctx.now().astimezone(ctx.policy.tz).date()
        client.views_open(trigger_id=body["trigger_id"], view=forms.details_view(today))

    @app.view(actions.VISIT_FORM)
    def visit_details(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        raw = forms.details_answers(view)
        try:
            request.check_details(ctx, body["user"]["id"], raw)
        except FieldErrors as exc:
            ack(response_action="errors", errors=forms.field_errors(exc.errors, view))
            return
        ack(response_action="push", view=forms.risk_view(raw))

    @app.view(actions.RISK_FORM)
    def visit_risk(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        raw_details = json.loads(view.get("private_metadata") or "{}")
        try:
            request.submit(ctx, user, raw_details, forms.risk_answers(view))
        except FieldErrors as exc:
            ack(response_action="errors", errors=forms.field_errors(exc.errors, view))
            return
        ack(response_action="clear")

    @app.action(actions.APPROVE)
    def approve_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        visit_id = _visit_id(action.get("value", ""))
        if visit_id is None:
            _tell(client, body, Reply(":warning: That button is not one of mine."))
            return
        reply = _answer(lambda: decide.approve(ctx, body["user"]["id"], visit_id))
        _tell(client, body, reply)

    @app.action(actions.DECLINE)
    def decline_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        visit_id = _visit_id(action.get("value", ""))
        user = body["user"]["id"]
        try:
            if visit_id is None:
                raise CommandError("That button is not one of mine.")
            decide.check_can_decide(ctx, user, visit_id)
        except CommandError as exc:
            _tell(client, body, Reply(f":warning: {exc}"))
            return
        client.views_open(trigger_id=body["trigger_id"], view=forms.decline_view(visit_id))

    @app.view(actions.DECLINE_FORM)
    def decline_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        reason = forms.values(view).get("reason") or ""
        meta = view.get("private_metadata") or ""
        if not meta.isdigit():
            ack(response_action="errors", errors={"reason": "This form has expired: click Decline again."})
            return
        try:
            reply = decide.decline(ctx, body["user"]["id"], int(meta), reason)
        except CommandError as exc:
            ack(response_action="errors", errors={"reason": str(exc)})
            return
        ack()
        client.chat_postMessage(channel=body["user"]["id"], text=render.fallback_text(reply.text))

    @app.action(re.compile(rf"^{actions.START_VISIT}(:\d+)?$"))
    def start_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        value = action.get("value", "")
        visit_id = _visit_id(value)
        text = value.split("|", 1)[1] if "|" in value else ""
        if visit_id is None:
            _tell(client, body, Reply(":warning: That button is not one of mine."))
            return
        _tell(client, body, _answer(lambda: outing.start(ctx, body["user"]["id"], visit_id, text)))

    def slash(name: str, run: Callable[[str, str], Reply]) -> None:
        @app.command(name)
        def handler(ack: Ack, command: dict[str, Any]) -> None:
            reply = _answer(lambda: run(command["user_id"], command.get("text") or ""))
            ack(**reply_payload(reply))

    slash("/out", lambda user, text: outing.out(ctx, user, text))
    slash("/back", lambda user, text: outing.back(ctx, user, text))
    slash("/visits", lambda user, text: board.today(ctx, user))
