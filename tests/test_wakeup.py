"""The wake-up runs the sweep the moment a timer falls due; commands move it; the periodic tick still catches a lost one."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Callable

from bot.runtime import Runtime
from tests.conftest import DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, Workspace, make_policy
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in, out_at_ten, texts
from tests.test_e2e_slack import approval_dm, request_visit


class Sleep:
    """The wake-up's waiting primitive on the test's clock: time passes by the timeout asked for,
    unless something is set to happen while it sleeps (a command arriving), which ends the sleep."""

    def __init__(self, clock):
        self.clock = clock
        self.timeouts: list[float | None] = []
        self.meanwhile: list[Callable[[], object]] = []

    def __call__(self, cond: threading.Condition, timeout: float | None) -> None:
        self.timeouts.append(timeout)
        if self.meanwhile:
            # As Condition.wait does: let go of the lock while asleep, so the command can poke.
            cond.release()
            try:
                self.meanwhile.pop(0)()
            finally:
                cond.acquire()
        elif timeout is not None:
            self.clock.advance(timedelta(seconds=timeout))


def hhmm(ws) -> str:
    return ws.clock().strftime("%H:%M:%S")


def test_an_extend_moves_the_wake_up_and_it_fires_at_the_new_time(workspace):
    ws = workspace
    out_and_checked_in(ws)  # 10:30; due back 10:45
    wake = ws.runtime.wakeup
    wake.wait = sleep = Sleep(ws.clock)

    def extend():
        ws.clock.set(ws.clock().replace(hour=10, minute=40))
        assert "Now due back at *11:05*" in ws.driver.command(REQUESTER, "/extend", "20m").text

    sleep.meanwhile.append(extend)
    assert wake.run_once() is False  # the /extend woke it to plan again
    assert sleep.timeouts == [15 * 60]  # it had been going to wake at 10:45
    assert wake.replan().strftime("%H:%M") == "11:05"
    assert wake.run_once() is True
    assert sleep.timeouts[-1] == 25 * 60 and hhmm(ws) == "11:05:00"
    # Sent at 11:05:00 exactly, not at a later tick.
    assert "you were due back at 11:05. Are you OK?" in ws.dms(REQUESTER)[-1].plain()
    assert alerts_in(ws, OFFICE_CHANNEL) == []


def test_an_acknowledgement_moves_the_wake_up_to_the_end_of_the_pause(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 5)  # tiers 0 and 1: the office is alerted; the safeguarding tier is due at 11:15
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    wake = ws.runtime.wakeup
    wake.wait = sleep = Sleep(ws.clock)
    sleep.meanwhile.append(lambda: ws.driver.click(OFFICE, office, "I'm handling this"))
    assert wake.run_once() is False
    assert sleep.timeouts == [10 * 60]  # 11:15, before the click
    assert wake.replan().strftime("%H:%M") == "11:20"  # paused for 15 minutes from 11:05
    assert wake.run_once() is True and hhmm(ws) == "11:20:00"
    [safeguarding] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "<@U03> was handling this since 11:05." in safeguarding.plain()


def test_the_periodic_tick_catches_an_alert_the_wake_up_lost_and_records_it(workspace, caplog):
    ws = workspace
    out_at_ten(ws)
    wake = ws.runtime.wakeup
    assert wake.replan().strftime("%H:%M") == "10:30"  # the first check-in
    # The wake-up never fires (its thread stuck, say): the next periodic tick, 15 s on, still sends.
    ws.clock.set(ws.clock().replace(hour=10, minute=30, second=15))
    with caplog.at_level(logging.WARNING, logger="visitsafe"):
        ws.runtime.tick()
    assert [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    assert "the periodic sweep found 1 timers more than 1 s overdue that the wake-up should have run" in caplog.text
    healthy, status = ws.runtime.health()
    assert status["wake_up"]["missed"] == 1
    assert wake.replan() > ws.clock()  # and it plans for the next timer


def test_a_timer_just_due_at_a_periodic_tick_is_not_counted_as_missed(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.runtime.wakeup.replan()
    ws.clock.set(ws.clock().replace(hour=10, minute=30, second=0, microsecond=500_000))
    ws.runtime.tick()  # the tick and the wake-up racing for the same moment is not a miss
    assert [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    assert ws.runtime.health()[1]["wake_up"]["missed"] == 0


def test_only_the_lease_holder_plans_and_a_process_taking_over_plans_at_once(workspace):
    ws = workspace
    second = Runtime(ws.settings, ws.runtime.policy, ws.clock, process_before_response=True)
    try:
        out_at_ten(ws)
        second.tick()  # the first process holds the lease: the second skips
        assert second.wakeup.replan() is None and ws.runtime.wakeup.replan() is not None
        ws.clock.advance(timedelta(minutes=1))  # the first process stops ticking; its 45 s lease runs out
        second.tick()
        assert second.wakeup.replan().strftime("%H:%M") == "10:30"
        assert ws.runtime.wakeup.replan() is None
    finally:
        second.stop()


def test_a_clock_step_plans_the_wake_up_again_and_is_not_a_miss(workspace):
    ws = workspace
    out_at_ten(ws)
    wake = ws.runtime.wakeup
    assert wake.replan().strftime("%H:%M") == "10:30"
    ws.clock.step(timedelta(minutes=40))  # the wall clock jumps to 10:40 with no time passing
    ws.runtime.tick()  # the periodic tick sees the step, sends what is due by the new clock
    assert [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    assert wake.replan().strftime("%H:%M") == "10:45"
    assert ws.runtime.health()[1]["wake_up"]["missed"] == 0


def test_the_wake_up_thread_stops_promptly(workspace):
    wake = workspace.runtime.wakeup
    wake.start()
    wake.poke()
    wake.stop(timeout=5)
    assert not wake._thread.is_alive()


def test_the_wake_up_plans_for_a_request_and_an_approved_visit_expiring(workspace):
    ws = workspace
    request_visit(ws)  # for 10:00 today: undecided, it expires then
    wake = ws.runtime.wakeup
    ws.runtime.tick()
    assert wake.replan().strftime("%H:%M") == "10:00"
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")
    # Approved but never started: it expires at midnight after its day (London = UTC in November).
    assert wake.replan().isoformat() == "2026-11-24T00:00:00+00:00"


def test_the_wake_up_plans_for_an_alert_held_up_long_enough_to_fall_back(tmp_path, clock):
    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="60s"), clock)
    try:
        out_and_checked_in(ws)
        ws.sim.down()
        at(ws, 11, 0)  # the visitor's and the office's alerts are queued at 11:00 and cannot go
        wake = ws.runtime.wakeup
        wake.wait = Sleep(ws.clock)
        assert wake.replan().strftime("%H:%M:%S") == "11:01:00"
        ws.sim.up()
        assert wake.run_once() is True and hhmm(ws) == "11:01:00"
        assert any("could not be delivered to <#C0OFFICE> for 60 s" in t for t in texts(ws.dms(DSL)))
    finally:
        ws.close()
