"""The school calendar as an iCalendar (RFC 5545) document, written by the icalendar library."""
from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar, Event

from commands import exports
from commands.context import Ctx


def feed(ctx: Ctx, token: str | None) -> bytes | None:
    """The feed of approved, live and recent visits (no personal data), or None when the token is not its secret."""
    found = exports.calendar_entries(ctx, token)
    if found is None:
        return None
    entries, _ = found
    now = ctx.now()
    cal = Calendar()
    cal.add("prodid", "-//VisitSafe//Home visits//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"Home visits: {ctx.policy.school}")
    cal.add("x-wr-timezone", ctx.policy.timezone)
    # Outlook and Google read these as how often to fetch again (they may fetch less often).
    cal.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")
    for entry in entries:
        event = Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", now)
        event.add("dtstart", entry.start)
        event.add("dtend", entry.end)
        event.add("summary", entry.title)
        event.add("description", entry.description)
        event.add("last-modified", entry.updated)
        event.add("sequence", max(entry.sequence, 0))
        event.add("class", "PRIVATE")
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    return cal.to_ical()
