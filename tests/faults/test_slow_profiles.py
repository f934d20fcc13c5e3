"""Fault: Slack's profile API (users.info) hangs for 30 s. No alert waits for a phone number, no
command waits behind one, and every alert goes out at once, exactly once, saying the number is unknown."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.phones import ProfilePhones
from bot.simslack import SimSlack
from bot.simslack.driver import Driver
from flows.visit import State, go_out
from tests.conftest import (
    COMPANION, DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, make_policy,
)
from tests.factories import make_answers, make_visit
from tests.faults.alerts import assert_each_once_in_order
from tests.test_e2e_safety import at, out_at_ten

HANG_S = 30
UNKNOWN = "number unknown (lookup failed)"


@pytest.fixture
def ws(workspace):
    # Settle by finishing the Slack calls after each answer and delivering: not by waiting for the hanging lookups.
    runtime = workspace.runtime
    workspace.driver = Driver(workspace.url, workspace.secret, workspace.sim, settle=lambda: (runtime.lazy.wait_idle(5), runtime.dispatcher.drain()))
    yield workspace
    workspace.sim.unhang()  # nothing left waiting at teardown


def in_thread(action):
    """Start `action` on its own thread; returns (thread, result list, seconds taken list)."""
    result: list = []

    def run():
        started = time.monotonic()
        try:
            result.append(action())
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result.append(exc)
        result.append(time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_sos_during_a_profile_hang_is_answered_and_alerted_at_once(ws):
    ws.sim.hang("users.info", HANG_S)
    out_at_ten(ws)  # the visit's mobiles are being looked up, and hang

    sos, sos_result = in_thread(lambda: ws.driver.command(REQUESTER, "/sos", "dog at the door"))
    other, other_result = in_thread(lambda: ws.driver.command(DSL, "/back"))  # another command, at the same time
    sos.join(3)
    other.join(3)
    assert not sos.is_alive() and not other.is_alive(), "a command waited for the profile API"
    answer, seconds = sos_result
    assert not isinstance(answer, Exception), answer
    assert "Alert sent to the safeguarding team" in answer.text and seconds < 2, (answer.text, seconds)
    other_answer, other_seconds = other_result
    assert not isinstance(other_answer, Exception), other_answer
    assert "You are not out on a visit" in other_answer.text and other_seconds < 2, (other_answer.text, other_seconds)

    ws.runtime.dispatcher.drain()
    alerts = assert_each_once_in_order(ws.sim, {SAFEGUARDING_CHANNEL: 1, DSL: 1, DEPUTY: 1, OFFICE_CHANNEL: 1})
    [office] = [m.plain() for m in ws.channel(OFFICE_CHANNEL) if "SOS" in m.plain()]
    assert office.count(UNKNOWN) == 2, office  # visitor and companion: unknown, not "no mobile on file"
    assert all("SOS" in text for _, text in alerts)


def test_a_failed_lookup_is_said_as_unknown_then_tried_again_for_later_alerts(ws):
    ws.sim.fail("users.info", status=500, times=2)  # both lookups made at /out fail
    out_at_ten(ws)
    assert ws.runtime.phones.wait_idle(5)
    at(ws, 11, 0)
    [office] = [m.plain() for m in ws.channel(OFFICE_CHANNEL) if "OVERDUE" in m.plain()]
    assert office.count(UNKNOWN) == 2, office

    ws.runtime.phones.RETRY_S = 0  # as if the retry interval had passed
    ws.runtime.ctx.warm_phones([REQUESTER, COMPANION])
    assert ws.runtime.phones.wait_idle(5)
    at(ws, 11, 15)
    [safeguarding] = [m.plain() for m in ws.channel(SAFEGUARDING_CHANNEL) if "NOT RETURNED" in m.plain()]
    assert "07700 900010" in safeguarding and "07700 900011" in safeguarding and UNKNOWN not in safeguarding


def test_the_cache_keeps_the_last_good_answer_when_a_refresh_fails():
    with SimSlack(users={REQUESTER: {"name": "Sam Visitor", "phone": "07700 900010"}}) as sim:
        phones = ProfilePhones(sim.base_url, "test-bot-token")
        try:
            assert phones(REQUESTER) == UNKNOWN  # never waits: the first answer is looked up behind
            assert phones.wait_idle(5) and phones(REQUESTER) == "07700 900010"
            phones.TTL_S = 0  # every answer is now old and is refreshed when read
            sim.fail("users.info", status=500, times=1)
            assert phones(REQUESTER) == "07700 900010"
            assert phones.wait_idle(5) and phones(REQUESTER) == "07700 900010"
            assert [c.failed for c in sim.calls_to("users.info")] == [False, True]
        finally:
            phones.stop()


def five_due_visits(ws) -> list[str]:
    """Five visits out since 10:00, due back 10:45, each with its own visitor and companion."""
    policy = ws.runtime.policy
    visitors = [f"U2{n}" for n in range(5)]
    start = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    with ws.runtime.store.transaction() as tx:
        for n, visitor in enumerate(visitors):
            approved = make_visit(policy, requester=visitor, state=State.approved, answers=make_answers(companions=(f"U3{n}",)))
            tx.add_visit(go_out(approved, visitor, start, start + timedelta(minutes=45), policy), start)
    return visitors


def test_sweep_with_five_due_visits_sends_every_office_alert_on_the_first_tick(ws):
    visitors = five_due_visits(ws)
    ws.sim.hang("users.info", HANG_S)
    ws.clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc))  # 15 min late: visitor and office tiers

    tick, tick_result = in_thread(ws.runtime.tick)
    tick.join(3)
    assert not tick.is_alive(), "the sweep waited for the profile API"
    assert tick_result[-1] < 2, tick_result

    assert_each_once_in_order(ws.sim, {OFFICE_CHANNEL: 5, **{v: 1 for v in visitors}})
    office = [m.plain() for m in ws.channel(OFFICE_CHANNEL)]
    assert all(text.count(UNKNOWN) == 2 for text in office), office
    at(ws, 11, 1)  # nothing twice
    assert_each_once_in_order(ws.sim, {OFFICE_CHANNEL: 5, **{v: 1 for v in visitors}})


def test_no_mobile_on_file_is_said_as_such(ws):
    ws.sim.add_user(COMPANION, "Chris Companion", phone=None)
    out_at_ten(ws)
    ws.runtime.phones.wait_idle(5)
    at(ws, 11, 0)
    [office] = [m.plain() for m in ws.channel(OFFICE_CHANNEL) if "OVERDUE" in m.plain()]
    assert "07700 900010" in office and "no mobile on file" in office and UNKNOWN not in office, office


def test_start_up_looks_up_everyone_the_policy_names(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(), clock)
    try:
        ws.runtime.start_background()
        assert ws.runtime.phones.wait_idle(5)
        asked = {call.params.get("user") for call in ws.sim.calls_to("users.info")}
        assert {DSL, HEAD, DEPUTY, OFFICE} <= asked
        assert ws.runtime.ctx.phone(HEAD) == "07700 900002"
    finally:
        ws.close()
