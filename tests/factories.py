"""Small builders for the unit tests of flows/ and storage/: a request, its answers, a visit in any state."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flows.approvals import required_slots
from flows.policy import Policy
from flows.request import RiskAnswers, VisitDetails
from flows.risk import RegisterEntry, RiskAssessment, assess
from flows.visit import State, Visit
from tests.conftest import COMPANION, MONDAY_9AM, REQUESTER


def details_raw(**changes: Any) -> dict[str, Any]:
    """Step 1 answers as the form hands them to validate_details: Monday 23 Nov 2026 at 10:00 for 45m."""
    raw: dict[str, Any] = {
        "pupil_ref": "AB123",
        "address": "12 Example Road, Botley OX2 9AA",
        "contact_phone": "01632 960123",
        "reason": "attendance",
        "visit_type": "doorstep",
        "planned": True,
        "date": "2026-11-23",
        "start_time": "10:00",
        "duration": "45m",
        "travel_mode": "car",
        "travel_details": "AB12 CDE, blue Ford Focus",
        "parents_informed": True,
        "commute": False,
    }
    raw.update(changes)
    return raw


def make_details(**changes: Any) -> VisitDetails:
    """A valid VisitDetails (no policy checks), with some answers changed."""
    return VisitDetails.model_validate(details_raw(**changes))


def make_answers(**changes: Any) -> RiskAnswers:
    """Risk answers with no risks and one companion, with some answers changed."""
    raw: dict[str, Any] = {"companions": (COMPANION,)}
    raw.update(changes)
    return RiskAnswers.model_validate(raw)


def make_visit(
    policy: Policy,
    *,
    requester: str = REQUESTER,
    state: State = State.requested,
    details: VisitDetails | None = None,
    answers: RiskAnswers | None = None,
    register: list[RegisterEntry] | None = None,
    assessment: RiskAssessment | None = None,
    now: datetime = MONDAY_9AM,
    **fields: Any,
) -> Visit:
    """A visit as /visit stores it (assessment and slots from the policy), then moved to `state`."""
    details = details or make_details()
    answers = answers or make_answers()
    assessment = assessment or assess(details, answers, register or [], policy, requester)
    slots = required_slots(policy, requester, details, assessment)
    visit = Visit(
        requester,
        details,
        answers,
        assessment,
        slots,
        created_at=now,
        start_at=details.start_at(policy),
        state=state,
    )
    if state in (State.out, State.overdue, State.emergency) and "departed_at" not in fields:
        fields.setdefault("departed_at", now)
        fields.setdefault("expected_return", now + timedelta(minutes=45))
        fields.setdefault("ladder", tuple(policy.escalation))
    return replace(visit, **fields)
