"""What ends an alert without a failure: a person deleted its message, or the visit ended before it arrived."""
from __future__ import annotations

from tests.conftest import DSL, HEAD, OFFICE_CHANNEL, REQUESTER, Workspace, make_policy
from tests.faults.alerts import delivered_alerts
from tests.faults.delivery import healthz
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in


def test_an_alert_message_deleted_in_slack_is_not_a_failed_update(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    ws.sim.delete_message(OFFICE_CHANNEL, office.ts)  # someone tidied the channel
    assert "Welcome back" in ws.driver.command(REQUESTER, "/back").text  # rewrites every alert: this one is gone
    at(ws, 11, 1)
    assert [c.error for c in ws.sim.calls_to("chat.update") if c.params["channel"] == OFFICE_CHANNEL] == ["message_not_found"]
    code, status = healthz(ws)
    assert code == 200 and status["outbox"]["failed"] == 0 and status["outbox"]["queued"] == 0


def test_alerts_still_waiting_when_the_visitor_is_back_are_superseded_not_sent(tmp_path, clock):
    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="60s"), clock)
    try:
        out_and_checked_in(ws)
        ws.sim.refuse_token("invalid_auth")
        at(ws, 11, 0)  # the visitor's and the office's alerts are refused; the office's copies to the DSLs and the head wait too
        assert "Welcome back" in ws.driver.command(REQUESTER, "/back").text
        ws.sim.accept_token()
        at(ws, 11, 1)
        # Nothing about a visit that is over arrives after it, neither the alerts nor their rewrites.
        assert [to for to, _ in delivered_alerts(ws.sim)] == []
        assert not any("Visit #1 alert" in m.plain() for to in (OFFICE_CHANNEL, DSL, HEAD) for m in ws.sim.messages(to))
        trail = ws.runtime.store.read().audit_trail(1)
        assert sum(e["action"] == "alert_superseded" for e in trail) == 5  # the visitor's, the office's and its three copies
        assert sum(e["action"] == "alert_update_dropped" for e in trail) == 5
        ws.runtime.check_slack()  # nothing was left to send: the background re-check finds the token works again
        code, status = healthz(ws)
        assert code == 200 and status["outbox"]["waiting_alerts"] == [] and status["outbox"]["failed"] == 0
    finally:
        ws.close()
