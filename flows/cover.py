"""Office hours and cover: out of the office's hours, a tier naming the office goes to the policy's cover as well."""
from __future__ import annotations

from datetime import datetime

from flows.audiences import destinations
from flows.messages import where
from flows.policy import Policy, describe_hours
from flows.visit import Visit


def audiences(notify: list[str] | tuple[str, ...], at: datetime, policy: Policy) -> list[tuple[str, bool]]:
    """A tier's audiences at `at`, each with whether it is there as cover: the cover follows when any is off duty."""
    listed = [(audience, False) for audience in notify]
    if not any(policy.off_duty(audience, at) for audience in notify):
        return listed
    return listed + [(audience, True) for audience in policy.cover if audience not in notify]


def closed_note(visit: Visit, at: datetime, policy: Policy) -> str | None:
    """Why an office tier also went to the cover (None while the office is open)."""
    if policy.office_open(at) or policy.office_hours is None:
        return None
    cover = [where(to) for audience in policy.cover for to in destinations(audience, visit, policy)]
    hours = describe_hours(policy.office_hours)
    if not cover:
        return f"The office is closed (hours {hours}) and no cover is set in the policy."
    return f"The office is closed (hours {hours}): sent to {', '.join(dict.fromkeys(cover))} too."
