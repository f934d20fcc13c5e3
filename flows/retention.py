"""Retention: after the policy's period, a finished visit keeps its counts and loses its personal details."""
from __future__ import annotations

from dataclasses import replace

from flows.request import PURGED
from flows.visit import FINISHED, NotAllowed, Visit

def purge(visit: Visit) -> Visit:
    """The visit with addresses, phone numbers, vehicle, references and free text removed.

    What reports count survives: reason, type, planned or not, date, time, duration, mode of
    travel, the risk answers as yes/no, who went, who decided, and every timestamp.
    """
    if visit.state not in FINISHED:
        raise NotAllowed("Only a finished visit can be purged.")
    details = visit.details.model_copy(
        update={
            "pupil_ref": PURGED,
            "address": PURGED,
            "contact_phone": PURGED,
            "travel_details": PURGED,
            "reason_other": PURGED if visit.details.reason_other else None,
            "parents_not_informed_reason": PURGED if visit.details.parents_not_informed_reason else None,
        }
    )
    answers = visit.answers.model_copy(
        update={
            "other_agencies": PURGED if visit.answers.other_agencies else None,
            "other_concerns": PURGED if visit.answers.other_concerns else None,
        }
    )
    decisions = tuple(replace(d, reason=PURGED if d.reason else None) for d in visit.decisions)
    watch = replace(
        visit.watch,
        emergency_note=PURGED if visit.watch.emergency_note else None,
        safe_note=PURGED if visit.watch.safe_note else None,
    )
    return replace(visit, details=details, answers=answers, decisions=decisions, watch=watch)
