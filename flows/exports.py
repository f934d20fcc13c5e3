"""The safety log export, the school calendar and the governors' report: periods, rows and figures (pure)."""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from flows.aftervisit import OUTCOMES  # the outcome kinds (outcomes.outcome), in the order the report lists them
from flows.request import REASONS, TRAVEL_MODES, VISIT_TYPES
from flows.visit import State, Visit

# Tees Valley, Appendix A (Home Visiting Safety Log), in its order; the contact number and the expected return
# are the facts the policy asks to be recorded before the visit (2.1), the last column is its "✓".
LOG_COLUMNS = (
    "VISIT",
    "STAFF NAME(S)",
    "MOBILE NO.(S)",
    "MODE OF TRAVEL",
    "FAMILY VISITING",
    "ADDRESS",
    "CONTACT NUMBER",
    "DATE & TIME OF VISIT",
    "EXPECTED TIME OF RETURN",
    "TIME OF RETURN",
    "✓ CONFIRMED BY",
)

OUTCOME_WORDS = {**OUTCOMES, "none_given": "No outcome given"}
# Safeguarding reports (concerns.kind).
CONCERN_KINDS = {"concern": "Safeguarding concerns", "incident": "Incidents", "left_unsafe": "Unsafe exits", "allegation": "Allegations"}
# What confirms a late visitor safe: they made contact, signed back, or a responder confirmed it.
CONFIRMING = ("back", "back_home", "checkin", "extended", "confirmed_safe", "back_during_emergency")

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UK = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_YEAR = re.compile(r"^(\d{4})\s*[-/]\s*(\d{2}|\d{4})$")
DATE_FORMS = "2025-09-01 or 01/09/2025"


class BadPeriod(ValueError):
    """A period that cannot be read; the message says what to type instead."""


def parse_date(text: str) -> date:
    """A date typed as 2025-09-01 or 01/09/2025."""
    text = text.strip()
    try:
        if _ISO.match(text):
            return date.fromisoformat(text)
        uk = _UK.match(text)
        if uk:
            return date(int(uk.group(3)), int(uk.group(2)), int(uk.group(1)))
    except ValueError:
        raise BadPeriod(f"`{text[:20]}` is not a date in the calendar: type a date like {DATE_FORMS}.") from None
    raise BadPeriod(f"`{text[:20]}` is not a date I can read: type a date like {DATE_FORMS}.")


def school_year_of(day: date) -> tuple[date, date]:
    """The UK school year (1 September to 31 August) a day falls in."""
    first = day.year if day.month >= 9 else day.year - 1
    return date(first, 9, 1), date(first + 1, 8, 31)


def parse_school_year(text: str) -> tuple[date, date]:
    """`2025-26` (or 2025/26, 2025-2026): 1 September 2025 to 31 August 2026."""
    found = _YEAR.match(text.strip())
    if found:
        first, second = int(found.group(1)), int(found.group(2))
        if second == (first + 1) % (100 if second < 100 else 10_000):
            return date(first, 9, 1), date(first + 1, 8, 31)
    raise BadPeriod(f"`{text.strip()[:20]}` is not a school year: type it like 2025-26 (September 2025 to August 2026).")


def parse_period(words: list[str], today: date) -> tuple[date, date]:
    """[from] [to] as typed: none is this school year so far, one is from that day to today; both included."""
    if len(words) > 2:
        raise BadPeriod(f"Give at most two dates, from and to, like `2025-09-01 2025-12-19` ({DATE_FORMS}).")
    start = parse_date(words[0]) if words else school_year_of(today)[0]
    end = parse_date(words[1]) if len(words) > 1 else today
    check_period(start, end)
    return start, end


def check_period(start: date, end: date) -> None:
    """A period must run forwards."""
    if start > end:
        raise BadPeriod(f"The period runs backwards: {start:%d %b %Y} is after {end:%d %b %Y}. Give the earlier date first.")


def bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A period of whole local days, as aware datetimes [from midnight of start, midnight after end)."""
    return datetime.combine(start, datetime.min.time(), tzinfo=tz), datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)


def period_words(start: date, end: date) -> str:
    """A period as people read it."""
    return f"{start:%d %b %Y} to {end:%d %b %Y}"


# ----- the safety log -------------------------------------------------------------------------------------

_FORMULA = re.compile(r"^[=@\t\r]|^[+\-](?![0-9 ()\-.]*$)")


def cell(value: object) -> str:
    """A value safe to open in a spreadsheet: text that would run as a formula is kept as text (a phone like +44 stays)."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def log_row(
    visit: Visit,
    tz: ZoneInfo,
    name: Callable[[str], str],
    mobile: Callable[[str], str | None],
    confirmed_by: str | None,
) -> list[str]:
    """One visit as a row of the Home Visiting Safety Log."""
    d = visit.details
    team = visit.team
    travel = f"{TRAVEL_MODES.get(d.travel_mode, d.travel_mode)}: {d.travel_details}"

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    if visit.returned_at:
        returned = local(visit.returned_at) + (" (went home)" if visit.returned_home else "")
    elif visit.state in (State.out, State.overdue, State.emergency):
        returned = "not back yet"
    else:
        returned = ""
    row = [
        f"#{visit.id}",
        "; ".join(name(u) for u in team),
        "; ".join(mobile(u) or "none on file" for u in team),
        travel,
        d.pupil_ref,
        d.address,
        d.contact_phone,
        local(visit.departed_at or visit.start_at),
        local(visit.expected_return),
        returned,
        name(confirmed_by) if confirmed_by else "",
    ]
    return [cell(v) for v in row]


# ----- the calendar ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalendarEntry:
    """One visit as the school calendar shows it: no family, address or pupil, only when, how many and its status."""

    uid: str
    start: datetime
    end: datetime
    title: str
    description: str
    updated: datetime
    sequence: int


def calendar_entry(visit: Visit, updated: datetime, sequence: int, tz: ZoneInfo, namespace: str) -> CalendarEntry:
    """The calendar entry of an approved, live or finished visit (its end follows /out, /extend and /back)."""
    start = visit.departed_at or visit.start_at
    end = visit.returned_at or visit.expected_return or (visit.start_at + visit.details.duration)
    kind = "Doorstep visit" if visit.details.visit_type == "doorstep" else "Home visit"
    if visit.returned_at:
        status = f"back at {visit.returned_at.astimezone(tz):%H:%M}" + (" (went home)" if visit.returned_home else "")
    elif visit.state in (State.out, State.overdue, State.emergency):
        status = f"out, due back {end.astimezone(tz):%H:%M}"
    else:
        status = "approved, not started"
    staff = len(visit.team)
    return CalendarEntry(
        uid=f"visit-{visit.id}@{namespace}",
        start=start,
        end=max(end, start + timedelta(minutes=1)),
        title=f"{kind} #{visit.id} ({staff} staff)",
        description=f"VisitSafe visit #{visit.id}: {status}. Who and where: /visits in the chat (permitted staff only).",
        updated=updated,
        sequence=sequence,
    )


# ----- the governors' report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VisitFacts:
    """What the report counts of one visit that went out: no personal data."""

    id: int
    reason: str
    visit_type: str


@dataclass(frozen=True)
class Figures:
    """The governors' report for one period: counts only."""

    start: date
    end: date
    visits: int
    by_reason: dict[str, int]
    by_type: dict[str, int]
    by_outcome: dict[str, int]
    overdue_events: int
    minutes_to_confirmation: list[float]
    emergencies: int
    reports: dict[str, int]
    records: dict[str, int]
    requested: int = 0
    declined: int = 0

    @property
    def median_minutes(self) -> float | None:
        """Median time from the first overdue alert to the visitor confirmed safe."""
        return statistics.median(self.minutes_to_confirmation) if self.minutes_to_confirmation else None

    @property
    def worst_minutes(self) -> float | None:
        """The longest time from the first overdue alert to the visitor confirmed safe."""
        return max(self.minutes_to_confirmation) if self.minutes_to_confirmation else None

    def rows(self) -> list[tuple[str, str, str]]:
        """(section, item, value) of every figure: the report's CSV and the HTML tables read these."""
        out: list[tuple[str, str, str]] = [
            ("Period", "From", self.start.isoformat()),
            ("Period", "To", self.end.isoformat()),
            ("Visits", "Requested", str(self.requested)),
            ("Visits", "Declined", str(self.declined)),
            ("Visits", "Made", str(self.visits)),
        ]
        out += [("Visits by reason", REASONS.get(k, k), str(v)) for k, v in self.by_reason.items()]
        out += [("Visits by type", VISIT_TYPES.get(k, k), str(v)) for k, v in self.by_type.items()]
        out += [("Visits by outcome", OUTCOME_WORDS.get(k, k), str(v)) for k, v in self.by_outcome.items()]
        out += [
            ("Overdue", "Overdue events", str(self.overdue_events)),
            ("Overdue", "Confirmed safe", str(len(self.minutes_to_confirmation))),
            ("Overdue", "Median minutes to confirmation", _minutes(self.median_minutes)),
            ("Overdue", "Worst minutes to confirmation", _minutes(self.worst_minutes)),
            ("Emergencies", "SOS, help or silent alarms", str(self.emergencies)),
        ]
        out += [("Safeguarding reports", CONCERN_KINDS[k], str(self.reports.get(k, 0))) for k in CONCERN_KINDS]
        out += [("Records on CPOMS", k, str(v)) for k, v in self.records.items()]
        return out


def _minutes(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def count_by(keys: Iterable[str], order: Iterable[str]) -> dict[str, int]:
    """Counts of each key, in the given order (keys outside it after, in order seen), zeros left out."""
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    ordered = {k: counts[k] for k in order if counts.get(k)}
    ordered.update({k: v for k, v in counts.items() if k not in ordered})
    return ordered


def minutes_to_confirmation(events: list[tuple[int, str, float, int | None]]) -> tuple[int, list[float]]:
    """(overdue events, minutes from each one's first ladder alert to the next confirmation) from audit events.

    `events` are (visit id, action, epoch seconds, tier) in time order: action "tier_sent" (tier 0 opens an
    overdue event) or one of CONFIRMING. An event never confirmed counts as overdue but has no time.
    """
    open_since: dict[int, float] = {}
    count, minutes = 0, []
    for visit_id, action, at, tier in events:
        if action == "tier_sent":
            if visit_id not in open_since:
                open_since[visit_id] = at
                count += 1
        elif action in CONFIRMING and visit_id in open_since:
            minutes.append((at - open_since.pop(visit_id)) / 60)
    return count, minutes


def record_status(rows: list[tuple[float, float | None]], now: float) -> dict[str, int]:
    """Of the visits to record on CPOMS, (due_at, recorded_at) each: on time, late, missed, still open."""
    status = {"Recorded on time": 0, "Recorded late": 0, "Not recorded, past the deadline": 0, "Not yet due": 0}
    for due_at, recorded_at in rows:
        if recorded_at is not None:
            status["Recorded on time" if recorded_at <= due_at else "Recorded late"] += 1
        else:
            status["Not recorded, past the deadline" if due_at < now else "Not yet due"] += 1
    return status
