"""/visits on Slack: the board, and `export` / `report`, whose files are uploaded privately to who asked."""
from __future__ import annotations

import logging
from typing import Any, Callable

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.interactions import answer
from bot.slack import render
from commands import board, exports, safeguarding
from commands.context import Ctx, Reply
from commands.logsafe import log_failure
from flows.messages import clean

log = logging.getLogger("visitsafe.slack")


def directory(client: WebClient, ctx: Ctx) -> tuple[exports.Names, exports.Mobiles]:
    """Names and mobiles for the safety log: the policy's staff directory first, else the Slack profile (looked up once each)."""
    seen: dict[str, tuple[str | None, str | None]] = {}

    def profile(user: str) -> tuple[str | None, str | None]:
        if user not in seen:
            try:
                found = client.users_info(user=user)["user"]
                seen[user] = (found.get("real_name") or None, (found.get("profile") or {}).get("phone") or None)
            except Exception as exc:  # noqa: BLE001 - the log still lists the visit, with the id
                log_failure(log, "a name lookup for the safety log", exc)
                seen[user] = (None, None)
        return seen[user]

    def name(user: str) -> str:
        entry = ctx.policy.staff.get(user)
        return (entry.name if entry and entry.name else None) or profile(user)[0] or user

    def mobile(user: str) -> str | None:
        entry = ctx.policy.staff.get(user)
        return (entry.mobile if entry and entry.mobile else None) or profile(user)[1]

    return name, mobile


def upload_privately(client: WebClient, user: str, files: list[exports.OutFile]) -> None:
    """Upload files into the DM of the bot and `user` only (files.getUploadURLExternal, then completeUploadExternal)."""
    dm = client.conversations_open(users=user)["channel"]["id"]
    client.files_upload_v2(
        file_uploads=[{"content": f.body, "filename": f.filename, "title": f.title} for f in files],
        channel=dm,
        initial_comment=render.fallback_text(exports.sent(files)),
        request_file_info=False,
    )


def register_exports(app: App, ctx: Ctx) -> None:
    """`/visits` (today's board), `/visits export [from] [to]` and `/visits report [2025-26]`."""

    def visits_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        user, text = command["user_id"], clean(command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        prepare: dict[str, Callable[[], Reply]] = {
            "export": lambda: _prepared(context, "export", exports.prepare_export(ctx, user, rest), exports.export_preparing),
            "report": lambda: _prepared(context, "report", exports.prepare_report(ctx, user, rest), exports.report_preparing),
        }
        # `/visits record N` (commands/safeguarding.py), else the board.
        run = prepare.get(word.lower(), lambda: safeguarding.visits_command(ctx, user, text, lambda: board.today(ctx, user)))
        from bot.slack.listeners import reply_payload  # the listeners module registers this one

        ack(**reply_payload(answer(run, f"/visits {word.lower()}" if word.lower() in prepare else "")))

    def make_and_upload(command: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        job = context.get("visits_job")
        if not job:
            return
        user = command["user_id"]
        kind, period = job
        try:
            if kind == "export":
                name, mobile = directory(client, ctx)
                files = [exports.safety_log(ctx, user, period, name, mobile, via="slack")]
            else:
                files = list(exports.governors_report(ctx, user, period, render_html, via="slack"))
            upload_privately(client, user, files)
        except Exception as exc:  # noqa: BLE001 - the person must hear that nothing arrived
            log_failure(log, f"/visits {kind}", exc)
            try:
                client.chat_postMessage(channel=user, text=render.fallback_text(exports.UPLOAD_FAILED))
            except Exception as again:  # noqa: BLE001 - Slack is down: the log says so
                log_failure(log, f"telling of a failed /visits {kind}", again)

    app.command("/visits")(ack=visits_command, lazy=[make_and_upload])


def _prepared(context: BoltContext, kind: str, period: exports.Period, reply: Callable[[exports.Period], Reply]) -> Reply:
    """Keep the checked job for the work after the answer; what the asker sees now."""
    context["visits_job"] = (kind, period)
    return reply(period)


def render_html(*args):  # type: ignore[no-untyped-def]
    """The report's HTML page; matplotlib loads only when a report is made."""
    from bot.report_html import render_html as draw

    return draw(*args)
