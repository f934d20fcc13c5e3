"""Retention gaps: an approved visit never started expires after its day and is then purged; an SOS
raised with no visit out keeps its note and mobile only for the policy's retention."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flows.visit import NotAllowed, State
from tests.conftest import DSL, HEAD, REQUESTER, make_policy
from tests.factories import make_visit
from tests.test_e2e_slack import approval_dm, request_visit

PRIVATE = ("12 Example Road", "01632 960123", "AB12 CDE", "AB123", "dog at the door", "07700 900010")


def dump(ws) -> str:
    """Everything the database holds, as text."""
    db = ws.runtime.store.db()
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    return repr({table: db.execute(f"SELECT * FROM [{table}]").fetchall() for table in tables})


def tick_at(ws, moment: datetime) -> None:
    ws.clock.set(moment)
    ws.runtime.tick()


def test_an_approved_visit_never_started_expires_after_its_day_and_is_then_purged(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(retention="30d"), clock)
    try:
        request_visit(ws)  # Monday 23 November at 10:00
        for approver in (DSL, HEAD):
            ws.driver.click(approver, approval_dm(ws, approver), "Approve")
        store = ws.runtime.store
        tick_at(ws, datetime(2026, 11, 23, 23, 59, tzinfo=timezone.utc))
        assert store.read().visit(1).state is State.approved  # still its day: /out may yet happen

        tick_at(ws, datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc))
        assert store.read().visit(1).state is State.expired
        told = ws.dms(REQUESTER)[-1].plain()
        assert "AB123" in told and "was not started" in told and "has expired" in told and "`/visit`" in told, told
        assert "no approved visit" in ws.driver.command(REQUESTER, "/out").text
        tick_at(ws, datetime(2026, 11, 24, 0, 1, tzinfo=timezone.utc))
        assert sum("has expired" in m.plain() for m in ws.dms(REQUESTER)) == 1  # told once

        tick_at(ws, datetime(2026, 12, 23, 23, 59, tzinfo=timezone.utc))
        assert "12 Example Road" in dump(ws)  # not before the retention period
        tick_at(ws, datetime(2026, 12, 24, 0, 1, tzinfo=timezone.utc))
        assert not [p for p in PRIVATE if p in dump(ws)]
        assert store.read().visit(1).details.reason == "attendance"  # what reports count survives
    finally:
        ws.close()


def test_an_sos_with_no_visit_out_keeps_its_note_and_mobile_only_for_the_retention_period(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(retention="30d", staff={REQUESTER: {"mobile": "07700 900010"}}), clock)
    try:
        ws.driver.command(REQUESTER, "/sos", "dog at the door")
        assert "dog at the door" in dump(ws) and "07700 900010" in dump(ws)
        assert any("dog at the door" in m.plain() for m in ws.sim.messages(DSL))  # it went out

        tick_at(ws, clock() + timedelta(days=29))
        assert "dog at the door" in dump(ws)
        tick_at(ws, clock() + timedelta(days=2))
        left = [p for p in PRIVATE if p in dump(ws)]
        assert not left, left
        db = ws.runtime.store.db()
        assert db.execute("SELECT COUNT(*) FROM message_refs").fetchone()[0] == 0
        assert [a for (a,) in db.execute("SELECT action FROM audit").fetchall()].count("sos_no_visit") == 1  # the fact stays
    finally:
        ws.close()


def test_a_visits_day_ends_at_midnight_in_the_schools_time_zone():
    from flows.visit import expire_unstarted

    policy = make_policy()
    # 1 July 2026, 10:00 in London is 09:00 UTC (summer time): the day ends at 23:00 UTC.
    start = datetime(2026, 7, 1, 9, 0, tzinfo=timezone.utc)
    visit = make_visit(policy, state=State.approved, start_at=start)
    try:
        expire_unstarted(visit, datetime(2026, 7, 1, 22, 59, tzinfo=timezone.utc), policy)
    except NotAllowed:
        pass
    else:
        raise AssertionError("expired before the end of its day")
    assert expire_unstarted(visit, datetime(2026, 7, 1, 23, 0, tzinfo=timezone.utc), policy).state is State.expired
