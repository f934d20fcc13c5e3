"""SIGKILL in the middle of a burst of alerts, then a restart: every alert reaches Slack exactly once."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from bot.simslack import SimSlack
from tests.conftest import OFFICE_CHANNEL, REQUESTER
from tests.faults.alerts import assert_each_once_in_order, delivered_alerts
from tests.processes import process_school, pending, seed_out, serve, wait_for

VISITS = 15
LADDER = [
    {"after": "0s", "notify": ["visitor"]},
    {"after": "1s", "notify": ["office"]},
    {"after": "60m", "notify": ["safeguarding", "dsl"]},
    {"after": "90m", "notify": ["head", "dsl"]},
]
EXPECTED = {REQUESTER: VISITS, OFFICE_CHANNEL: VISITS}


def test_sigkill_mid_burst_then_restart_sends_every_alert_exactly_once(tmp_path):
    policy, store = process_school(tmp_path, LADDER)
    # Fifteen visits fell due while the bot was down: thirty alerts at start-up.
    for _ in range(VISITS):
        seed_out(store, policy, datetime.now(timezone.utc) - timedelta(seconds=10))

    with SimSlack() as sim:
        sim.delay_replies("chat.postMessage", 0.05)  # a slow Slack: the burst takes a while
        one = serve(tmp_path, sim)
        try:
            wait_for(lambda: len(delivered_alerts(sim)) >= 8, 20, "the burst to begin")
            # From now on Slack stores each post but holds its answer for 10 s; kill while one is held,
            # so the process dies after Slack has the alert and before the outbox knows it.
            sim.delay_replies("chat.postMessage", 10)
            time.sleep(0.2)  # answers held for 0.05 s before the switch are out by now
            wait_for(lambda: sim.held_replies > 0, 10, "a post stored by Slack and not yet answered", poll=0.005)
        finally:
            one.kill()  # SIGKILL: no clean shutdown
            one.wait()
        assert 8 <= len(delivered_alerts(sim)) < 2 * VISITS  # killed mid-burst

        sim.delay_replies("chat.postMessage", 0)
        two = serve(tmp_path, sim)
        try:
            wait_for(lambda: len(delivered_alerts(sim)) >= 2 * VISITS and pending(store) == 0, 20, "the rest of the burst")
            time.sleep(1.5)  # a few more ticks of the new process: nothing more may be sent
        finally:
            two.kill()
            two.wait()

    assert_each_once_in_order(sim, EXPECTED)
    assert sim.calls_to("conversations.history")  # the new process looked for the interrupted post first
