"""Fault: the wall clock steps (a bad NTP source, a restored VM) while visits are out."""
from __future__ import annotations

from datetime import timedelta

from bot.runtime import Runtime
from tests.conftest import DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
from tests.faults.alerts import assert_each_once_in_order, delivered_alerts
from tests.test_e2e_safety import answer_checkin, at, out_and_checked_in, out_at_ten

DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
# The whole ladder once: visitor, office, safeguarding + DSLs, then police to the head + DSLs.
LADDER_ONCE = {REQUESTER: 1, OFFICE_CHANNEL: 1, SAFEGUARDING_CHANNEL: 1, DSL: 2, DEPUTY: 2, HEAD: 1}


def run_minutes(ws, minutes, on_minute=lambda elapsed: None):
    """Let `minutes` of real time pass a minute at a time, sweeping each; return {destination: [minutes
    after the start at which each of its alerts arrived]}."""
    arrived: dict[str, list[int]] = {}
    for elapsed in range(1, minutes + 1):
        ws.clock.advance(MINUTE)
        ws.runtime.tick()
        on_minute(elapsed)
        seen = delivered_alerts(ws.sim)
        for destination in {to for to, _ in seen}:
            count = sum(to == destination for to, _ in seen)
            arrived.setdefault(destination, [])
            arrived[destination] += [elapsed] * (count - len(arrived[destination]))
    return arrived


def test_a_day_ahead_then_put_right_every_tier_fires_again_at_its_real_time(workspace):
    ws = workspace
    out_at_ten(ws)  # due back 10:45; check-in at 10:30
    at(ws, 10, 10)
    ws.clock.step(DAY)  # a bad NTP source: the server thinks it is tomorrow
    ws.runtime.tick()
    for _ in range(5):
        ws.clock.advance(MINUTE)
        ws.runtime.tick()
    # Never silencing wins: the whole ladder went out at once, each alert once, saying it may be early.
    assert_each_once_in_order(ws.sim, LADDER_ONCE)
    [police] = [m.plain() for m in ws.dms(HEAD) if "CONTACT THE POLICE" in m.plain()]
    assert "The server clock jumped forward by 1d at 10:10 and has not been put right, so this may have come early" in police
    healthy, status = ws.runtime.health()
    assert not healthy and status["clock"]["ahead_by_seconds"] == DAY.total_seconds()

    ws.sim.reset()
    ws.clock.step(-DAY)  # put right at 10:15
    ws.runtime.tick()
    healthy, status = ws.runtime.health()
    assert status["clock"]["ahead_by_seconds"] is None and not healthy  # degraded for an hour after a step
    checkins = []

    def answer(elapsed):
        if any("Still OK?" in m.plain() for m in ws.dms(REQUESTER)) and not checkins:
            checkins.append(elapsed)
            answer_checkin(ws)

    arrived = run_minutes(ws, 95, answer)  # 10:15 → 11:50
    assert checkins == [15], "the check-in the ahead clock skipped comes at 10:30"
    # Each tier again at its real time (minutes after 10:15), in ladder order, each once, none lost.
    assert arrived == {REQUESTER: [30], OFFICE_CHANNEL: [45], SAFEGUARDING_CHANNEL: [60], DSL: [60, 90], DEPUTY: [60, 90], HEAD: [90]}
    assert_each_once_in_order(ws.sim, LADDER_ONCE)
    assert not any("server clock" in m.plain() for m in ws.dms(HEAD))  # put right: no more "may be early"
    healthy, status = ws.runtime.health()
    assert [step["seconds"] for step in status["clock"]["steps_last_day"]] == [DAY.total_seconds(), -DAY.total_seconds()]
    assert healthy, status  # more than an hour after the last step, with every alert delivered
    trail = [event["action"] for event in ws.runtime.store.read().audit_trail(1)]
    assert "clock_retimed" in trail


def test_a_step_back_of_an_hour_does_not_delay_the_office_tier(workspace):
    ws = workspace
    out_and_checked_in(ws)  # due back 10:45, check-in answered
    at(ws, 10, 40)
    ws.clock.step(-HOUR)  # the server now says 09:40
    ws.runtime.tick()
    start = ws.clock.monotonic()
    arrived = run_minutes(ws, 70)  # real time 10:40 → 11:50, measured on the monotonic clock
    assert ws.clock.monotonic() - start == 70 * 60
    assert arrived.get(OFFICE_CHANNEL) == [20], "the office tier comes at 11:00 real time, not an hour late"
    assert arrived == {REQUESTER: [5], OFFICE_CHANNEL: [20], SAFEGUARDING_CHANNEL: [35], DSL: [35, 65], DEPUTY: [35, 65], HEAD: [65]}
    assert_each_once_in_order(ws.sim, LADDER_ONCE)
    steps = ws.runtime.health()[1]["clock"]["steps_last_day"]
    assert [step["seconds"] for step in steps] == [-HOUR.total_seconds()]


def test_held_retries_and_the_lease_do_not_wait_out_a_step_back(workspace):
    ws = workspace
    standby = Runtime(ws.settings, ws.runtime.policy, ws.clock, process_before_response=True)
    try:
        out_and_checked_in(ws)
        at(ws, 10, 40)
        standby.tick()  # the standby runs too; the lease is not its
        ws.sim.down()
        ws.clock.step(DAY)
        for runtime in (ws.runtime, standby):
            runtime.tick()  # the ladder fires; Slack is down, so every alert waits for a retry, a day ahead
        assert delivered_alerts(ws.sim) == []
        ws.clock.step(-DAY)  # put right; the sweeping process dies at this moment
        ws.sim.up()
        for seconds in range(5, 61, 5):
            ws.clock.advance(timedelta(seconds=5))
            standby.tick()
            if delivered_alerts(ws.sim):
                break
        # The standby takes over when the lease runs out (45 s after its last renewal) and sends what was held.
        assert seconds == 50, "the standby waited out the step"
        assert_each_once_in_order(ws.sim, LADDER_ONCE)
    finally:
        standby.stop()
