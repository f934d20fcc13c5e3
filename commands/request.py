"""/visit: the two-step request form, the risk rules, and sending it to the approvers."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from commands.context import CommandError, Ctx
from flows import notices
from flows.approvals import ROLE_NAMES, everyone, is_emergency, required_slots, unfillable
from flows.request import FieldErrors, VisitDetails, validate_details, validate_risk
from flows.risk import Flag, assess
from flows.visit import Visit

STEP1_REGISTER_FLAGS = {Flag.meet_on_premises, Flag.under_review}
DRAFT_LIFE = timedelta(days=1)
EXPIRED = "This form has expired: close it and start `/visit` again (your answers here were not sent)."


def check_details(ctx: Ctx, user: str, raw: dict[str, Any]) -> VisitDetails:
    """Step 1: validate the visit and refuse a flagged family or address before step 2."""
    details = validate_details(raw, ctx.now(), ctx.policy)
    flags = ctx.store.read().register_for(details.address, details.pupil_ref)
    blocking = [f for f in flags if f.flag in STEP1_REGISTER_FLAGS]
    if blocking:
        words = {
            Flag.meet_on_premises: "is on the register as 'meet on premises only': offer a meeting at school or another venue",
            Flag.under_review: "is under review after an incident: no visit until the DSL has reviewed it",
        }
        raise FieldErrors({"address": f"This family or address {words[blocking[0].flag]}."})
    return details


def save_draft(ctx: Ctx, user: str, raw: dict[str, Any]) -> int:
    """Keep step 1's answers in the database while step 2 is open; returns the draft id."""
    with ctx.store.transaction() as tx:
        return tx.add_draft(user, raw, ctx.now())


def submit_draft(ctx: Ctx, user: str, draft_id: int, raw_risk: dict[str, Any]) -> Visit:
    """Step 2 of this user's own draft; CommandError(EXPIRED) if it is missing or someone else's."""
    raw_details = ctx.store.read().draft_of(draft_id, user)
    if raw_details is None:
        raise CommandError(EXPIRED)
    return submit(ctx, user, raw_details, raw_risk, draft_id)


def purge_drafts(ctx: Ctx) -> int:
    """Drafts never submitted are deleted after a day."""
    with ctx.store.transaction() as tx:
        return tx.purge_drafts(ctx.now() - DRAFT_LIFE)


def submit(ctx: Ctx, user: str, raw_details: dict[str, Any], raw_risk: dict[str, Any], draft_id: int | None = None) -> Visit:
    """Step 2: apply the risk rules; store the request and message the approvers in one transaction."""
    details = check_details(ctx, user, raw_details)
    answers = validate_risk(raw_risk)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        # The draft is used once: a second submission of the same form finds it gone.
        if draft_id is not None and not tx.drop_draft(draft_id, user):
            raise CommandError(EXPIRED)
        register = tx.register_for(details.address, details.pupil_ref)
        assessment = assess(details, answers, register, ctx.policy, user)
        if assessment.refusal:
            raise FieldErrors({assessment.refusal.field: assessment.refusal.message})
        slots = required_slots(ctx.policy, user, details, assessment)
        team = (user, *answers.companions)
        missing = unfillable(slots, ctx.policy, team)
        if missing:
            names = " or ".join(ROLE_NAMES[r] for r in missing.roles)
            raise FieldErrors(
                {"companions": f"Nobody outside this visit can approve it as {names}: ask the office to check the policy file."}
            )
        visit = tx.add_visit(
            Visit(user, details, answers, assessment, slots, created_at=now, start_at=details.start_at(ctx.policy)),
            now,
        )
        tx.audit(user, "requested", now, visit.id, risk=assessment.level, slots=[s.name for s in slots])
        messages = [notices.request_sent(visit, ctx.policy)]
        messages += [notices.approval_request(visit, approver, ctx.policy) for approver in everyone(visit, ctx.policy)]
        if is_emergency(details):
            messages.append(notices.emergency_check(visit, ctx.policy))
        tx.send(messages, now, visit.id)
    ctx.wake()
    return visit
