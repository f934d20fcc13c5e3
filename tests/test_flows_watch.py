"""The safety net while a visit is out: the ladder, check-ins, acknowledgements, SOS, and who is told what.

Pure unit tests: every function takes `now`; nothing sleeps, nothing touches a database or Slack.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from flows import actions
from flows.alerts import (
    CALL_999,
    POLICE_ASK,
    alert_updates,
    checkin_prompt,
    destinations,
    emergency_messages,
    fallback_for,
    repeat_messages,
    tier_messages,
)
from flows.messages import Message
from flows.visit import NotAllowed, State, Visit, come_back, go_out, next_checkin
from flows.watch import (
    Alarm,
    acknowledge,
    advance,
    checkin,
    confirm_safe,
    extend,
    next_due,
    no_answer,
    raise_emergency,
    tier_due_at,
)
from tests.conftest import (
    COMPANION,
    DEPUTY,
    DSL,
    HEAD,
    MONDAY_9AM,
    OFFICE,
    OFFICE_CHANNEL,
    REQUESTER,
    SAFEGUARDING_CHANNEL,
    SENIOR,
    make_policy,
)
from tests.factories import make_answers, make_visit

S = timedelta(seconds=1)
M = timedelta(minutes=1)

POLICY = make_policy()  # check-ins every 30m, grace 10m, ack pause 15m, repeats every 15m
NO_CHECKIN = make_policy(checkin_interval=None)
FAMILY_SUPPORT = "U20"
WITH_FAMILY_SUPPORT = make_policy(
    checkin_interval=None,
    roles={"dsl": [DSL, DEPUTY], "head": [HEAD], "senior_leader": [SENIOR], "office": [OFFICE], "family_support": [FAMILY_SUPPORT]},
)
OUTSIDER = "U99"

NOW = MONDAY_9AM + timedelta(hours=1)  # 10:00 (London = UTC in November)
BACK = NOW + 45 * M  # 10:45
# With the default ladder (0m visitor, 15m office, 30m safeguarding+dsl, 60m head+dsl), measured from 10:45.
TIER_AT = [BACK, BACK + 15 * M, BACK + 30 * M, BACK + 60 * M]  # 10:45, 11:00, 11:15, 11:45
EXHAUSTED = TIER_AT[-1]

PHONE_BOOK = {REQUESTER: "07700 900010", COMPANION: "07700 900011"}
ADDRESS = "12 Example Road, Botley OX2 9AA"
TRAVEL = "AB12 CDE, blue Ford Focus"
CONTACT = "01632 960123"


def phones(user: str) -> str | None:
    return PHONE_BOOK.get(user)


def out(policy=NO_CHECKIN, *, start: datetime = NOW, back: datetime = BACK, visit_id: int = 7, **kwargs) -> Visit:
    """An approved visit from the factories, signed out by its requester at `start`."""
    approved = make_visit(policy, state=State.approved, id=visit_id, **kwargs)
    return go_out(approved, REQUESTER, start, back, policy)


def fire(visit: Visit, now: datetime, policy=NO_CHECKIN) -> tuple[Visit, list[Alarm]]:
    return advance(visit, now, policy)


def tiers(alarms: list[Alarm]) -> list[int]:
    return [a.tier for a in alarms if a.kind == "tier"]


def kinds(alarms: list[Alarm]) -> list[str]:
    return [a.kind for a in alarms]


def at_tier(k: int, policy=NO_CHECKIN, **kwargs) -> Visit:
    """A visit whose ladder has fired tiers 0..k, each at its time."""
    visit = out(policy, **kwargs)
    for i in range(k + 1):
        visit, alarms = advance(visit, TIER_AT[i], policy)
        assert tiers(alarms) == [i]
    return visit


def sweep(visit: Visit, start: datetime, end: datetime, policy=NO_CHECKIN, step: timedelta = 15 * S):
    """Call advance every `step` (the sweep) and collect (time, alarm) pairs."""
    fired: list[tuple[datetime, Alarm]] = []
    t = start
    while t <= end:
        visit, alarms = advance(visit, t, policy)
        fired += [(t, a) for a in alarms]
        t += step
    return visit, fired


def everything(message: Message) -> str:
    """All the words of a message: text, field labels and values, notes, button labels."""
    parts = [message.text, *(f"{k}: {v}" for k, v in message.fields), *message.notes, *(b.label for b in message.buttons)]
    return "\n".join(parts)


def labels(message: Message) -> list[str]:
    return [b.label for b in message.buttons]


HANDLING = ["I'm handling this", "Reached, safe", "No answer"]
VISITOR = ["I'm back", "Extend", "Need help"]


# The ladder: each tier at its time, once -------------------------------------------


@pytest.mark.parametrize("index", range(4))
def test_each_tier_fires_at_its_time_and_not_a_second_before(index):
    visit = at_tier(index - 1) if index else out()
    assert tier_due_at(visit, index) == TIER_AT[index]
    before, alarms = fire(visit, TIER_AT[index] - S)
    assert alarms == []
    assert before.watch.tier_sent == index
    after, alarms = fire(before, TIER_AT[index])
    assert alarms == [Alarm("tier", tier=index)]
    assert after.watch.tier_sent == index + 1
    assert after.state is State.overdue


@pytest.mark.parametrize("index", range(4))
def test_each_tier_fires_exactly_once_however_often_advance_is_called(index):
    visit = at_tier(index - 1) if index else out()
    next_tier = TIER_AT[index + 1] if index + 1 < 4 else EXHAUSTED + 15 * M  # the first repeat
    fired = []
    for t in (TIER_AT[index], TIER_AT[index], TIER_AT[index] + S, TIER_AT[index] + M, next_tier - S, next_tier - S):
        visit, alarms = fire(visit, t)
        fired += alarms
    assert fired == [Alarm("tier", tier=index)]


def test_the_state_stays_out_until_the_first_tier():
    visit, alarms = fire(out(), BACK - S)
    assert visit.state is State.out and alarms == []


def test_a_catch_up_long_after_several_tiers_fires_each_due_tier_once_in_ladder_order():
    visit = out()
    visit, alarms = fire(visit, TIER_AT[2] + 5 * M)  # 11:20: tiers 0, 1 and 2 are due, tier 3 is not
    assert alarms == [Alarm("tier", tier=0), Alarm("tier", tier=1), Alarm("tier", tier=2)]
    visit, again = fire(visit, TIER_AT[2] + 5 * M)
    assert again == []
    visit, later = fire(visit, TIER_AT[3])
    assert later == [Alarm("tier", tier=3)]


def test_a_catch_up_after_the_whole_ladder_fires_all_tiers_and_no_repeat_in_the_same_call():
    visit, alarms = fire(out(), BACK + 5 * timedelta(hours=1))
    assert alarms == [Alarm("tier", tier=i) for i in range(4)]
    assert visit.watch.tier_sent == 4
    # The first repeat comes a repeat interval after the catch-up, not at once.
    assert next_due(visit, NO_CHECKIN) == BACK + 5 * timedelta(hours=1) + 15 * M


def test_a_sweep_every_15_seconds_fires_each_tier_at_its_time_then_repeats_every_interval():
    _, fired = sweep(out(), NOW, EXHAUSTED + 50 * M)
    assert [(t, a.kind, a.tier, a.number) for t, a in fired] == [
        (TIER_AT[0], "tier", 0, 0),
        (TIER_AT[1], "tier", 1, 0),
        (TIER_AT[2], "tier", 2, 0),
        (TIER_AT[3], "tier", 3, 0),
        (EXHAUSTED + 15 * M, "repeat", -1, 1),
        (EXHAUSTED + 30 * M, "repeat", -1, 2),
        (EXHAUSTED + 45 * M, "repeat", -1, 3),
    ]


# next_due ----------------------------------------------------------------------------


def test_next_due_is_the_next_tier_when_check_ins_are_off():
    visit = out()
    assert next_due(visit, NO_CHECKIN) == TIER_AT[0]
    for i in range(3):
        visit, _ = fire(visit, TIER_AT[i])
        assert next_due(visit, NO_CHECKIN) == TIER_AT[i + 1]


def test_next_due_is_the_check_in_when_it_comes_before_the_first_tier():
    visit = out(POLICY)
    assert visit.watch.next_checkin_at == NOW + 30 * M
    assert next_due(visit, POLICY) == NOW + 30 * M


def test_next_due_is_the_check_in_deadline_when_it_comes_before_the_first_tier():
    visit, alarms = advance(out(POLICY), NOW + 30 * M, POLICY)
    assert kinds(alarms) == ["checkin"]
    assert visit.watch.checkin_deadline == NOW + 40 * M
    assert next_due(visit, POLICY) == NOW + 40 * M  # before the tier at 10:45


def test_next_due_is_the_tier_when_it_comes_before_the_check_in():
    # Out for 4 hours with check-ins every 30m: the check-in at 10:30 is sooner than the tier at 14:00.
    visit = out(POLICY, back=NOW + timedelta(hours=4))
    assert next_due(visit, POLICY) == NOW + 30 * M
    # Answered just now, the next check-in would be at 13:59:00 + 30m, after the return: the tier is next.
    visit = checkin(visit, REQUESTER, NOW + timedelta(hours=4) - M, POLICY)
    assert visit.watch.next_checkin_at is None
    assert next_due(visit, POLICY) == NOW + timedelta(hours=4)


def test_next_due_is_the_next_repeat_once_the_ladder_is_exhausted():
    visit = at_tier(3)
    assert next_due(visit, NO_CHECKIN) == EXHAUSTED + 15 * M
    visit, alarms = fire(visit, EXHAUSTED + 15 * M)
    assert kinds(alarms) == ["repeat"]
    assert next_due(visit, NO_CHECKIN) == EXHAUSTED + 30 * M


def test_next_due_is_none_once_the_visit_is_returned():
    visit = at_tier(1)
    assert next_due(visit, NO_CHECKIN) == TIER_AT[2]
    back = come_back(visit, REQUESTER, TIER_AT[1] + M)
    assert next_due(back, NO_CHECKIN) is None
    assert next_due(come_back(out(POLICY), REQUESTER, NOW + M), POLICY) is None


# Check-ins ----------------------------------------------------------------------------


def test_the_first_check_in_is_at_departure_plus_the_interval_and_not_a_second_before():
    visit = out(POLICY)
    same, alarms = advance(visit, NOW + 30 * M - S, POLICY)
    assert alarms == []
    assert same.watch.checkins_sent == 0
    visit, alarms = advance(visit, NOW + 30 * M, POLICY)
    assert alarms == [Alarm("checkin", number=1)]
    assert visit.state is State.out  # a check-in is not an alert
    assert visit.watch.checkin_deadline == NOW + 40 * M
    # Asked once only.
    visit, alarms = advance(visit, NOW + 35 * M, POLICY)
    assert alarms == []


def test_the_check_in_prompt_goes_to_the_visitor_with_ok_extend_and_help():
    visit, _ = advance(out(POLICY), NOW + 30 * M, POLICY)
    [message] = checkin_prompt(visit, 1, NOW + 30 * M, POLICY)
    assert message.to == REQUESTER
    assert "Still OK?" in message.text and "10:40" in message.text
    assert [(b.label, b.action_id) for b in message.buttons] == [
        ("I'm OK", actions.CHECKIN_OK),
        ("Extend", actions.CHECKIN_EXTEND),
        ("Need help", actions.CHECKIN_HELP),
    ]
    assert message.key == "checkin:7:1"


def test_no_check_in_is_scheduled_at_or_after_the_expected_return():
    assert out(POLICY, back=NOW + 30 * M).watch.next_checkin_at is None  # exactly at the return
    assert out(POLICY, back=NOW + 20 * M).watch.next_checkin_at is None
    assert out(POLICY, back=NOW + 30 * M + S).watch.next_checkin_at == NOW + 30 * M
    assert next_checkin(NOW, NOW + 30 * M, POLICY) is None


def test_a_short_visit_gets_the_ladder_and_no_check_in():
    _, fired = sweep(out(POLICY, back=NOW + 30 * M), NOW, NOW + 31 * M, POLICY)
    assert [(t, a) for t, a in fired] == [(NOW + 30 * M, Alarm("tier", tier=0))]


def test_no_check_ins_when_the_policy_has_no_interval():
    visit = out(NO_CHECKIN, back=NOW + timedelta(hours=3))
    assert visit.watch.next_checkin_at is None
    _, fired = sweep(visit, NOW, NOW + timedelta(hours=3) - S, NO_CHECKIN)
    assert fired == []


def test_a_catch_up_at_the_expected_return_sends_the_ladder_not_a_stale_check_in():
    # The sweep did not run between 10:29 and 10:45 (restart): the 10:30 check-in is now the ladder's job.
    visit, alarms = advance(out(POLICY), BACK, POLICY)
    assert alarms == [Alarm("tier", tier=0)]


def test_answering_a_check_in_schedules_the_next_one():
    policy = POLICY
    visit = out(policy, back=NOW + timedelta(hours=2))  # back at 12:00
    visit, alarms = advance(visit, NOW + 30 * M, policy)
    assert alarms == [Alarm("checkin", number=1)]
    visit = checkin(visit, REQUESTER, NOW + 35 * M, policy)
    assert visit.watch.checkin_deadline is None
    assert visit.watch.next_checkin_at == NOW + 65 * M
    assert visit.watch.last_contact_at == NOW + 35 * M
    assert next_due(visit, policy) == NOW + 65 * M
    # The deadline of the answered check-in never fires anything.
    visit, alarms = advance(visit, NOW + 40 * M, policy)
    assert alarms == []
    visit, alarms = advance(visit, NOW + 65 * M, policy)
    assert alarms == [Alarm("checkin", number=2)]
    # A companion may answer too.
    visit = checkin(visit, COMPANION, NOW + 66 * M, policy)
    assert visit.watch.next_checkin_at == NOW + 96 * M
    # The last answer before the return schedules none after it.
    visit, _ = advance(visit, NOW + 96 * M, policy)
    visit = checkin(visit, REQUESTER, NOW + 97 * M, policy)
    assert visit.watch.next_checkin_at is None


def test_only_the_team_can_check_in():
    visit = out(POLICY)
    for user in (DSL, OFFICE, OUTSIDER):
        with pytest.raises(NotAllowed):
            checkin(visit, user, NOW + M, POLICY)


def test_a_missed_check_in_anchors_the_ladder_at_the_deadline():
    visit, _ = advance(out(POLICY), NOW + 30 * M, POLICY)
    deadline = NOW + 40 * M  # sent at 10:30 + 10m grace
    same, alarms = advance(visit, deadline - S, POLICY)
    assert alarms == []
    visit, alarms = advance(visit, deadline, POLICY)
    assert alarms == [Alarm("tier", tier=0)]
    assert visit.state is State.overdue
    assert visit.watch.anchor == deadline
    assert visit.watch.checkin_deadline is None
    # The rest of the ladder is measured from the deadline too, not from the 10:45 return.
    assert next_due(visit, POLICY) == deadline + 15 * M
    visit, alarms = advance(visit, deadline + 15 * M, POLICY)
    assert alarms == [Alarm("tier", tier=1)]
    # The visitor is told which check-in they missed.
    [dm] = tier_messages(visit, Alarm("tier", tier=0), deadline, POLICY, phones)
    assert dm.to == REQUESTER
    assert "did not answer the check-in due at 10:40" in dm.text


def test_answering_after_a_missed_check_in_starts_a_new_episode_timed_from_the_expected_return():
    visit, _ = advance(out(POLICY), NOW + 30 * M, POLICY)
    visit, alarms = advance(visit, NOW + 40 * M, POLICY)
    assert tiers(alarms) == [0]
    episode = visit.watch.episode
    visit = checkin(visit, REQUESTER, NOW + 42 * M, POLICY)
    assert visit.state is State.out
    assert visit.watch.episode == episode + 1
    assert visit.watch.anchor == BACK
    assert visit.watch.tier_sent == 0
    assert next_due(visit, POLICY) == BACK
    same, alarms = advance(visit, BACK - S, POLICY)
    assert alarms == []
    visit, alarms = advance(visit, BACK, POLICY)
    assert alarms == [Alarm("tier", tier=0)]
    [dm] = tier_messages(visit, alarms[0], BACK, POLICY, phones)
    assert "due back at 10:45" in dm.text
    assert dm.key == f"alert:7:e{episode + 1}:t0:{REQUESTER}"


# Acknowledge ----------------------------------------------------------------------------


def test_acknowledge_records_who_and_pauses_until_ack_time_plus_ack_pause():
    visit = at_tier(1)  # the office was told at 11:00
    acked = acknowledge(visit, OFFICE, TIER_AT[1] + 5 * M, NO_CHECKIN)  # 11:05
    assert acked.watch.ack_by == OFFICE
    assert acked.watch.ack_at == TIER_AT[1] + 5 * M
    assert acked.watch.paused_until == TIER_AT[1] + 20 * M  # 11:20
    # Tier 2 was due at 11:15: it now waits until 11:20.
    assert tier_due_at(acked, 2) == TIER_AT[1] + 20 * M
    assert next_due(acked, NO_CHECKIN) == TIER_AT[1] + 20 * M
    for t in (TIER_AT[2], TIER_AT[1] + 20 * M - S):
        _, alarms = fire(acked, t)
        assert alarms == []
    visit, alarms = fire(acked, TIER_AT[1] + 20 * M)
    assert alarms == [Alarm("tier", tier=2)]
    # The escalated message says who was handling it.
    messages = tier_messages(visit, alarms[0], TIER_AT[1] + 20 * M, NO_CHECKIN, phones)
    dsl = next(m for m in messages if m.to == DSL)
    assert f"<@{OFFICE}> was handling this since 11:05." in dsl.notes


def test_an_ack_whose_pause_ends_before_the_next_tier_does_not_delay_it():
    visit = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + M, NO_CHECKIN)  # paused until 11:16, tier 2 at 11:15
    assert tier_due_at(visit, 2) == TIER_AT[1] + 16 * M


def test_nobody_can_acknowledge_before_anyone_beyond_the_visitor_is_alerted():
    # Tier 0 only DMs the visitor: the office cannot hold back the tier that would alert it.
    with pytest.raises(NotAllowed, match="no open alert"):
        acknowledge(at_tier(0), OFFICE, TIER_AT[0], NO_CHECKIN)
    _, alarms = fire(at_tier(0), TIER_AT[1])
    assert alarms == [Alarm("tier", tier=1)]


def test_the_first_acknowledgement_wins_while_the_pause_lasts():
    visit = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + 5 * M, NO_CHECKIN)
    for user, t in ((DSL, TIER_AT[1] + 6 * M), (HEAD, TIER_AT[1] + 20 * M - S), (OFFICE, TIER_AT[1] + 7 * M)):
        with pytest.raises(NotAllowed, match=f"<@{OFFICE}> is already handling this"):
            acknowledge(visit, user, t, NO_CHECKIN)
    # Once the pause is over, someone else may take it.
    taken = acknowledge(visit, DSL, TIER_AT[1] + 20 * M, NO_CHECKIN)
    assert taken.watch.ack_by == DSL
    assert taken.watch.paused_until == TIER_AT[1] + 35 * M


@pytest.mark.parametrize("user", [REQUESTER, COMPANION, OUTSIDER, FAMILY_SUPPORT])
def test_the_team_and_people_without_a_responder_role_cannot_acknowledge(user):
    visit = at_tier(1, WITH_FAMILY_SUPPORT)
    with pytest.raises(NotAllowed):
        acknowledge(visit, user, TIER_AT[1] + M, WITH_FAMILY_SUPPORT)


@pytest.mark.parametrize("user", [OFFICE, DSL, DEPUTY, HEAD, SENIOR])
def test_every_responder_role_can_acknowledge(user):
    assert acknowledge(at_tier(1), user, TIER_AT[1] + M, NO_CHECKIN).watch.ack_by == user


def test_a_dsl_on_the_visit_cannot_acknowledge_their_own_alert():
    visit = at_tier(1, answers=make_answers(companions=(DSL,)))
    with pytest.raises(NotAllowed):
        acknowledge(visit, DSL, TIER_AT[1] + M, NO_CHECKIN)


def test_acknowledge_without_an_open_alert_is_refused():
    with pytest.raises(NotAllowed, match="no open alert"):
        acknowledge(out(), OFFICE, NOW + M, NO_CHECKIN)
    with pytest.raises(NotAllowed):
        acknowledge(come_back(at_tier(1), REQUESTER, TIER_AT[1] + M), OFFICE, TIER_AT[1] + 2 * M, NO_CHECKIN)


def test_the_ladder_goes_on_after_the_pause_if_nobody_confirmed_safety():
    visit = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + 5 * M, NO_CHECKIN)
    _, fired = sweep(visit, TIER_AT[1] + 5 * M, EXHAUSTED + 15 * M)
    assert [(t, a.kind, a.tier) for t, a in fired] == [
        (TIER_AT[1] + 20 * M, "tier", 2),
        (TIER_AT[3], "tier", 3),
        (EXHAUSTED + 15 * M, "repeat", -1),
    ]


# No answer ----------------------------------------------------------------------------


def test_no_answer_makes_the_next_tier_due_at_once():
    visit = no_answer(at_tier(1), OFFICE, TIER_AT[1] + 3 * M, NO_CHECKIN)
    assert next_due(visit, NO_CHECKIN) == TIER_AT[1] + 3 * M
    visit, alarms = fire(visit, TIER_AT[1] + 3 * M)
    assert alarms == [Alarm("tier", tier=2)]  # only the next tier, not the whole ladder
    assert visit.watch.fire_now is False
    # The tier after keeps its own time.
    assert next_due(visit, NO_CHECKIN) == TIER_AT[3]
    _, alarms = fire(visit, TIER_AT[3] - S)
    assert alarms == []


def test_no_answer_ends_an_acknowledgement_pause():
    visit = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + 2 * M, NO_CHECKIN)
    visit = no_answer(visit, DSL, TIER_AT[1] + 4 * M, NO_CHECKIN)
    assert visit.watch.paused_until is None
    _, alarms = fire(visit, TIER_AT[1] + 4 * M)
    assert alarms == [Alarm("tier", tier=2)]


def test_no_answer_after_the_ladder_is_exhausted_makes_the_next_repeat_due_at_once():
    visit = at_tier(3)
    visit = no_answer(visit, DSL, EXHAUSTED + 5 * M, NO_CHECKIN)
    assert next_due(visit, NO_CHECKIN) == EXHAUSTED + 5 * M
    visit, alarms = fire(visit, EXHAUSTED + 5 * M)
    assert alarms == [Alarm("repeat", number=1)]
    assert next_due(visit, NO_CHECKIN) == EXHAUSTED + 20 * M


@pytest.mark.parametrize("user", [REQUESTER, COMPANION, OUTSIDER])
def test_no_answer_is_refused_for_the_team_and_outsiders(user):
    with pytest.raises(NotAllowed):
        no_answer(at_tier(1), user, TIER_AT[1] + M, NO_CHECKIN)


def test_no_answer_without_an_open_alert_is_refused():
    with pytest.raises(NotAllowed):
        no_answer(out(), OFFICE, NOW + M, NO_CHECKIN)


# Confirm safe ----------------------------------------------------------------------------


def test_confirm_safe_without_an_open_alert_is_refused():
    # Only the visitor has been told (tier 0), or the visitor has since extended: nobody may close the visit.
    for visit in (at_tier(0), out()):
        with pytest.raises(NotAllowed, match="no open alert"):
            confirm_safe(visit, OFFICE, "Spoke to Sam", TIER_AT[0] + M, NO_CHECKIN)


@pytest.mark.parametrize("k", range(1, 4))
def test_confirm_safe_ends_everything(k):
    visit = at_tier(k)
    safe = confirm_safe(visit, OFFICE, "  Spoke to Sam, on the way back  ", TIER_AT[k] + M, NO_CHECKIN)
    assert safe.state is State.returned
    assert safe.returned_at == TIER_AT[k] + M
    assert safe.watch.safe_by == OFFICE
    assert safe.watch.safe_note == "Spoke to Sam, on the way back"
    assert next_due(safe, NO_CHECKIN) is None
    for t in (TIER_AT[k] + M, EXHAUSTED + timedelta(hours=5)):
        same, alarms = fire(safe, t)
        assert alarms == [] and same == safe


def test_confirm_safe_ends_the_repeats():
    visit, _ = fire(at_tier(3), EXHAUSTED + 15 * M)
    safe = confirm_safe(visit, HEAD, "Called her, she is fine", EXHAUSTED + 16 * M, NO_CHECKIN)
    _, fired = sweep(safe, EXHAUSTED + 16 * M, EXHAUSTED + timedelta(hours=2), step=M)
    assert fired == []


@pytest.mark.parametrize("note", ["", "   ", "\n"])
def test_confirm_safe_needs_a_note(note):
    with pytest.raises(NotAllowed):
        confirm_safe(at_tier(1), OFFICE, note, TIER_AT[1] + M, NO_CHECKIN)


@pytest.mark.parametrize("user", [REQUESTER, COMPANION, OUTSIDER, FAMILY_SUPPORT])
def test_confirm_safe_is_refused_for_the_team_and_outsiders(user):
    visit = at_tier(1, WITH_FAMILY_SUPPORT)
    with pytest.raises(NotAllowed):
        confirm_safe(visit, user, "they are fine", TIER_AT[1] + M, WITH_FAMILY_SUPPORT)


def test_after_confirm_safe_every_alert_action_is_refused():
    safe = confirm_safe(at_tier(2), DSL, "Reached by phone", TIER_AT[2] + M, NO_CHECKIN)
    with pytest.raises(NotAllowed):
        acknowledge(safe, OFFICE, TIER_AT[2] + 2 * M, NO_CHECKIN)
    with pytest.raises(NotAllowed):
        no_answer(safe, OFFICE, TIER_AT[2] + 2 * M, NO_CHECKIN)
    with pytest.raises(NotAllowed):
        confirm_safe(safe, HEAD, "again", TIER_AT[2] + 2 * M, NO_CHECKIN)


def test_alert_updates_after_confirm_safe_remove_every_button_and_escape_the_note():
    safe = confirm_safe(at_tier(2), DSL, "<!channel> reached", TIER_AT[2] + M, NO_CHECKIN)
    refs = [("alert:7:e0:t1:C0OFFICE", OFFICE_CHANNEL), ("alert:7:e0:t0:U10", REQUESTER)]
    updates = alert_updates(safe, refs, TIER_AT[2] + M, NO_CHECKIN, "safe")
    assert [u.to for u in updates] == [OFFICE_CHANNEL, REQUESTER]
    for update in updates:
        assert update.buttons == ()
        assert "Confirmed safe" in update.text
        assert "&lt;!channel&gt; reached" in update.text and "<!channel>" not in update.text
    assert [u.replaces for u in updates] == [r for r, _ in refs]
    assert len({u.key for u in updates}) == 2


def test_alert_updates_while_acknowledged_hide_the_claim_button_from_responders():
    acked = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + M, NO_CHECKIN)
    refs = [("alert:7:e0:t1:C0OFFICE", OFFICE_CHANNEL), ("alert:7:e0:t0:U10", REQUESTER)]
    office, visitor = alert_updates(acked, refs, TIER_AT[1] + M, NO_CHECKIN, "ack")
    assert labels(office) == ["Reached, safe", "No answer"]
    assert f"<@{OFFICE}> is handling this" in office.text
    assert labels(visitor) == VISITOR  # the team never gets the responders' buttons


# Exhaustion and repeats ----------------------------------------------------------------


def test_after_the_last_tier_the_alert_repeats_to_every_dsl_and_the_head_until_confirmed():
    visit = at_tier(3)
    numbers = []
    for n in range(1, 4):
        t = EXHAUSTED + n * 15 * M
        same, alarms = fire(visit, t - S)
        assert alarms == []
        visit, alarms = fire(visit, t)
        assert alarms == [Alarm("repeat", number=n)]
        numbers.append(n)
        messages = repeat_messages(visit, alarms[0], t, NO_CHECKIN, phones)
        assert sorted(m.to for m in messages) == sorted([DSL, DEPUTY, HEAD])
        for m in messages:
            assert f"reminder {n}" in m.text
            assert "STILL NOT CONFIRMED SAFE" in m.text and "OVERDUE" in m.text
            assert "repeats every 15 min" in m.text
            assert ("Address", ADDRESS) in m.fields
            assert m.notes == (CALL_999, POLICE_ASK)
            assert labels(m) == HANDLING
    assert numbers == [1, 2, 3]
    assert visit.state is State.overdue


def test_repeats_never_go_to_the_visiting_team_even_when_a_dsl_is_on_the_visit():
    visit = at_tier(3, answers=make_answers(companions=(DSL,)))
    visit, alarms = fire(visit, EXHAUSTED + 15 * M)
    messages = repeat_messages(visit, alarms[0], EXHAUSTED + 15 * M, NO_CHECKIN, phones)
    assert sorted(m.to for m in messages) == sorted([DEPUTY, HEAD])
    # Nor do the ladder's DSL tiers.
    for tier in (2, 3):
        to = [m.to for m in tier_messages(visit, Alarm("tier", tier=tier), TIER_AT[tier], NO_CHECKIN, phones)]
        assert DSL not in to and REQUESTER not in to
        assert DEPUTY in to


def test_repeat_keys_are_unique_per_number_and_destination():
    visit = at_tier(3)
    keys = []
    for n in range(1, 4):
        visit, alarms = fire(visit, EXHAUSTED + n * 15 * M)
        keys += [m.key for m in repeat_messages(visit, alarms[0], EXHAUSTED + n * 15 * M, NO_CHECKIN, phones)]
    assert len(keys) == 9 == len(set(keys))


def test_repeats_of_a_second_episode_do_not_reuse_the_keys_of_the_first():
    visit = at_tier(3)
    visit, alarms = fire(visit, EXHAUSTED + 15 * M)
    first = {m.key for m in repeat_messages(visit, alarms[0], EXHAUSTED + 15 * M, NO_CHECKIN, phones)}
    # The visitor makes contact and extends; then goes silent again and the whole ladder runs out again.
    new_return = EXHAUSTED + 20 * M
    visit = extend(visit, REQUESTER, new_return, EXHAUSTED + 16 * M, NO_CHECKIN)
    visit, alarms = fire(visit, new_return + 60 * M)
    assert tiers(alarms) == [0, 1, 2, 3]
    visit, alarms = fire(visit, new_return + 75 * M)
    assert alarms == [Alarm("repeat", number=1)]
    second = {m.key for m in repeat_messages(visit, alarms[0], new_return + 75 * M, NO_CHECKIN, phones)}
    # The outbox refuses a second message with the same key (INSERT OR IGNORE): these reminders would never be sent.
    assert not first & second


# Extend ----------------------------------------------------------------------------------


def test_extend_retimes_the_ladder_from_the_new_return():
    visit = at_tier(2)  # 11:15, safeguarding and the DSLs told
    new_return = NOW + timedelta(hours=2)  # 12:00
    visit = extend(visit, REQUESTER, new_return, TIER_AT[2] + 2 * M, NO_CHECKIN)
    assert visit.state is State.out
    assert visit.expected_return == new_return
    assert visit.watch.anchor == new_return
    assert visit.watch.tier_sent == 0
    assert visit.watch.episode == 1
    assert visit.watch.ack_by is None and visit.watch.last_alarm_at is None
    assert next_due(visit, NO_CHECKIN) == new_return
    _, fired = sweep(visit, TIER_AT[2] + 2 * M, new_return + 60 * M)
    assert [(t, a.tier) for t, a in fired] == [
        (new_return, 0),
        (new_return + 15 * M, 1),
        (new_return + 30 * M, 2),
        (new_return + 60 * M, 3),
    ]


def test_extend_before_the_return_moves_the_ladder_and_schedules_check_ins():
    visit = extend(out(POLICY), COMPANION, NOW + 90 * M, NOW + 20 * M, POLICY)  # a companion may extend
    assert visit.expected_return == NOW + 90 * M
    assert visit.watch.next_checkin_at == NOW + 50 * M
    _, alarms = advance(visit, BACK, POLICY)  # the old return passes without an alarm
    assert tiers(alarms) == []


def test_extend_clears_an_acknowledgement_and_the_new_episode_keys_differ():
    visit = acknowledge(at_tier(1), OFFICE, TIER_AT[1] + M, NO_CHECKIN)
    old = {m.key for m in tier_messages(visit, Alarm("tier", tier=1), TIER_AT[1], NO_CHECKIN, phones)}
    new_return = TIER_AT[1] + 30 * M
    visit = extend(visit, REQUESTER, new_return, TIER_AT[1] + 2 * M, NO_CHECKIN)
    assert visit.watch.ack_by is None and visit.watch.paused_until is None
    visit, alarms = fire(visit, new_return + 15 * M)
    assert tiers(alarms) == [0, 1]
    new = {m.key for m in tier_messages(visit, Alarm("tier", tier=1), new_return + 15 * M, NO_CHECKIN, phones)}
    assert new == {f"alert:7:e1:t1:{OFFICE_CHANNEL}"}
    assert not old & new


@pytest.mark.parametrize("delta", [timedelta(0), -S, -timedelta(hours=1)])
def test_extend_to_a_time_not_in_the_future_is_refused(delta):
    now = TIER_AT[1] + M
    with pytest.raises(NotAllowed):
        extend(at_tier(1), REQUESTER, now + delta, now, NO_CHECKIN)


@pytest.mark.parametrize("user", [DSL, HEAD, OFFICE, OUTSIDER])
def test_only_the_team_can_extend(user):
    with pytest.raises(NotAllowed):
        extend(at_tier(1), user, TIER_AT[1] + timedelta(hours=1), TIER_AT[1] + M, NO_CHECKIN)


def test_extend_on_a_returned_visit_is_refused():
    back = come_back(out(), REQUESTER, NOW + M)
    with pytest.raises(NotAllowed):
        extend(back, REQUESTER, NOW + timedelta(hours=1), NOW + 2 * M, NO_CHECKIN)


# Back -------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 4])
def test_coming_back_during_any_tier_ends_the_alert(k):
    """k = -1: before any tier; 0..3: after tier k; 4: after the first repeat."""
    if k == -1:
        visit, now = out(), NOW + 30 * M
    elif k < 4:
        visit, now = at_tier(k), TIER_AT[k] + M
    else:
        visit, _ = fire(at_tier(3), EXHAUSTED + 15 * M)
        now = EXHAUSTED + 16 * M
    back = come_back(visit, REQUESTER, now)
    assert back.state is State.returned
    assert next_due(back, NO_CHECKIN) is None
    _, fired = sweep(back, now, EXHAUSTED + timedelta(hours=3), step=M)
    assert fired == []


def test_a_companion_can_come_back_but_a_responder_cannot_sign_the_team_in():
    assert come_back(at_tier(1), COMPANION, TIER_AT[1] + M).state is State.returned
    with pytest.raises(NotAllowed):
        come_back(at_tier(1), DSL, TIER_AT[1] + M)


# Emergencies ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sos", "help", "duress"])
def test_an_emergency_stops_the_ladder_and_repeats_until_confirmed_safe(kind):
    raised_at = NOW + 20 * M
    visit = raise_emergency(out(POLICY), REQUESTER, kind, "note", raised_at)
    assert visit.state is State.emergency
    assert visit.watch.emergency == kind
    assert visit.watch.next_checkin_at is None and visit.watch.checkin_deadline is None
    assert next_due(visit, POLICY) == raised_at + 15 * M
    visit, fired = sweep(visit, raised_at, raised_at + 50 * M, POLICY)  # across the expected return at 10:45
    assert [(t, a) for t, a in fired] == [
        (raised_at + 15 * M, Alarm("repeat", number=1)),
        (raised_at + 30 * M, Alarm("repeat", number=2)),
        (raised_at + 45 * M, Alarm("repeat", number=3)),
    ]
    assert visit.state is State.emergency
    messages = repeat_messages(visit, fired[0][1], raised_at + 15 * M, POLICY, phones)
    assert sorted(m.to for m in messages) == sorted([DSL, DEPUTY, HEAD])
    assert all("SOS" in m.text for m in messages)
    safe = confirm_safe(visit, DSL, "Police attended, all fine", raised_at + 50 * M, POLICY)
    assert safe.state is State.returned
    _, fired = sweep(safe, raised_at + 50 * M, raised_at + timedelta(hours=4), POLICY, step=M)
    assert fired == []


def test_an_emergency_during_the_ladder_stops_the_remaining_tiers():
    visit = raise_emergency(at_tier(1), COMPANION, "help", None, TIER_AT[1] + 2 * M)
    assert visit.state is State.emergency
    _, fired = sweep(visit, TIER_AT[1] + 2 * M, EXHAUSTED + 5 * M)
    assert all(a.kind == "repeat" for _, a in fired)
    assert [t for t, _ in fired] == [TIER_AT[1] + 17 * M, TIER_AT[1] + 32 * M, TIER_AT[1] + 47 * M]


def test_checking_in_or_extending_does_not_end_an_emergency():
    visit = raise_emergency(out(), REQUESTER, "sos", None, NOW + 5 * M)
    visit = checkin(visit, REQUESTER, NOW + 6 * M, NO_CHECKIN)
    assert visit.state is State.emergency
    visit = extend(visit, REQUESTER, NOW + timedelta(hours=2), NOW + 7 * M, NO_CHECKIN)
    assert visit.state is State.emergency and visit.watch.emergency == "sos"
    _, alarms = fire(visit, NOW + 20 * M)
    assert alarms == [Alarm("repeat", number=1)]


def test_next_due_during_an_emergency_is_the_next_repeat_even_after_a_check_in():
    visit = raise_emergency(out(POLICY), REQUESTER, "sos", None, NOW + 5 * M)
    visit = checkin(visit, REQUESTER, NOW + 6 * M, POLICY)  # schedules a check-in at 10:36
    visit, alarms = advance(visit, NOW + 20 * M, POLICY)
    assert alarms == [Alarm("repeat", number=1)]
    visit, alarms = advance(visit, NOW + 35 * M, POLICY)
    assert alarms == [Alarm("repeat", number=2)]
    visit, alarms = advance(visit, NOW + 36 * M, POLICY)
    assert alarms == []  # no check-in is sent during an emergency...
    assert next_due(visit, POLICY) == NOW + 50 * M  # ...so the next thing due is repeat 3


def test_acknowledging_an_emergency_delays_the_next_repeat_by_the_pause():
    visit = raise_emergency(out(), REQUESTER, "sos", None, NOW + 5 * M)
    visit = acknowledge(visit, DSL, NOW + 15 * M, NO_CHECKIN)  # repeat would be 10:20; pause until 10:30
    assert next_due(visit, NO_CHECKIN) == NOW + 30 * M
    _, alarms = fire(visit, NOW + 30 * M - S)
    assert alarms == []
    _, alarms = fire(visit, NOW + 30 * M)
    assert alarms == [Alarm("repeat", number=1)]


@pytest.mark.parametrize("user", [DSL, OFFICE, OUTSIDER])
def test_only_the_team_can_raise_an_emergency(user):
    with pytest.raises(NotAllowed):
        raise_emergency(out(), user, "sos", None, NOW + M)


def test_an_emergency_cannot_be_raised_on_a_returned_visit():
    with pytest.raises(NotAllowed):
        raise_emergency(come_back(out(), REQUESTER, NOW + M), REQUESTER, "sos", None, NOW + 2 * M)


def test_duress_goes_silently_to_safeguarding_and_the_dsls_not_the_office():
    visit = raise_emergency(out(), REQUESTER, "duress", None, NOW + 10 * M)
    messages = emergency_messages(visit, NOW + 10 * M, NO_CHECKIN, phones)
    assert [m.to for m in messages] == [SAFEGUARDING_CHANNEL, DSL, DEPUTY]
    for m in messages:
        assert "SILENT ALARM" in m.text
        assert "do not message them" in m.text
        assert "duress word" in m.text
        assert ("Address", ADDRESS) in m.fields
        assert CALL_999 in m.notes
        assert labels(m) == HANDLING


def test_duress_leaves_out_a_dsl_who_is_on_the_visit():
    visit = raise_emergency(out(answers=make_answers(companions=(DSL,))), REQUESTER, "duress", None, NOW + 10 * M)
    assert [m.to for m in emergency_messages(visit, NOW + 10 * M, NO_CHECKIN, phones)] == [SAFEGUARDING_CHANNEL, DEPUTY]


@pytest.mark.parametrize("kind, words", [("sos", "raised an SOS"), ("help", "asked for help")])
def test_an_sos_goes_to_safeguarding_the_dsls_and_the_office_whose_copy_has_no_address(kind, words):
    visit = raise_emergency(out(), COMPANION, kind, "Dog loose, <!channel> come quick", NOW + 10 * M)
    messages = emergency_messages(visit, NOW + 10 * M, NO_CHECKIN, phones)
    assert [m.to for m in messages] == [SAFEGUARDING_CHANNEL, DSL, DEPUTY, OFFICE_CHANNEL]
    by_to = {m.to: m for m in messages}
    for m in messages:
        assert words in m.text and "10:10" in m.text
        assert "&lt;!channel&gt; come quick" in m.text
        assert "<!channel>" not in m.text
        assert CALL_999 in m.notes
        assert "SILENT" not in m.text
    office = by_to[OFFICE_CHANNEL]
    assert ADDRESS not in everything(office) and "Example Road" not in everything(office)
    assert {("<@U10>'s mobile", "07700 900010"), ("<@U11>'s mobile", "07700 900011")} <= set(office.fields)  # whose each number is
    for to in (SAFEGUARDING_CHANNEL, DSL, DEPUTY):
        assert ("Address", ADDRESS) in by_to[to].fields
    assert len({m.key for m in messages}) == 4


# What each tier says, and to whom ----------------------------------------------------------


def test_tier_0_goes_to_the_visitor_with_back_extend_help():
    visit, alarms = fire(out(), TIER_AT[0])
    [dm] = tier_messages(visit, alarms[0], TIER_AT[0], NO_CHECKIN, phones)
    assert dm.to == REQUESTER
    assert "due back at 10:45" in dm.text
    assert [(b.label, b.action_id) for b in dm.buttons] == [
        ("I'm back", actions.VISITOR_BACK),
        ("Extend", actions.CHECKIN_EXTEND),
        ("Need help", actions.CHECKIN_HELP),
    ]


def test_the_office_tier_has_mobiles_travel_and_contact_number_but_not_the_address():
    visit = at_tier(1)
    [office] = tier_messages(visit, Alarm("tier", tier=1), TIER_AT[1], NO_CHECKIN, phones)
    assert office.to == OFFICE_CHANNEL
    words = everything(office)
    assert "07700 900010" in words and "07700 900011" in words
    assert TRAVEL in words
    assert CONTACT in words
    assert "Example Road" not in words and "OX2 9AA" not in words
    assert "OVERDUE" in office.text and "15 min ago" in office.text
    assert [(b.label, b.action_id) for b in office.buttons] == [
        ("I'm handling this", actions.ALERT_ACK),
        ("Reached, safe", actions.ALERT_SAFE),
        ("No answer", actions.ALERT_NO_ANSWER),
    ]
    assert all(b.value == "7" for b in office.buttons)


def test_the_office_tier_uses_the_phones_callable_and_says_when_a_mobile_is_missing():
    visit = at_tier(1)
    [office] = tier_messages(visit, Alarm("tier", tier=1), TIER_AT[1], NO_CHECKIN, {REQUESTER: "07123 456789"}.get)
    assert {("<@U10>'s mobile", "07123 456789"), ("<@U11>'s mobile", "no mobile on file")} <= set(office.fields)


def test_the_safeguarding_tier_has_the_whole_safety_log_with_the_address():
    visit = at_tier(2)
    messages = tier_messages(visit, Alarm("tier", tier=2), TIER_AT[2], NO_CHECKIN, phones)
    assert [m.to for m in messages] == [SAFEGUARDING_CHANNEL, DSL, DEPUTY]
    for m in messages:
        fields = dict(m.fields)
        assert fields["Address"] == ADDRESS
        assert (fields["<@U10>'s mobile"], fields["<@U11>'s mobile"]) == ("07700 900010", "07700 900011")
        assert fields["Visit's contact number"] == CONTACT
        assert fields["Left / due back"] == "10:00 / 10:45"
        assert "NOT RETURNED, NOT REACHED" in m.text and "30 min ago" in m.text
        assert "POLICE" not in m.text
        assert m.notes == (CALL_999,)
        assert labels(m) == HANDLING


def test_the_last_tier_says_to_contact_the_police_to_the_head_and_dsls():
    visit = at_tier(3)
    messages = tier_messages(visit, Alarm("tier", tier=3), TIER_AT[3], NO_CHECKIN, phones)
    assert [m.to for m in messages] == [HEAD, DSL, DEPUTY]
    for m in messages:
        assert "CONTACT THE POLICE" in m.text and "60 min ago" in m.text
        assert POLICE_ASK in m.notes and CALL_999 in m.notes
        assert ("Address", ADDRESS) in m.fields


def test_destinations_of_each_audience_never_include_the_visiting_team():
    visit = out(answers=make_answers(companions=(DSL,)))
    assert destinations("visitor", visit, NO_CHECKIN) == [REQUESTER]
    assert destinations("companions", visit, NO_CHECKIN) == [DSL]
    assert destinations("office", visit, NO_CHECKIN) == [OFFICE_CHANNEL]
    assert destinations("safeguarding", visit, NO_CHECKIN) == [SAFEGUARDING_CHANNEL]
    assert destinations("dsl", visit, NO_CHECKIN) == [DEPUTY]
    assert destinations("head", visit, NO_CHECKIN) == [HEAD]


# Fallbacks and keys ------------------------------------------------------------------------


def test_a_channel_falls_back_to_the_dsls_and_head_and_a_dm_to_safeguarding():
    visit = out()
    assert fallback_for(OFFICE_CHANNEL, visit, NO_CHECKIN) == (DSL, DEPUTY, HEAD)
    assert fallback_for(SAFEGUARDING_CHANNEL, visit, NO_CHECKIN) == (DSL, DEPUTY, HEAD)
    for dm in (DSL, HEAD, DEPUTY):
        assert fallback_for(dm, visit, NO_CHECKIN) == (SAFEGUARDING_CHANNEL,)


def test_a_channel_never_falls_back_to_the_visiting_team():
    visit = out(answers=make_answers(companions=(DSL,)))
    assert fallback_for(OFFICE_CHANNEL, visit, NO_CHECKIN) == (DEPUTY, HEAD)
    # A head who is also a DSL is listed once.
    both = make_policy(checkin_interval=None, roles={"dsl": [DSL, HEAD], "head": [HEAD], "office": [OFFICE]})
    assert fallback_for(SAFEGUARDING_CHANNEL, out(both), both) == (DSL, HEAD)


def test_alert_messages_carry_their_fallback():
    visit = at_tier(2)
    by_to = {m.to: m for m in tier_messages(visit, Alarm("tier", tier=2), TIER_AT[2], NO_CHECKIN, phones)}
    assert by_to[SAFEGUARDING_CHANNEL].fallback == (DSL, DEPUTY, HEAD)
    assert by_to[DSL].fallback == (SAFEGUARDING_CHANNEL,)
    [office] = tier_messages(visit, Alarm("tier", tier=1), TIER_AT[1], NO_CHECKIN, phones)
    assert office.fallback == (DSL, DEPUTY, HEAD)


def test_alert_keys_are_unique_per_visit_episode_tier_and_destination():
    keys: list[str] = []
    for visit_id in (7, 8):
        visit = out(visit_id=visit_id)
        for episode in range(2):
            if episode:
                visit = extend(visit, REQUESTER, EXHAUSTED + timedelta(hours=1), EXHAUSTED + M, NO_CHECKIN)
            for i in range(4):
                due = visit.watch.anchor + visit.ladder[i].after
                visit, alarms = fire(visit, due)
                assert alarms == [Alarm("tier", tier=i)]
                for m in tier_messages(visit, alarms[0], due, NO_CHECKIN, phones):
                    assert m.key == f"alert:{visit_id}:e{episode}:t{i}:{m.to}"
                    assert m.ref == m.key
                    keys.append(m.key)
    # Per visit and episode: visitor 1 + office 1 + safeguarding and 2 DSLs 3 + head and 2 DSLs 3 = 8.
    assert len(keys) == 2 * 2 * 8
    assert len(set(keys)) == len(keys)
