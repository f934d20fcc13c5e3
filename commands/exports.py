"""/visits export, /visits report, the calendar feed and one-time downloads: who may, which period, audited."""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

from commands.context import CommandError, Ctx, Reply
from flows import exports as ex
from flows.policy import Role

# Tees Valley Appendix A: the safety log is for the office, the DSL and the head only.
EXPORTERS = {Role.office, Role.dsl, Role.head}
# The governors' report is the head's (Hampton: the governors review the policy each year).
REPORTERS = {Role.head}
# How far back the calendar shows visits: a term's worth, so a subscribed calendar stays small.
CALENDAR_PAST = timedelta(days=92)
# A download link works once, for this long.
DOWNLOAD_LIFE = timedelta(minutes=15)
CSV_TYPE, HTML_TYPE = "text/csv; charset=utf-8", "text/html; charset=utf-8"

NOT_EXPORTER = "Only the office, the DSL and the head can export the safety log."
NOT_REPORTER = "Only the head can make the governors' report."


@dataclass(frozen=True)
class OutFile:
    """A file made for the person who asked: uploaded privately to them, never posted in a channel."""

    filename: str
    content_type: str
    body: bytes
    title: str


@dataclass(frozen=True)
class Period:
    """A checked period of whole local days, both included."""

    start: date
    end: date

    @property
    def words(self) -> str:
        """The period as people read it."""
        return ex.period_words(self.start, self.end)


Names = Callable[[str], str]
Mobiles = Callable[[str], "str | None"]


def _refuse(ctx: Ctx, user: str, allowed: set[Role], action: str, message: str) -> None:
    """Refuse (and audit) anyone without one of the allowed roles."""
    if not ctx.policy.roles.of(user) & allowed:
        with ctx.store.transaction() as tx:
            tx.audit(user, f"{action}_refused", ctx.now())
        raise CommandError(message)


def _today(ctx: Ctx) -> date:
    return ctx.now().astimezone(ctx.policy.tz).date()


# ----- the safety log -----------------------------------------------------------------------------------------

def prepare_export(ctx: Ctx, user: str, text: str) -> Period:
    """`/visits export [from] [to]`: the asker's role and the period are checked, and the period has visits in it."""
    _refuse(ctx, user, EXPORTERS, "export", NOT_EXPORTER)
    try:
        start, end = ex.parse_period(text.split(), _today(ctx))
    except ex.BadPeriod as exc:
        raise CommandError(str(exc)) from None
    period = Period(start, end)
    if not ctx.store.read().visits_made_count(*ex.bounds(start, end, ctx.policy.tz)):
        raise CommandError(f"No home visits were made from {period.words}: there is nothing to export. Try a longer period.")
    return period


def default_names(ctx: Ctx) -> Names:
    """Names from the policy's staff directory, else the platform's user id."""
    return lambda user: (entry.name if (entry := ctx.policy.staff.get(user)) and entry.name else user)


def safety_log(ctx: Ctx, actor: str, period: Period, names: Names | None = None, mobiles: Mobiles | None = None, via: str = "chat") -> OutFile:
    """The Home Visiting Safety Log of a period as CSV (Tees Valley Appendix A), audited: who, which period, how many."""
    name = names or default_names(ctx)
    mobile = mobiles or ctx.phone
    tx = ctx.store.read()
    visits = tx.visits_made_between(*ex.bounds(period.start, period.end, ctx.policy.tz))
    confirmed = tx.return_confirmations([v.id for v in visits if v.id is not None]) if visits else {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ex.LOG_COLUMNS)
    for visit in visits:
        writer.writerow(ex.log_row(visit, ctx.policy.tz, name, mobile, confirmed.get(visit.id)))  # type: ignore[arg-type]
    with ctx.store.transaction() as tx:
        tx.audit(actor, "exported", ctx.now(), period_from=period.start.isoformat(), period_to=period.end.isoformat(), rows=len(visits), via=via)
    # A byte-order mark: Excel opens UTF-8 (the ✓, names with accents) correctly only with it.
    return OutFile(
        f"home-visiting-safety-log-{period.start}-to-{period.end}.csv", CSV_TYPE, ("\ufeff" + out.getvalue()).encode("utf-8"),
        f"Home Visiting Safety Log, {period.words}",
    )


def export_preparing(period: Period) -> Reply:
    """What the asker sees at once while the file is made."""
    return Reply(f":hourglass_flowing_sand: Making the Home Visiting Safety Log for {period.words}: it will arrive in our direct messages, for you only.")


# ----- the governors' report ----------------------------------------------------------------------------------

def prepare_report(ctx: Ctx, user: str, text: str) -> Period:
    """`/visits report [2025-26]`: the head only; a school year (this one by default)."""
    _refuse(ctx, user, REPORTERS, "report", NOT_REPORTER)
    words = text.split()
    try:
        start, end = ex.parse_school_year(words[0]) if words else ex.school_year_of(_today(ctx))
    except ex.BadPeriod as exc:
        raise CommandError(str(exc)) from None
    if len(words) > 1:
        raise CommandError("Give one school year, like `/visits report 2025-26`.")
    return Period(start, end)


def figures(ctx: Ctx, period: Period) -> ex.Figures:
    """The governors' report's figures for a period: visits planned in it, drills never counted."""
    counts = ctx.store.read().report_counts(*ex.bounds(period.start, period.end, ctx.policy.tz))
    made = counts["made"]
    overdue, minutes = ex.minutes_to_confirmation(counts["events"])
    outcomes = ex.count_by(counts["outcomes"], ex.OUTCOMES)
    if len(made) > counts["given"]:
        outcomes["none_given"] = len(made) - counts["given"]
    return ex.Figures(
        start=period.start, end=period.end, visits=len(made),
        by_reason=ex.count_by((r for _, r, _ in made), ex.REASONS),
        by_type=ex.count_by((t for _, _, t in made), ex.VISIT_TYPES),
        by_outcome=outcomes, overdue_events=overdue, minutes_to_confirmation=minutes,
        emergencies=counts["emergencies"], reports=ex.count_by(counts["reports"], ex.CONCERN_KINDS),
        records=ex.record_status(counts["records"], ctx.now().timestamp()),
        requested=counts["requested"], declined=counts["declined"],
    )


RenderHtml = Callable[[ex.Figures, str, str, datetime], str]


def governors_report(ctx: Ctx, actor: str, period: Period, render_html: RenderHtml, via: str = "chat") -> tuple[OutFile, OutFile]:
    """The report as one self-contained HTML file (drawn by `render_html`: figures, school, title, when) and a CSV
    of the same figures, audited."""
    made = figures(ctx, period)
    with ctx.store.transaction() as tx:
        tx.audit(actor, "report_made", ctx.now(), period_from=period.start.isoformat(), period_to=period.end.isoformat(), via=via)
    stem = f"governors-report-{period.start.year}-{str(period.end.year)[2:]}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("Section", "Figure", "Value"))
    writer.writerows(made.rows())
    title = f"Home visits: the governors' report, {period.start.year}-{str(period.end.year)[2:]}"
    return (
        OutFile(stem + ".html", HTML_TYPE, render_html(made, ctx.policy.school, title, ctx.now().astimezone(ctx.policy.tz)).encode("utf-8"), title),
        OutFile(stem + ".csv", CSV_TYPE, ("\ufeff" + out.getvalue()).encode("utf-8"), title + " (figures)"),
    )


def report_preparing(period: Period) -> Reply:
    """What the head sees at once while the report is made."""
    return Reply(f":hourglass_flowing_sand: Making the governors' report for {period.words}: it will arrive in our direct messages, for you only.")


def sent(files: tuple[OutFile, ...] | list[OutFile]) -> str:
    """The comment beside an uploaded file."""
    return "Here is " + " and ".join(f"*{f.title}*" for f in files) + ". It is for you only: keep it out of shared drives and channels."


UPLOAD_FAILED = ":x: I could not send you the file just now (the chat did not take it). Nothing was shared with anyone; please run the command again in a minute."


# ----- the school calendar ------------------------------------------------------------------------------------

def calendar_entries(ctx: Ctx, token: str | None) -> tuple[list[ex.CalendarEntry], str] | None:
    """The school calendar's entries and a stable namespace for their ids, or None when the token is not the feed's secret."""
    secret = ctx.store.read().stored_calendar_token()
    if not secret or not token or not hmac.compare_digest(secret.encode(), token.encode()):
        return None
    namespace = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return [
        ex.calendar_entry(visit, updated, int(updated.timestamp()) - int(visit.created_at.timestamp()), ctx.policy.tz, namespace)
        for visit, updated in ctx.store.read().calendar_visits(ctx.now() - CALENDAR_PAST)
    ], namespace


def calendar_url(ctx: Ctx, base: str, new: bool = False) -> str:
    """The feed's address to subscribe to (`new`: a new secret; the old address stops working)."""
    with ctx.store.transaction() as tx:
        token = tx.calendar_token(new=new)
        tx.audit("visitsafe", "calendar_token_made" if new else "calendar_url_shown", ctx.now())
    return f"{base.rstrip('/')}/calendar.ics?token={token}"


# ----- one-time downloads (Google Chat takes no upload from an app) --------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keep_for_download(ctx: Ctx, user: str, file: OutFile) -> str:
    """Keep a file for its owner to fetch once within DOWNLOAD_LIFE; the secret for its link (only a hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        tx.add_download(_hash(token), user, file.filename, file.content_type, file.body, now, now + DOWNLOAD_LIFE)
    return token


def take_download(ctx: Ctx, token: str) -> tuple[str, str, bytes] | None:
    """(filename, content type, body) of a file kept for download, once; None if unknown, fetched or expired."""
    if not token or len(token) > 100:
        return None
    now = ctx.now()
    with ctx.store.transaction() as tx:
        found = tx.take_download(_hash(token), now)
        if found is None:
            return None
        user, filename, content_type, body = found
        tx.audit(user, "downloaded", now, file=filename)
    return filename, content_type, body


# ----- retention ----------------------------------------------------------------------------------------------

