"""What a backward clock step does to one live visit (flows.watch.after_backward_step): pure, no clock read."""
from __future__ import annotations

from datetime import timedelta

from flows.visit import State, come_back
from flows.watch import BackwardStep, acknowledge, advance, after_backward_step, checkin, next_due, raise_emergency
from tests.conftest import COMPANION, OFFICE, REQUESTER
from tests.test_flows_watch import BACK, NOW, POLICY, TIER_AT, kinds, out, sweep, tiers

DAY, HOUR, M = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def ahead_a_day():
    """Out at 10:00 (due back 10:45, check-in at 10:30); at 10:10 the clock jumps a day ahead and the
    sweep fires the whole ladder; at 10:12 (ahead) the office says it is handling it."""
    visit = out(POLICY)
    visit, alarms = advance(visit, NOW + 10 * M + DAY, POLICY)
    assert tiers(alarms) == [0, 1, 2, 3] and "checkin" not in kinds(alarms)
    return acknowledge(visit, OFFICE, NOW + 12 * M + DAY, POLICY)


def test_putting_a_forward_step_right_re_arms_every_tier_not_yet_due_and_the_skipped_check_in():
    visit = ahead_a_day()
    corrected = NOW + 15 * M  # 10:15
    fixed = after_backward_step(visit, corrected, BackwardStep(back=DAY, ahead_since=NOW + 10 * M + DAY, ahead_by=DAY), POLICY)
    w = fixed.watch
    assert (fixed.state, w.tier_sent, w.repeats, w.episode) == (State.out, 0, 0, visit.watch.episode + 1)
    # Times from before the jump stay; times written while the clock was ahead come back by the step.
    assert (fixed.departed_at, fixed.expected_return, w.anchor) == (NOW, BACK, BACK)
    assert (w.last_alarm_at, w.ack_at, w.paused_until) == (NOW + 10 * M, NOW + 12 * M, NOW + 27 * M)
    assert w.next_checkin_at == NOW + 30 * M
    # From here the safety net runs as if the jump had never been: the check-in, then each tier at its time.
    fixed, fired = sweep(fixed, corrected, NOW + 30 * M, POLICY)
    assert [(t, a.kind) for t, a in fired] == [(NOW + 30 * M, "checkin")]
    fixed, fired = sweep(checkin(fixed, REQUESTER, NOW + 31 * M, POLICY), NOW + 31 * M, TIER_AT[-1], POLICY)
    assert [(t, a.tier) for t, a in fired] == list(zip(TIER_AT, range(4)))


def test_a_step_back_with_nothing_to_put_right_moves_every_timer_back_and_re_arms_nothing():
    visit, _ = advance(out(POLICY), TIER_AT[1], POLICY)  # 11:00: visitor and office told
    visit = acknowledge(visit, OFFICE, TIER_AT[1] + M, POLICY)
    fixed = after_backward_step(visit, TIER_AT[1] + 2 * M - HOUR, BackwardStep(back=HOUR), POLICY)
    assert (fixed.state, fixed.watch.tier_sent, fixed.watch.episode) == (visit.state, 2, visit.watch.episode)
    assert fixed.expected_return == BACK - HOUR and fixed.watch.paused_until == visit.watch.paused_until - HOUR  # type: ignore[operator]
    assert next_due(fixed, POLICY) == next_due(visit, POLICY) - HOUR  # type: ignore[operator]


def test_a_step_back_beyond_the_forward_offset_moves_older_times_by_the_difference():
    step = BackwardStep(back=2 * HOUR, ahead_since=NOW + DAY, ahead_by=HOUR)
    assert step.moved(NOW) == NOW - HOUR and step.moved(NOW + DAY) == NOW + DAY - 2 * HOUR and step.moved(None) is None


def test_an_emergency_keeps_repeating_and_a_finished_visit_is_left_alone():
    sos = raise_emergency(out(POLICY), COMPANION, "sos", None, NOW + 5 * M + DAY)
    fixed = after_backward_step(sos, NOW + 6 * M, BackwardStep(back=DAY, ahead_since=NOW + DAY, ahead_by=DAY), POLICY)
    assert fixed.state is State.emergency and fixed.watch.last_alarm_at == NOW + 5 * M
    assert next_due(fixed, POLICY) == NOW + 20 * M  # the next reminder, a repeat interval after the SOS
    back = come_back(out(POLICY), REQUESTER, NOW + DAY)
    assert after_backward_step(back, NOW, BackwardStep(back=DAY), POLICY) == back
