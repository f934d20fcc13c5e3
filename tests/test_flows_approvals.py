"""Who must approve a visit, and what each approver's click does."""
from __future__ import annotations

from datetime import timedelta

import pytest

from flows.approvals import approve, approvers_for, decline, everyone, is_emergency, required_slots, unfillable, waiting_for
from flows.policy import Role
from flows.risk import RiskAssessment
from flows.visit import NotAllowed, Slot, State
from tests.conftest import COMPANION, DEPUTY, DSL, HEAD, MONDAY_9AM, OFFICE, REQUESTER, SENIOR, make_policy
from tests.factories import make_answers, make_details, make_visit

LATER = MONDAY_9AM + timedelta(minutes=5)

BOTLEY = make_policy(approvals={"all_of": ["dsl", "head"]})
ST_PATRICKS = make_policy(
    approvals={"any_of": ["head", "senior_leader"], "senior_leader_own_visit": {"all_of": ["head"]}},
    outside_hours="head_approval",
)
HARTON = make_policy(approvals={"any_of": ["dsl", "senior_leader"], "emergency": {"any_of": ["dsl"]}})

LOW = RiskAssessment("low")
HEAD_NEEDED = RiskAssessment("raised", head_reasons=("outside the visiting hours",))


def names(slots) -> list[str]:
    return [slot.name for slot in slots]


# required_slots ------------------------------------------------------------------


def test_all_of_needs_one_slot_per_role():
    slots = required_slots(BOTLEY, REQUESTER, make_details(), LOW)
    assert slots == (Slot("dsl", (Role.dsl,)), Slot("head", (Role.head,)))


def test_any_of_needs_one_slot_any_role_fills():
    slots = required_slots(ST_PATRICKS, REQUESTER, make_details(), LOW)
    assert slots == (Slot("head or senior_leader", (Role.head, Role.senior_leader)),)


def test_a_senior_leaders_own_visit_needs_the_head_at_st_patricks():
    assert names(required_slots(ST_PATRICKS, SENIOR, make_details(), LOW)) == ["head"]


def test_senior_leader_rule_only_applies_where_the_policy_has_it():
    assert names(required_slots(BOTLEY, SENIOR, make_details(), LOW)) == ["dsl", "head"]


def test_an_unplanned_welfare_check_goes_on_the_emergency_rule():
    details = make_details(planned=False, reason="welfare")
    assert is_emergency(details)
    assert names(required_slots(HARTON, REQUESTER, details, LOW)) == ["dsl"]


@pytest.mark.parametrize("changes", [{"planned": True, "reason": "welfare"}, {"planned": False, "reason": "attendance"}])
def test_other_visits_do_not_use_the_emergency_rule(changes):
    details = make_details(**changes)
    assert not is_emergency(details)
    assert names(required_slots(HARTON, REQUESTER, details, LOW)) == ["dsl or senior_leader"]


def test_an_emergency_without_an_emergency_rule_uses_the_usual_rule():
    details = make_details(planned=False, reason="welfare")
    assert names(required_slots(BOTLEY, REQUESTER, details, LOW)) == ["dsl", "head"]


def test_head_reasons_add_the_head():
    policy = make_policy(approvals={"all_of": ["dsl"]})
    assert names(required_slots(policy, REQUESTER, make_details(), HEAD_NEEDED)) == ["dsl", "head"]


def test_head_reasons_do_not_add_the_head_twice():
    assert names(required_slots(BOTLEY, REQUESTER, make_details(), HEAD_NEEDED)) == ["dsl", "head"]


def test_head_reasons_add_the_head_on_top_of_any_of():
    assert names(required_slots(ST_PATRICKS, REQUESTER, make_details(), HEAD_NEEDED)) == ["head or senior_leader", "head"]


def test_head_reasons_add_the_head_to_an_emergency():
    details = make_details(planned=False, reason="welfare")
    assert names(required_slots(HARTON, REQUESTER, details, HEAD_NEEDED)) == ["dsl", "head"]


# Who may click -------------------------------------------------------------------


def test_nobody_approves_their_own_visit():
    # The head asks for a visit under a policy where a head approves.
    visit = make_visit(BOTLEY, requester=HEAD)
    with pytest.raises(NotAllowed, match="Nobody approves their own visit"):
        approve(visit, HEAD, LATER, BOTLEY)
    with pytest.raises(NotAllowed, match="Nobody approves their own visit"):
        decline(visit, HEAD, "No", LATER, BOTLEY)


def test_a_companion_cannot_approve_even_holding_the_role():
    visit = make_visit(BOTLEY, answers=make_answers(companions=(DSL,)))
    with pytest.raises(NotAllowed, match="You are going on this visit"):
        approve(visit, DSL, LATER, BOTLEY)
    assert visit.decisions == ()


def test_someone_without_the_role_is_refused():
    visit = make_visit(BOTLEY)
    with pytest.raises(NotAllowed, match="You do not hold a role that approves this visit"):
        approve(visit, OFFICE, LATER, BOTLEY)


def test_a_senior_leader_cannot_approve_where_the_rule_has_no_senior_leader():
    with pytest.raises(NotAllowed, match="do not hold a role"):
        approve(make_visit(BOTLEY), SENIOR, LATER, BOTLEY)


def test_approvers_exclude_the_visiting_team():
    visit = make_visit(BOTLEY, answers=make_answers(companions=(DEPUTY,)))
    assert approvers_for(visit.slots[0], BOTLEY, visit.team) == [DSL]
    assert everyone(visit, BOTLEY) == [DSL, HEAD]


# One decision per role, one slot per person --------------------------------------


def test_all_of_stays_requested_until_every_slot_is_filled():
    visit = approve(make_visit(BOTLEY), DSL, LATER, BOTLEY)
    assert visit.state is State.requested
    assert names(waiting_for(visit)) == ["head"]
    visit = approve(visit, HEAD, LATER, BOTLEY)
    assert visit.state is State.approved
    assert waiting_for(visit) == []
    assert [(d.slot, d.approver, d.approved, d.at) for d in visit.decisions] == [
        ("dsl", DSL, True, LATER),
        ("head", HEAD, True, LATER),
    ]


def test_a_second_holder_of_a_filled_role_is_refused_and_told_who_decided():
    visit = approve(make_visit(BOTLEY), DSL, LATER, BOTLEY)
    with pytest.raises(NotAllowed) as caught:
        approve(visit, DEPUTY, LATER, BOTLEY)
    assert str(caught.value) == f"Your role's approval has already been given by <@{DSL}>."
    with pytest.raises(NotAllowed, match="already been given"):
        decline(visit, DEPUTY, "Too risky", LATER, BOTLEY)


def test_the_same_approver_clicking_twice_is_refused():
    visit = approve(make_visit(BOTLEY), DSL, LATER, BOTLEY)
    with pytest.raises(NotAllowed, match="You have already given your decision"):
        approve(visit, DSL, LATER, BOTLEY)


def test_one_person_holding_two_roles_fills_only_one_slot():
    policy = make_policy(roles={"dsl": [DSL], "head": [DSL, HEAD], "senior_leader": [SENIOR], "office": [OFFICE]})
    visit = approve(make_visit(policy), DSL, LATER, policy)
    assert visit.state is State.requested
    with pytest.raises(NotAllowed, match="already given your decision"):
        approve(visit, DSL, LATER, policy)
    assert names(waiting_for(visit)) == ["head"]
    assert approve(visit, HEAD, LATER, policy).state is State.approved


def test_any_of_completes_on_one_approval():
    visit = approve(make_visit(ST_PATRICKS), SENIOR, LATER, ST_PATRICKS)
    assert visit.state is State.approved
    assert [(d.slot, d.approver) for d in visit.decisions] == [("head or senior_leader", SENIOR)]


def test_st_patricks_senior_leaders_own_visit_is_approved_by_the_head_only():
    visit = make_visit(ST_PATRICKS, requester=SENIOR)
    with pytest.raises(NotAllowed, match="Nobody approves their own visit"):
        approve(visit, SENIOR, LATER, ST_PATRICKS)
    assert approve(visit, HEAD, LATER, ST_PATRICKS).state is State.approved


def test_an_emergency_goes_out_on_the_dsls_approval_alone():
    visit = make_visit(HARTON, details=make_details(planned=False, reason="welfare"))
    assert approve(visit, DEPUTY, LATER, HARTON).state is State.approved


def test_head_reason_on_any_of_needs_the_head_when_a_senior_leader_approves_first():
    visit = make_visit(ST_PATRICKS, details=make_details(start_time="18:00"))
    assert names(visit.slots) == ["head or senior_leader", "head"]
    visit = approve(visit, SENIOR, LATER, ST_PATRICKS)
    assert visit.state is State.requested
    assert approve(visit, HEAD, LATER, ST_PATRICKS).state is State.approved


def test_head_reason_on_any_of_is_approvable_when_the_head_approves_first():
    visit = make_visit(ST_PATRICKS, details=make_details(start_time="18:00"))
    visit = approve(visit, HEAD, LATER, ST_PATRICKS)
    # The head has approved; the senior leader's approval (or the head's alone) must be able to complete it.
    visit = approve(visit, SENIOR, LATER, ST_PATRICKS) if visit.state is State.requested else visit
    assert visit.state is State.approved


def test_a_head_who_is_also_dsl_approving_first_leaves_the_visit_approvable():
    # A common small-school set-up: the head is a DSL, with a deputy DSL.
    policy = make_policy(roles={"dsl": [HEAD, DEPUTY], "head": [HEAD], "senior_leader": [SENIOR], "office": [OFFICE]})
    visit = approve(make_visit(policy), HEAD, LATER, policy)
    assert visit.state is State.requested
    assert approve(visit, DEPUTY, LATER, policy).state is State.approved


def test_a_head_who_is_also_dsl_approving_after_the_deputy_completes_the_visit():
    policy = make_policy(roles={"dsl": [HEAD, DEPUTY], "head": [HEAD], "senior_leader": [SENIOR], "office": [OFFICE]})
    visit = approve(make_visit(policy), DEPUTY, LATER, policy)
    assert approve(visit, HEAD, LATER, policy).state is State.approved


# Decline -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_decline_needs_a_reason(reason):
    visit = make_visit(BOTLEY)
    with pytest.raises(NotAllowed, match="Give a reason for declining"):
        decline(visit, DSL, reason, LATER, BOTLEY)


def test_decline_ends_the_request_with_the_reason():
    visit = decline(make_visit(BOTLEY), HEAD, "  Meet at school instead ", LATER, BOTLEY)
    assert visit.state is State.declined
    assert [(d.slot, d.approver, d.approved, d.reason) for d in visit.decisions] == [
        ("head", HEAD, False, "Meet at school instead")
    ]


def test_one_decline_ends_an_all_of_request_after_an_approval():
    visit = approve(make_visit(BOTLEY), DSL, LATER, BOTLEY)
    assert decline(visit, HEAD, "Not needed", LATER, BOTLEY).state is State.declined


@pytest.mark.parametrize("finish", ["approve", "decline"])
def test_a_decided_request_refuses_further_clicks(finish):
    visit = approve(make_visit(ST_PATRICKS), SENIOR, LATER, ST_PATRICKS)
    if finish == "decline":
        visit = decline(make_visit(ST_PATRICKS), SENIOR, "No", LATER, ST_PATRICKS)
    expected = f"This request has already been decided: it is {visit.state.value}."
    with pytest.raises(NotAllowed) as caught:
        approve(visit, HEAD, LATER, ST_PATRICKS)
    assert str(caught.value) == expected
    with pytest.raises(NotAllowed, match="already been decided"):
        decline(visit, HEAD, "Changed my mind", LATER, ST_PATRICKS)


def test_a_cancelled_request_refuses_clicks():
    visit = make_visit(BOTLEY, state=State.cancelled)
    with pytest.raises(NotAllowed, match="already been decided: it is cancelled"):
        approve(visit, DSL, LATER, BOTLEY)


# unfillable ----------------------------------------------------------------------


def test_unfillable_when_the_only_head_is_the_requester():
    policy = make_policy(approvals={"any_of": ["head"]})
    slots = required_slots(policy, HEAD, make_details(), LOW)
    assert unfillable(slots, policy, (HEAD, COMPANION)) == Slot("head", (Role.head,))


def test_unfillable_when_the_only_head_is_the_companion():
    slots = required_slots(BOTLEY, REQUESTER, make_details(), LOW)
    assert unfillable(slots, BOTLEY, (REQUESTER, HEAD)) == Slot("head", (Role.head,))


def test_not_unfillable_while_another_holder_remains():
    # Both DSLs hold the role: with one on the visit the other can still approve.
    slots = required_slots(BOTLEY, REQUESTER, make_details(), LOW)
    assert unfillable(slots, BOTLEY, (REQUESTER, DSL)) is None


def test_unfillable_when_every_holder_of_the_role_is_on_the_visit():
    slots = required_slots(BOTLEY, REQUESTER, make_details(), LOW)
    assert unfillable(slots, BOTLEY, (DSL, DEPUTY)) == Slot("dsl", (Role.dsl,))
