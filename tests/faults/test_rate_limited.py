"""429 with Retry-After: 3600 on chat.postMessage: alerts wait seconds, not an hour, once Slack recovers."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import DEPUTY, DSL, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, Workspace, make_policy
from tests.faults.alerts import assert_each_once_in_order, delivered_alerts
from tests.faults.delivery import RunningClock, seconds_until_delivered
from tests.test_e2e_safety import at, out_and_checked_in

EXPECTED = {REQUESTER: 1, OFFICE_CHANNEL: 1, SAFEGUARDING_CHANNEL: 1, DSL: 1, DEPUTY: 1}


def test_an_hour_of_retry_after_holds_alerts_back_only_seconds_after_slack_recovers(tmp_path, capsys):
    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="10m"), RunningClock())
    try:
        out_and_checked_in(ws)  # due back at 10:45
        ws.sim.fail("chat.postMessage", 429, times=10_000, retry_after=3600)
        at(ws, 11, 15)  # the visitor, the office, safeguarding and the DSLs, all at once
        for _ in range(3):  # Slack keeps saying "come back in an hour"; alerts keep asking every few seconds
            ws.clock.advance(timedelta(seconds=3))
            ws.runtime.dispatcher.drain()
        assert delivered_alerts(ws.sim) == []

        ws.sim.clear_failures()  # Slack recovers
        seconds = seconds_until_delivered(ws, EXPECTED)
        with capsys.disabled():
            print(f"\n[429 Retry-After 3600] Slack recovered -> last alert delivered: {seconds:.2f} s")
        assert seconds < 5
        assert_each_once_in_order(ws.sim, EXPECTED)
    finally:
        ws.close()
