"""Fault: the database can be read but not written (full disk, read-only file system).

Simulated at the SQLite level (`PRAGMA query_only=ON` on every connection): running as root, chmod
would not stop the writes.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from tests.conftest import DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
from tests.faults.alerts import assert_each_once_in_order
from tests.test_e2e_safety import ADDRESS, at, out_and_checked_in, out_at_ten


def healthz(ws) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ws.server.port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_sos_while_the_database_is_read_only_goes_straight_to_the_responders(workspace, caplog):
    caplog.set_level(logging.INFO)
    ws = workspace
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=10))
    ws.runtime.store.query_only = True
    ws.runtime.tick()
    status, health = healthz(ws)
    assert status == 503 and health["database"].startswith("not writable")

    answer = ws.driver.command(REQUESTER, "/sos", "man with a knife")
    assert "sent straight to the safeguarding team" in answer.text and "999" in answer.text and "DSL" in answer.text
    for place in (SAFEGUARDING_CHANNEL, DSL, DEPUTY, OFFICE_CHANNEL):
        [alert] = [m.plain() for m in ws.sim.messages(place) if "SOS" in m.plain()]
        assert "raised an SOS at 10:10 on visit #1" in alert
    for private in (ADDRESS, "man with a knife", "07700 900010"):
        assert private not in caplog.text

    ws.runtime.store.query_only = False
    ws.runtime.tick()
    assert healthz(ws)[0] == 200
    # Recorded once writable: an open emergency whose repeats run until someone confirms the visitor safe.
    assert ws.runtime.store.read().visit(1).state.value == "emergency"
    at(ws, 10, 25)
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain()
    assert_each_once_in_order(ws.sim, {SAFEGUARDING_CHANNEL: 1, DSL: 2, DEPUTY: 2, OFFICE_CHANNEL: 1, HEAD: 1})


def test_a_tier_falling_due_while_read_only_is_sent_directly_and_never_again(workspace):
    ws = workspace
    out_and_checked_in(ws)
    ws.runtime.store.query_only = True
    at(ws, 11, 0)  # the visitor's "due back" and the office tier fall due now
    assert healthz(ws)[0] == 503
    assert "OVERDUE" in ws.channel(OFFICE_CHANNEL)[-1].plain()
    at(ws, 11, 1)
    at(ws, 11, 2)
    ws.runtime.store.query_only = False
    at(ws, 11, 3)
    status, health = healthz(ws)
    assert status == 200 and health["database"] == "ok"
    at(ws, 11, 15)  # the next tier, through the outbox as usual
    assert_each_once_in_order(ws.sim, {REQUESTER: 1, OFFICE_CHANNEL: 1, SAFEGUARDING_CHANNEL: 1, DSL: 1, DEPUTY: 1})
    # Sent directly or not, every alert is updated when the visitor signs in.
    ws.clock.set(ws.clock().replace(hour=11, minute=20))
    ws.driver.command(REQUESTER, "/back")
    [office] = [m.plain() for m in ws.channel(OFFICE_CHANNEL) if "OVERDUE" in m.plain() or "signed in" in m.plain()]
    assert "signed in (back)* at 11:20" in office
