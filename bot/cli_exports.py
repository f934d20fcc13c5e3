"""`visitsafe export`, `visitsafe report` and `visitsafe calendar-url`: the safety log, the governors' report and the
school calendar's address, from the server's own database (for whoever runs the server)."""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bot.clock import system_clock
from commands import exports
from commands.context import CommandError, Ctx
from flows import exports as ex
from storage.store import Store


def _ctx() -> Ctx:
    from bot.cli import _policy, _settings

    settings = _settings()
    policy = _policy(settings.visitsafe_config)
    return Ctx(Store(settings.visitsafe_db, policy), policy, system_clock)


def _actor() -> str:
    """Who ran it, for the audit: the operating-system account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _fail(message: str) -> int:
    print(f"visitsafe: {message}", file=sys.stderr)
    return 2


def _write(path: Path, body: bytes) -> None:
    """Write a file only its owner can read (it holds personal data, or the figures of one)."""
    path.write_bytes(body)
    path.chmod(0o600)


def cmd_export(args: argparse.Namespace) -> int:
    """The Home Visiting Safety Log of a period as CSV."""
    ctx = _ctx()
    try:
        start = ex.parse_date(args.date_from)
        end = ex.parse_date(args.date_to) if args.date_to else ctx.now().astimezone(ctx.policy.tz).date()
        ex.check_period(start, end)
    except ex.BadPeriod as exc:
        return _fail(str(exc).replace("`", ""))
    period = exports.Period(start, end)
    visits = ctx.store.read().visits_made_count(*ex.bounds(start, end, ctx.policy.tz))
    if not visits:
        return _fail(f"no home visits were made from {period.words}: nothing to export (no file written).")
    made = exports.safety_log(ctx, _actor(), period, via="cli")
    _write(Path(args.out), made.body)
    print(f"Wrote {made.title} to {args.out} ({visits} visits).")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The governors' report of a school year: HTML, and the same figures as CSV beside it."""
    ctx = _ctx()
    try:
        start, end = ex.parse_school_year(args.year) if args.year else ex.school_year_of(ctx.now().astimezone(ctx.policy.tz).date())
    except ex.BadPeriod as exc:
        return _fail(str(exc).replace("`", ""))
    from bot.report_html import render_html  # matplotlib loads only when a report is made

    page, figures = exports.governors_report(ctx, _actor(), exports.Period(start, end), render_html, via="cli")
    out = Path(args.out)
    csv_path = Path(args.csv) if args.csv else out.with_suffix(".csv")
    _write(out, page.body)
    _write(csv_path, figures.body)
    print(f"Wrote {page.title} to {out}, and its figures to {csv_path}.")
    return 0


def cmd_calendar_url(args: argparse.Namespace) -> int:
    """The school calendar's secret address (a new one with --new: the old stops working)."""
    from bot.cli import _settings

    base = args.base or _settings().public_url
    if not base:
        return _fail("give this server's public address: --base https://visitsafe.example.org (or set VISITSAFE_PUBLIC_URL).")
    try:
        print(exports.calendar_url(_ctx(), base, new=args.new))
    except CommandError as exc:
        return _fail(str(exc))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The export, report and calendar-url subcommands."""
    export = sub.add_parser(
        "export", help="write the Home Visiting Safety Log (CSV) of a period",
        description="Write the Home Visiting Safety Log of the visits made in a period as CSV, with the columns of "
        "Tees Valley's Appendix A (staff, mobiles, travel, family, address, contact number, times, who confirmed the "
        "return). It holds personal data: the file is readable by you only. Audited.",
    )
    export.add_argument("--from", dest="date_from", required=True, help="first day, like 2025-09-01 or 01/09/2025")
    export.add_argument("--to", dest="date_to", help="last day, included (default: today)")
    export.add_argument("--out", required=True, help="the CSV file to write")
    export.set_defaults(func=cmd_export)
    report = sub.add_parser(
        "report", help="write the governors' report (HTML with charts, and a CSV) of a school year",
        description="Write the governors' report of a UK school year (September to August): visits by reason, type "
        "and outcome, overdue events and time to confirmation, incidents, concerns, unsafe exits, allegations and "
        "records on time. One self-contained HTML file, and a CSV of the same figures. No personal data; drills are "
        "never counted. Audited.",
    )
    report.add_argument("--year", help="the school year, like 2025-26 (default: this one)")
    report.add_argument("--out", required=True, help="the HTML file to write, like report.html")
    report.add_argument("--csv", help="the figures' CSV (default: the HTML file's name ending .csv)")
    report.set_defaults(func=cmd_report)
    cal = sub.add_parser(
        "calendar-url", help="print the school calendar's secret address to subscribe to",
        description="Print the address of the iCalendar feed of approved visits (no personal data in it), to add "
        "in Google Calendar (Other calendars > From URL) or Outlook (Add calendar > Subscribe from web).",
    )
    cal.add_argument("--base", help="this server's public address (default: $VISITSAFE_PUBLIC_URL)")
    cal.add_argument("--new", action="store_true", help="make a new secret: the old address stops working")
    cal.set_defaults(func=cmd_calendar_url)
