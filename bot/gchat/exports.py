"""/visits on Google Chat: the board, and `export` / `report` as one-time download links in a reply only the asker sees.

A Chat app cannot upload an attachment itself (Chat's media upload needs a user's own credentials), so the file is
kept for its owner to fetch once, within minutes, from this server's /downloads/ route.
"""
from __future__ import annotations

from commands import board, exports
from commands.context import CommandError, Ctx, Reply

NO_PUBLIC_URL = (
    "I cannot send files on Google Chat until the administrator sets VISITSAFE_PUBLIC_URL (this server's https address)."
    " Meanwhile the administrator can run `visitsafe export --from FROM --to TO --out FILE` or `visitsafe report --year 2025-26`."
)


def visits(ctx: Ctx, public_url: str | None, user: str, text: str) -> Reply:
    """`/visits`, `/visits export [from] [to]`, `/visits report [2025-26]` for one person on Chat."""
    word, _, rest = text.strip().partition(" ")
    if word.lower() == "export":
        period = exports.prepare_export(ctx, user, rest)
        files = lambda: [exports.safety_log(ctx, user, period, via="google_chat")]  # noqa: E731
    elif word.lower() == "report":
        period = exports.prepare_report(ctx, user, rest)
        files = lambda: list(exports.governors_report(ctx, user, period, render_html, via="google_chat"))  # noqa: E731
    else:
        return board.today(ctx, user)
    if not public_url:
        raise CommandError(NO_PUBLIC_URL)
    made = files()
    links = [f"{public_url}/downloads/{exports.keep_for_download(ctx, user, f)} ({f.filename})" for f in made]
    minutes = int(exports.DOWNLOAD_LIFE.total_seconds() // 60)
    return Reply(
        exports.sent(made) + f"\nEach link works once, for {minutes} minutes, and only from this message:\n" + "\n".join(links)
    )


def render_html(*args):  # type: ignore[no-untyped-def]
    """The report's HTML page; matplotlib loads only when a report is made."""
    from bot.report_html import render_html as draw

    return draw(*args)
