"""A refused token (HTTP 200, invalid_auth) while a visit goes overdue: no alert is lost, and none is sent twice."""
from __future__ import annotations

from tests.conftest import DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, Workspace, make_policy
from tests.faults.alerts import assert_each_once_in_order, delivered_alerts
from tests.faults.delivery import RunningClock, healthz, seconds_until_delivered
from tests.test_e2e_safety import at, out_and_checked_in

# The ladder to 11:15 and every fallback copy: the office's alert (refused) also goes to the DSLs and the head,
# safeguarding's too, and each DSL's DM (queued behind a refused one, then late) also to the safeguarding channel.
EXPECTED = {REQUESTER: 1, OFFICE_CHANNEL: 1, SAFEGUARDING_CHANNEL: 1 + 2, DSL: 1 + 2, DEPUTY: 1 + 2, HEAD: 2}


def test_alerts_refused_for_a_bad_token_all_arrive_once_in_order_when_it_is_fixed(tmp_path, capsys):
    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="60s"), RunningClock())
    try:
        out_and_checked_in(ws)  # due back at 10:45
        ws.sim.refuse_token("invalid_auth")
        # The visitor; the office; safeguarding and the DSLs; then the DSLs' DMs have waited past the fallback time.
        for hour, minute in ((10, 45), (11, 0), (11, 15), (11, 17)):
            at(ws, hour, minute)
        assert delivered_alerts(ws.sim) == []

        code, status = healthz(ws)
        assert code == 503
        waiting = status["outbox"]["waiting_alerts"]
        assert {a["to"] for a in waiting} == set(EXPECTED)  # fallback copies wait too
        assert all(a["visit"] == 1 for a in waiting)
        for to in EXPECTED:  # each destination's oldest alert was tried and refused; the rest queue behind it, in order
            first = next(a for a in waiting if a["to"] == to)
            assert first["last_error"] == "invalid_auth" and first["attempts"] >= 1, first
        assert max(a["waiting_seconds"] for a in waiting) >= 30 * 60  # the visitor's, since 10:45
        assert "07700" not in str(status) and "Example Road" not in str(status)  # ids and codes only

        ws.sim.accept_token()
        seconds = seconds_until_delivered(ws, EXPECTED)
        with capsys.disabled():
            print(f"\n[token refused] token restored -> last alert delivered: {seconds:.2f} s")
        assert seconds < 5
        assert_each_once_in_order(ws.sim, EXPECTED)
        ws.runtime.dispatcher.stop()
        assert healthz(ws)[0] == 200
    finally:
        ws.close()
