"""Approve and Decline: each click re-checked against the database, one decision per role."""
from __future__ import annotations

from commands.context import CommandError, Ctx, Reply
from flows import approvals, notices
from flows.visit import NotAllowed, State, Visit
from flows.visit import cancel as cancel_visit


def _load(tx, visit_id: int) -> Visit:  # type: ignore[no-untyped-def]
    visit = tx.visit(visit_id)
    if visit is None:
        raise CommandError("That request no longer exists.")
    return visit


def check_can_decide(ctx: Ctx, user: str, visit_id: int) -> None:
    """Before opening the decline form: would this user's decision count now?"""
    visit = _load(ctx.store.read(), visit_id)
    try:
        approvals.approve(visit, user, ctx.now(), ctx.policy)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None


def _decide(ctx: Ctx, user: str, visit_id: int, reason: str | None) -> Reply:
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = _load(tx, visit_id)
        try:
            if reason is None:
                visit = approvals.approve(visit, user, now, ctx.policy)
            else:
                visit = approvals.decline(visit, user, reason, now, ctx.policy)
        except NotAllowed as exc:
            tx.audit(user, "decision_refused", now, visit_id, why=str(exc))
            raise CommandError(str(exc)) from None
        tx.save_visit(visit, now)
        slot = visit.decisions[-1].slot
        tx.audit(user, "approved" if reason is None else "declined", now, visit.id, slot=slot, state=visit.state.value)
        messages = [notices.decision_for_requester(visit, ctx.policy), *notices.approval_updates(visit, ctx.policy)]
        tx.send(messages, now, visit.id)
    ctx.wake()
    if visit.state is State.approved:
        return Reply(f"Approved. Visit #{visit.id} can now go ahead; the requester has been told.")
    if visit.state is State.declined:
        return Reply("Declined. The requester has been told your reason.")
    return Reply(f"Approved. Visit #{visit.id} still needs: " + ", ".join(s.name for s in approvals.waiting_for(visit)))


def approve(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """An approver approves a visit."""
    return _decide(ctx, user, visit_id, None)


def decline(ctx: Ctx, user: str, visit_id: int, reason: str) -> Reply:
    """An approver declines a visit, with a reason."""
    if not reason.strip():
        raise CommandError("Give a reason for declining, so the member of staff knows what to do instead.")
    return _decide(ctx, user, visit_id, reason)


def cancel(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """The requester withdraws a visit that has not started; the approvers are told."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = _load(tx, visit_id)
        try:
            visit = cancel_visit(visit, user, now)
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        tx.save_visit(visit, now)
        tx.audit(user, "cancelled", now, visit.id)
        tx.send(notices.cancelled(visit, ctx.policy), now, visit.id)
    ctx.wake()
    told = "the approvers and your companions have" if visit.companions else "the approvers have"
    return Reply(f"Visit #{visit.id} is cancelled; {told} been told.")
