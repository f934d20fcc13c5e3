"""Retention: personal details of finished visits are purged after the policy's period; counts survive."""
from __future__ import annotations

from datetime import timedelta

import pytest

from commands.sweep import purge_expired
from flows.retention import purge
from flows.visit import NotAllowed, State, come_back
from tests.conftest import COMPANION, DSL, HEAD, REQUESTER, make_policy
from tests.test_e2e_safety import at, out_at_ten
from tests.test_flows_visit import out as out_visit

PRIVATE = ("12 Example Road", "01632 960123", "AB12 CDE", "AB123", "dog at the door")


def test_purge_removes_personal_details_and_keeps_what_reports_count():
    visit = come_back(out_visit(), REQUESTER, out_visit().departed_at + timedelta(minutes=30))
    purged = purge(visit)
    text = repr(purged)
    assert not any(p in text for p in PRIVATE)
    assert (purged.details.reason, purged.details.duration, purged.details.travel_mode) == (
        visit.details.reason, visit.details.duration, visit.details.travel_mode,
    )
    assert purged.companions == (COMPANION,) and purged.returned_at == visit.returned_at


def test_a_live_visit_is_never_purged():
    with pytest.raises(NotAllowed):
        purge(out_visit())


def test_the_sweep_purges_after_the_retention_period_and_not_before(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(retention="30d"), clock)
    try:
        out_at_ten(ws)
        ws.driver.command(REQUESTER, "/sos", "dog at the door")
        ws.clock.advance(timedelta(minutes=5))
        [alert] = [m for m in ws.sim.messages(DSL) if "SOS" in m.plain()]
        ws.driver.click(HEAD, alert, "Reached, safe", channel="D" + HEAD)
        ws.driver.submit(HEAD, {"note": "Spoke to Sam, all fine"})
        store = ws.runtime.store
        assert store.read().visit(1).state is State.returned

        ws.clock.advance(timedelta(days=29))
        assert purge_expired(ws.runtime.ctx) == 0
        ws.clock.advance(timedelta(days=2))
        assert purge_expired(ws.runtime.ctx) == 1
        assert purge_expired(ws.runtime.ctx) == 0  # once

        db = store.db()
        for table in ("visits", "approvals", "outbox", "audit"):
            dump = repr(db.execute(f"SELECT * FROM {table}").fetchall())
            assert not any(p in dump for p in PRIVATE), table
        visit = store.read().visit(1)
        assert visit.details.reason == "attendance" and visit.watch.emergency == "sos" and visit.watch.safe_by == HEAD
        assert any(e["action"] == "purged" for e in store.read().audit_trail(1))
        at(ws, 10, 0)  # the sweep runs on happily over purged visits
    finally:
        ws.close()
