"""Durations and clock times as staff type them: 90s, 15m, 1h30m, 24h, 365d, 14:30."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$")

DURATION_HINT = "use a duration like 90s, 45m, 1h30m or 24h"


class BadDuration(ValueError):
    """Text that is neither a duration nor a clock time."""


def parse_duration(text: str) -> timedelta:
    """Parse '1h30m'-style text into a timedelta; raise BadDuration with a hint."""
    cleaned = str(text).strip().lower().replace(" ", "")
    match = _DURATION.match(cleaned)
    if not cleaned or not match or not any(match.groups()):
        raise BadDuration(f"'{text}' is not a duration: {DURATION_HINT}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_clock(text: str) -> time | None:
    """Parse '14:30' into a time, or return None if it is not a clock time."""
    match = _CLOCK.match(str(text).strip())
    if not match:
        return None
    return time(int(match.group(1)), int(match.group(2)))


def format_duration(delta: timedelta) -> str:
    """Render a timedelta the way it is typed: 1h30m, 45m, 90s."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0m"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def resolve_return(text: str, now: datetime, tz: tzinfo) -> datetime:
    """Turn '/out' text ('45m' or '14:30') into an expected return after `now`.

    Raises BadDuration with what was expected when the text is neither, is not
    positive, or names a clock time that has already passed today.
    """
    clock = parse_clock(text)
    if clock is not None:
        local_now = now.astimezone(tz)
        target = datetime.combine(local_now.date(), clock, tzinfo=tz)
        if target <= local_now:
            raise BadDuration(
                f"{clock:%H:%M} has already passed; give a later time or a duration like 45m"
            )
        return target
    try:
        delta = parse_duration(text)
    except BadDuration:
        raise BadDuration(f"'{text}' is not a duration or a time: use 45m, 1h30m or 14:30") from None
    if delta <= timedelta(0):
        raise BadDuration("the duration must be more than zero: use 45m, 1h30m or 14:30")
    return now + delta


def local_time(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """A time as staff read it in the school's zone: 14:30 today, else with its date (Tue 24 Nov 01:00)."""
    local = moment.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == now.astimezone(tz).date() else "%a %d %b %H:%M")
