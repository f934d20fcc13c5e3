"""A real `visitsafe serve` process killed with SIGKILL and restarted sends each due alert exactly once."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

from bot.simslack import SimSlack
from tests.conftest import DEPUTY, DSL, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
from tests.processes import process_school, alerts_for, pending, seed_out, serve, wait_for

LADDER = [
    {"after": "0s", "notify": ["visitor"]},
    {"after": "2s", "notify": ["office"]},
    {"after": "4s", "notify": ["safeguarding", "dsl"]},
    {"after": "60m", "notify": ["head", "dsl"]},
]


def test_sigkill_then_restart_sends_each_due_alert_exactly_once(tmp_path):
    policy, store = process_school(tmp_path, LADDER)

    def seed(expected_return: datetime):
        return seed_out(store, policy, expected_return)

    # Visit 1 fell due while the bot was down.
    first = seed(datetime.now(timezone.utc) - timedelta(seconds=10))
    with SimSlack() as sim:
        one = serve(tmp_path, sim)
        try:
            # Catch-up at start-up: tiers 0, 1 and 2 of visit 1, each delivered and marked sent.
            wait_for(lambda: sum(alerts_for(sim, first.id).values()) == 5 and pending(store) == 0, 30, "visit 1's catch-up")
            # Visit 2 is out while the first process runs, and falls due only after it is killed.
            second_due = datetime.now(timezone.utc) + timedelta(seconds=3)
            second = seed(second_due)
        finally:
            one.kill()  # SIGKILL: no clean shutdown, the lease is left behind
            one.wait()
        assert alerts_for(sim, second.id) == Counter()

        # Restart once visit 2 is past its first three tiers (0 s, 2 s, 4 s after its expected return).
        time.sleep(max(0.0, (second_due + timedelta(seconds=4.5) - datetime.now(timezone.utc)).total_seconds()))
        two = serve(tmp_path, sim)
        try:
            wait_for(lambda: sum(alerts_for(sim, second.id).values()) == 5 and pending(store) == 0, 30, "visit 2's tiers")
            time.sleep(1.5)  # a few more ticks of the new process: nothing more may be sent
        finally:
            two.kill()
            two.wait()

    for visit in (first, second):
        sent = alerts_for(sim, visit.id)
        assert set(sent.values()) == {1}, sent  # each alert exactly once
        assert {destination for destination, _ in sent} == {REQUESTER, OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY}
