"""Who must approve a visit, and what one approver's click does."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from flows.policy import ApprovalRule, Policy, Role
from flows.request import VisitDetails
from flows.risk import RiskAssessment
from flows.visit import Decision, NotAllowed, Slot, State, Visit

ROLE_NAMES = {
    Role.dsl: "DSL",
    Role.head: "headteacher",
    Role.senior_leader: "senior leader",
    Role.office: "office",
    Role.elt: "ELT member",
    Role.family_support: "family support worker",
    Role.team_leader: "team leader",
}


def _slots(rule: ApprovalRule) -> list[Slot]:
    return [Slot(" or ".join(r.value for r in roles), roles) for roles in rule.slots()]


def is_emergency(details: VisitDetails) -> bool:
    """An unplanned welfare check: the policies let it go on the DSL's word alone."""
    return not details.planned and details.reason == "welfare"


def required_slots(policy: Policy, requester: str, details: VisitDetails, assessment: RiskAssessment) -> tuple[Slot, ...]:
    """The approvals this request needs under the policy."""
    rule: ApprovalRule = policy.approvals
    if is_emergency(details) and policy.approvals.emergency:
        rule = policy.approvals.emergency
    elif Role.senior_leader in policy.roles.of(requester) and policy.approvals.senior_leader_own_visit:
        rule = policy.approvals.senior_leader_own_visit
    slots = _slots(rule)
    if assessment.head_reasons and not any(slot.roles == (Role.head,) for slot in slots):
        slots.append(Slot(Role.head.value, (Role.head,)))
    return tuple(slots)


def approvers_for(slot: Slot, policy: Policy, excluded: tuple[str, ...]) -> list[str]:
    """Everyone who may fill a slot, nobody approving their own visit."""
    people: list[str] = []
    for role in slot.roles:
        for user in policy.roles.holders(role):
            if user not in excluded and user not in people:
                people.append(user)
    return people


def assignable(slots: list[Slot] | tuple[Slot, ...], policy: Policy, team: tuple[str, ...], used: frozenset[str] = frozenset()) -> bool:
    """Whether each slot can still get its own approver, nobody twice (slots are few: a plain search)."""
    if not slots:
        return True
    first, rest = slots[0], slots[1:]
    return any(
        assignable(rest, policy, team, used | {user}) for user in approvers_for(first, policy, team) if user not in used
    )


def unfillable(slots: tuple[Slot, ...], policy: Policy, team: tuple[str, ...]) -> Slot | None:
    """A slot that cannot get an approver of its own from outside the visiting team, if any."""
    if assignable(slots, policy, team):
        return None
    return min(slots, key=lambda slot: len(approvers_for(slot, policy, team)))


def everyone(visit: Visit, policy: Policy) -> list[str]:
    """Every approver of a visit, in slot order."""
    people: list[str] = []
    for slot in visit.slots:
        for user in approvers_for(slot, policy, visit.team):
            if user not in people:
                people.append(user)
    return people


def _open_slot_for(visit: Visit, user: str, policy: Policy) -> Slot:
    if user == visit.requester:
        raise NotAllowed("Nobody approves their own visit.")
    if user in visit.companions:
        raise NotAllowed("You are going on this visit, so you cannot approve it.")
    if visit.state is not State.requested:
        raise NotAllowed(f"This request has already been decided: it is {visit.state.value}.")
    mine = [slot for slot in visit.slots if user in approvers_for(slot, policy, visit.team)]
    if not mine:
        raise NotAllowed("You do not hold a role that approves this visit.")
    if any(d.approver == user for d in visit.decisions):
        raise NotAllowed("You have already given your decision on this visit.")
    filled = {d.slot for d in visit.decisions}
    open_slots = [slot for slot in mine if slot.name not in filled]
    if not open_slots:
        who = ", ".join(f"<@{d.approver}>" for d in visit.decisions if d.slot in {s.name for s in mine})
        raise NotAllowed(f"Your role's approval has already been given by {who}.")
    # Fill the slot that keeps every other open slot fillable by someone else (a head who is also a
    # DSL approving first must fill "head", leaving "dsl" to the deputy).
    decided = frozenset(d.approver for d in visit.decisions) | {user}
    for slot in open_slots:
        others = [s for s in visit.slots if s.name not in filled and s is not slot]
        if assignable(others, policy, visit.team, decided):
            return slot
    return open_slots[0]


def approve(visit: Visit, user: str, now: datetime, policy: Policy) -> Visit:
    """One approver approves; the visit is approved once every slot is filled."""
    slot = _open_slot_for(visit, user, policy)
    decisions = (*visit.decisions, Decision(slot.name, user, True, now))
    filled = {d.slot for d in decisions}
    state = State.approved if all(s.name in filled for s in visit.slots) else State.requested
    return replace(visit, decisions=decisions, state=state)


def decline(visit: Visit, user: str, reason: str, now: datetime, policy: Policy) -> Visit:
    """One approver declines, with a reason; the request is declined."""
    if not reason.strip():
        raise NotAllowed("Give a reason for declining, so the member of staff knows what to do instead.")
    slot = _open_slot_for(visit, user, policy)
    decisions = (*visit.decisions, Decision(slot.name, user, False, now, reason.strip()))
    return replace(visit, decisions=decisions, state=State.declined)


def waiting_for(visit: Visit) -> list[Slot]:
    """Slots still open."""
    filled = {d.slot for d in visit.decisions}
    return [slot for slot in visit.slots if slot.name not in filled]
