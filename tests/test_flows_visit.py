"""The visit lifecycle: every transition, with time passed in."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from flows.approvals import approve
from flows.risk import Flag, RegisterEntry
from flows.visit import FINISHED, LIVE, NotAllowed, State, cancel, come_back, expire, go_out, overdue_by, planned_return
from tests.conftest import COMPANION, DSL, HEAD, MONDAY_9AM, OFFICE, REQUESTER, make_policy
from tests.factories import make_answers, make_details, make_visit

POLICY = make_policy()
NO_PAIRS = make_policy(pairs_required=False)
NOW = MONDAY_9AM + timedelta(hours=1)  # 10:00, the planned start
BACK_BY = NOW + timedelta(minutes=45)


def approved(policy=POLICY, **kwargs):
    return make_visit(policy, state=State.approved, **kwargs)


def out(policy=POLICY, **kwargs):
    return go_out(approved(policy, **kwargs), REQUESTER, NOW, BACK_BY, policy)


# From request to approved ---------------------------------------------------------


def test_a_new_request_waits_for_approval_and_is_approved_by_its_approvers():
    visit = make_visit(POLICY)
    assert visit.state is State.requested
    visit = approve(approve(visit, DSL, MONDAY_9AM, POLICY), HEAD, MONDAY_9AM, POLICY)
    assert visit.state is State.approved


# go_out ---------------------------------------------------------------------------


def test_go_out_records_departure_expected_return_and_state():
    visit = out()
    assert visit.state is State.out
    assert visit.departed_at == NOW
    assert visit.expected_return == BACK_BY
    assert overdue_by(visit, NOW) == timedelta(0)


def test_go_out_freezes_the_ladder_from_the_policy_in_force():
    policy = make_policy(escalation=[{"after": "0m", "notify": ["visitor"]}, {"after": "10m", "notify": ["office", "dsl"]}])
    visit = go_out(approved(policy), REQUESTER, NOW, BACK_BY, policy)
    assert [(t.after, t.notify) for t in visit.ladder] == [
        (timedelta(0), ["visitor"]),
        (timedelta(minutes=10), ["office", "dsl"]),
    ]
    # It is the ladder of the policy passed at /out, not the default school's, and it stays on the visit.
    assert visit.ladder != tuple(POLICY.escalation)
    assert come_back(visit, REQUESTER, BACK_BY).ladder == visit.ladder


def test_an_approved_visit_has_no_ladder_until_it_goes_out():
    assert approved().ladder == ()


def test_go_out_refuses_a_visit_not_yet_approved():
    visit = make_visit(POLICY, state=State.requested)
    with pytest.raises(NotAllowed, match="has not been approved yet"):
        go_out(visit, REQUESTER, NOW, BACK_BY, POLICY)


@pytest.mark.parametrize("state", [State.out, State.overdue, State.emergency])
def test_go_out_refuses_a_visit_already_out(state):
    visit = make_visit(POLICY, state=state)
    with pytest.raises(NotAllowed, match="You are already out on this visit"):
        go_out(visit, REQUESTER, NOW, BACK_BY, POLICY)


@pytest.mark.parametrize("state", [State.declined, State.cancelled, State.expired, State.returned, State.closed])
def test_go_out_refuses_a_finished_visit(state):
    visit = make_visit(POLICY, state=state)
    with pytest.raises(NotAllowed, match=f"This visit is {state.value}: it cannot be started"):
        go_out(visit, REQUESTER, NOW, BACK_BY, POLICY)


@pytest.mark.parametrize("actor", [COMPANION, DSL, OFFICE])
def test_go_out_is_for_the_requester_only(actor):
    with pytest.raises(NotAllowed, match="Only the member of staff who asked for this visit can sign out"):
        go_out(approved(), actor, NOW, BACK_BY, POLICY)


def test_go_out_refuses_a_missing_companion_where_pairs_are_required():
    # Stored before the school switched pairs on: no companion, no companion reason.
    visit = approved(NO_PAIRS, answers=make_answers(companions=()))
    assert visit.assessment.companion_reasons == ()
    with pytest.raises(NotAllowed, match="A companion is required for this visit"):
        go_out(visit, REQUESTER, NOW, BACK_BY, POLICY)


def test_go_out_refuses_a_missing_companion_the_risk_rules_required():
    register = [RegisterEntry(Flag.dont_visit_alone, "Dog", DSL)]
    visit = approved(NO_PAIRS, answers=make_answers(companions=()), register=register)
    # (The request form refuses this; the flow does not rely on that.)
    with pytest.raises(NotAllowed, match="A companion is required"):
        go_out(visit, REQUESTER, NOW, BACK_BY, NO_PAIRS)


def test_go_out_alone_is_fine_where_nothing_requires_a_companion():
    visit = go_out(approved(NO_PAIRS, answers=make_answers(companions=())), REQUESTER, NOW, BACK_BY, NO_PAIRS)
    assert visit.state is State.out
    assert visit.team == (REQUESTER,)


@pytest.mark.parametrize("back_by", [NOW, NOW - timedelta(minutes=1)])
def test_go_out_refuses_an_expected_return_not_in_the_future(back_by):
    with pytest.raises(NotAllowed, match="The expected return must be in the future"):
        go_out(approved(), REQUESTER, NOW, back_by, POLICY)


def test_planned_return_is_now_plus_the_planned_duration():
    visit = approved(details=make_details(duration="1h30m"))
    assert planned_return(visit, NOW) == NOW + timedelta(hours=1, minutes=30)


# come_back ------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [REQUESTER, COMPANION])
def test_the_visitor_or_a_companion_can_sign_back_in(actor):
    back = come_back(out(), actor, BACK_BY - timedelta(minutes=5))
    assert back.state is State.returned
    assert back.returned_at == BACK_BY - timedelta(minutes=5)
    assert back.returned_home is False
    assert back.state in FINISHED


def test_back_home_is_recorded():
    back = come_back(out(), REQUESTER, BACK_BY, home=True)
    assert back.state is State.returned
    assert back.returned_home is True


@pytest.mark.parametrize("state", [State.overdue, State.emergency])
def test_coming_back_ends_an_overdue_or_emergency_visit(state):
    visit = make_visit(POLICY, state=state)
    assert come_back(visit, REQUESTER, NOW).state is State.returned


@pytest.mark.parametrize("actor", [DSL, OFFICE, HEAD])
def test_someone_not_on_the_visit_cannot_sign_it_back_in(actor):
    with pytest.raises(NotAllowed, match="Only the visitor or a companion can sign back in"):
        come_back(out(), actor, BACK_BY)


@pytest.mark.parametrize("state", [State.requested, State.approved, State.returned, State.cancelled])
def test_come_back_refuses_a_visit_that_is_not_out(state):
    with pytest.raises(NotAllowed, match=f"This visit is {state.value}, not out"):
        come_back(make_visit(POLICY, state=state), REQUESTER, NOW)


def test_coming_back_twice_is_refused():
    back = come_back(out(), REQUESTER, BACK_BY)
    with pytest.raises(NotAllowed, match="This visit is returned, not out"):
        come_back(back, COMPANION, BACK_BY + timedelta(minutes=1))


# cancel ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", [State.requested, State.approved])
def test_the_requester_can_cancel_before_going_out(state):
    assert cancel(make_visit(POLICY, state=state), REQUESTER, NOW).state is State.cancelled


@pytest.mark.parametrize("actor", [COMPANION, DSL, HEAD])
def test_only_the_requester_can_cancel(actor):
    with pytest.raises(NotAllowed, match="Only the member of staff who asked for this visit can cancel it"):
        cancel(make_visit(POLICY), actor, NOW)


@pytest.mark.parametrize("state", sorted(LIVE | FINISHED, key=lambda s: s.value))
def test_a_started_or_finished_visit_cannot_be_cancelled(state):
    with pytest.raises(NotAllowed, match=f"This visit is {state.value}; only a requested or approved visit"):
        cancel(make_visit(POLICY, state=state), REQUESTER, NOW)


# expire ---------------------------------------------------------------------------


def test_an_undecided_request_does_not_expire_before_its_start():
    visit = make_visit(POLICY)
    with pytest.raises(NotAllowed, match="start time has not passed yet"):
        expire(visit, visit.start_at - timedelta(seconds=1))


@pytest.mark.parametrize("after", [timedelta(0), timedelta(minutes=1)])
def test_an_undecided_request_expires_from_its_start(after):
    visit = make_visit(POLICY)
    assert visit.start_at == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    assert expire(visit, visit.start_at + after).state is State.expired


def test_start_time_is_read_in_the_school_zone_in_summer():
    visit = make_visit(POLICY, details=make_details(date="2026-06-01", start_time="10:00"))
    # 10:00 BST is 09:00 UTC: at 09:30 UTC the start has passed.
    assert expire(visit, datetime(2026, 6, 1, 9, 30, tzinfo=timezone.utc)).state is State.expired


@pytest.mark.parametrize("state", [State.approved, State.declined, State.out])
def test_only_an_undecided_request_expires(state):
    visit = make_visit(POLICY, state=state)
    with pytest.raises(NotAllowed, match=f"This visit is {state.value}, not waiting for approval"):
        expire(visit, visit.start_at + timedelta(hours=1))


# overdue_by -----------------------------------------------------------------------


def test_overdue_by_is_zero_until_the_expected_return():
    visit = out()
    assert overdue_by(visit, NOW) == timedelta(0)
    assert overdue_by(visit, BACK_BY) == timedelta(0)


def test_overdue_by_counts_from_the_expected_return():
    visit = out()
    assert overdue_by(visit, BACK_BY + timedelta(minutes=17)) == timedelta(minutes=17)


def test_overdue_by_is_zero_for_a_visit_never_out():
    assert overdue_by(approved(), NOW + timedelta(days=1)) == timedelta(0)


def test_overdue_by_is_true_elapsed_time_across_the_autumn_change():
    # Out at 00:30 BST on 25 Oct 2026, due back at 00:30 UTC; checked at 02:30 UTC (02:30 GMT).
    expected = datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)
    visit = make_visit(POLICY, state=State.out, departed_at=expected - timedelta(hours=1), expected_return=expected)
    assert overdue_by(visit, datetime(2026, 10, 25, 2, 30, tzinfo=timezone.utc)) == timedelta(hours=2)


# Rounds ------------------------------------------------------------------------


def _numbered(n):
    from dataclasses import replace as _replace

    return [_replace(approved(), id=i) for i in range(1, n + 1)]


def test_a_round_starts_the_first_visit_and_queues_the_rest_in_order():
    from flows.visit import start_round

    due = MONDAY_9AM + timedelta(hours=2)
    first, second, third = start_round(_numbered(3), REQUESTER, MONDAY_9AM, due, POLICY)
    assert first.state is State.out and first.expected_return == due
    assert (second.state, third.state) == (State.approved, State.approved)
    assert [v.round_lead for v in (first, second, third)] == [1, 1, 1]
    assert [v.round_pos for v in (first, second, third)] == [0, 1, 2]


def test_a_round_needs_two_visits_each_startable_by_the_visitor():
    from dataclasses import replace as _replace

    from flows.visit import start_round

    due = MONDAY_9AM + timedelta(hours=2)
    with pytest.raises(NotAllowed, match="at least two"):
        start_round(_numbered(1), REQUESTER, MONDAY_9AM, due, POLICY)
    visits = _numbered(2)
    visits[1] = _replace(visits[1], state=State.requested)
    with pytest.raises(NotAllowed, match="not been approved"):
        start_round(visits, REQUESTER, MONDAY_9AM, due, POLICY)


def test_moving_on_hands_the_timers_to_the_next_visit_and_closes_the_last():
    from flows.visit import move_on, start_round

    due = MONDAY_9AM + timedelta(hours=2)
    first, second = start_round(_numbered(2), REQUESTER, MONDAY_9AM, due, POLICY)
    later = MONDAY_9AM + timedelta(minutes=50)
    done, moved = move_on(first, second, COMPANION, later)
    assert done.state is State.returned and done.returned_at == later
    assert moved.state is State.out and moved.expected_return == due and moved.departed_at == later
    assert moved.watch.anchor == first.watch.anchor and moved.watch.last_contact_at == later
    with pytest.raises(NotAllowed, match="not the next one"):
        move_on(moved, done, REQUESTER, later)


def test_moving_on_is_refused_while_overdue_and_to_outsiders():
    from dataclasses import replace as _replace

    from flows.visit import move_on, start_round

    first, second = start_round(_numbered(2), REQUESTER, MONDAY_9AM, MONDAY_9AM + timedelta(hours=1), POLICY)
    with pytest.raises(NotAllowed, match="visitor or a companion"):
        move_on(first, second, OFFICE, MONDAY_9AM)
    with pytest.raises(NotAllowed, match="use `/extend` or `/back` first"):
        move_on(_replace(first, state=State.overdue), second, REQUESTER, MONDAY_9AM)
