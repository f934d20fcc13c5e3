"""The SQLite store on a temporary file: schema, transactions, audit, outbox, register."""
from __future__ import annotations

import sqlite3

from datetime import timedelta

import pytest

from flows.approvals import approve, decline
from flows.messages import Button, Message
from flows.risk import Flag, RegisterEntry
from flows.visit import State, go_out
from storage.schema import migrations
from storage.store import Store
from tests.conftest import COMPANION, DSL, HEAD, MONDAY_9AM, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, make_policy
from tests.factories import make_answers, make_details, make_visit

POLICY = make_policy()
NOW = MONDAY_9AM


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "t.db")
    yield s
    s.close()


def count(store: Store, table: str) -> int:
    return store.db().conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def message(to: str, key: str, text: str = "hello") -> Message:
    return Message(to=to, text=text, key=key)


# Schema ---------------------------------------------------------------------------


def test_migrations_are_applied_once_and_reopening_is_harmless(tmp_path):
    path = tmp_path / "t.db"
    applied_sql = "SELECT name, applied_at FROM _sqlite_migrations WHERE migration_set = 'visitsafe' ORDER BY rowid"
    first = Store(path)
    applied_first = first.db().conn.execute(applied_sql).fetchall()
    with first.transaction() as tx:
        visit_id = tx.add_visit(make_visit(POLICY), NOW).id
    first.close()

    again = Store(path)
    conn = again.db().conn
    names = [name for name, _ in applied_first]
    assert names[0] == "0001_core"
    assert len(names) == len(set(names))  # each migration recorded once
    assert migrations.pending(again.db()) == []
    assert conn.execute(applied_sql).fetchall() == applied_first  # nothing re-applied on reopening
    assert again.read().visit(visit_id) is not None  # the data survived
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"visits", "approvals", "audit", "register", "outbox", "message_refs", "leases", "heartbeats"} <= tables
    again.close()


def test_wal_mode_is_on(store):
    assert store.db().conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_foreign_keys_are_enforced(store):
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction() as tx:
            tx.db.conn.execute(
                "INSERT INTO approvals (visit_id, slot, approver, approved, decided_at) VALUES (999, 'dsl', ?, 1, 0)", [DSL]
            )


# Visits ---------------------------------------------------------------------------


def test_a_new_visit_round_trips(store):
    visit = make_visit(
        POLICY,
        details=make_details(reason="other", reason_other="Return a coat", duration="1h30m"),
        answers=make_answers(animals=True, other_agencies="Social care", companions=(COMPANION,)),
    )
    with store.transaction() as tx:
        stored = tx.add_visit(visit, NOW)
    assert stored.id is not None
    loaded = store.read().visit(stored.id)
    assert loaded == stored
    assert loaded.details.duration == timedelta(hours=1, minutes=30)
    assert loaded.assessment.reminders == visit.assessment.reminders
    assert loaded.assessment.level == "raised"
    assert loaded.slots == visit.slots
    assert loaded.start_at == visit.start_at


def test_a_visit_round_trips_with_its_decisions_and_ladder(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
    visit = approve(visit, DSL, NOW + timedelta(minutes=1), POLICY)
    visit = approve(visit, HEAD, NOW + timedelta(minutes=2), POLICY)
    visit = go_out(visit, REQUESTER, NOW + timedelta(hours=1), NOW + timedelta(hours=2), POLICY)
    with store.transaction() as tx:
        tx.save_visit(visit, NOW + timedelta(hours=1))
    loaded = store.read().visit(visit.id)
    assert loaded == visit
    assert loaded.state is State.out
    assert [(d.slot, d.approver, d.approved, d.at) for d in loaded.decisions] == [
        ("dsl", DSL, True, NOW + timedelta(minutes=1)),
        ("head", HEAD, True, NOW + timedelta(minutes=2)),
    ]
    assert loaded.ladder == tuple(POLICY.escalation)
    assert loaded.expected_return == NOW + timedelta(hours=2)


def test_a_decline_reason_round_trips(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
    visit = decline(visit, HEAD, "Meet at school", NOW, POLICY)
    with store.transaction() as tx:
        tx.save_visit(visit, NOW)
    loaded = store.read().visit(visit.id)
    assert loaded.state is State.declined
    assert [(d.approver, d.approved, d.reason) for d in loaded.decisions] == [(HEAD, False, "Meet at school")]


def test_an_unknown_visit_is_none(store):
    assert store.read().visit(12345) is None


def test_visits_of_finds_a_persons_visits_by_state(store):
    with store.transaction() as tx:
        waiting = tx.add_visit(make_visit(POLICY), NOW)
        ready = tx.add_visit(make_visit(POLICY, state=State.approved), NOW)
        tx.add_visit(make_visit(POLICY, requester=COMPANION, answers=make_answers(companions=(REQUESTER,))), NOW)
    assert [v.id for v in store.read().visits_of(REQUESTER, {State.approved})] == [ready.id]
    assert {v.id for v in store.read().visits_of(REQUESTER, {State.requested, State.approved})} == {waiting.id, ready.id}


# Transactions ---------------------------------------------------------------------


def test_a_transaction_that_raises_rolls_back_visit_audit_and_outbox_together(store):
    with pytest.raises(RuntimeError, match="Slack is down"):
        with store.transaction() as tx:
            visit = tx.add_visit(make_visit(POLICY), NOW)
            tx.audit(REQUESTER, "requested", NOW, visit.id)
            tx.send([message(DSL, "approval-request:1:U01")], NOW, visit.id)
            raise RuntimeError("Slack is down")
    assert count(store, "visits") == 0
    assert count(store, "audit") == 0
    assert count(store, "outbox") == 0
    assert store.read().due_messages(NOW) == []


def test_a_transaction_that_completes_commits_everything(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
        tx.audit(REQUESTER, "requested", NOW, visit.id, risk="low")
        tx.send([message(DSL, "approval-request:1:U01")], NOW, visit.id)
    assert store.read().visit(visit.id) is not None
    assert store.read().audit_trail(visit.id) == [{"at": NOW, "actor": REQUESTER, "action": "requested", "risk": "low"}]
    assert [m.to for _, _, m in store.read().due_messages(NOW)] == [DSL]


def test_a_failed_decision_does_not_change_the_stored_visit(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.save_visit(approve(visit, DSL, NOW, POLICY), NOW)
            raise RuntimeError("crash")
    loaded = store.read().visit(visit.id)
    assert loaded.decisions == ()
    assert loaded.state is State.requested


# Audit ----------------------------------------------------------------------------


def test_the_audit_refuses_update_and_delete(store):
    with store.transaction() as tx:
        tx.audit(REQUESTER, "requested", NOW, 1)
    conn = store.db().conn
    with pytest.raises(sqlite3.DatabaseError, match="audit is append-only"):
        conn.execute("UPDATE audit SET actor = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="audit is append-only"):
        conn.execute("DELETE FROM audit")
    assert store.read().audit_trail(1) == [{"at": NOW, "actor": REQUESTER, "action": "requested"}]


# Outbox ---------------------------------------------------------------------------


def test_sending_the_same_key_twice_queues_once(store):
    with store.transaction() as tx:
        tx.send([message(DSL, "decision:1:1:U01", "first")], NOW)
    with store.transaction() as tx:
        tx.send([message(DSL, "decision:1:1:U01", "second")], NOW)
    due = store.read().due_messages(NOW)
    assert [m.text for _, _, m in due] == ["first"]


def test_a_queued_message_comes_back_as_it_was_sent(store):
    original = Message(
        to=DSL,
        text="Please approve",
        fields=(("Address", "12 Example Road"),),
        buttons=(Button("Approve", "visit_approve", "7", "primary"),),
        notes=("Risk level: *low*",),
        key="approval-request:7:U01",
        ref="approval:7:U01",
        fallback=(SAFEGUARDING_CHANNEL,),
    )
    with store.transaction() as tx:
        tx.send([original], NOW, 7)
    [(_, attempts, loaded)] = store.read().due_messages(NOW)
    assert loaded == original
    assert attempts == 0


def test_a_message_is_not_due_before_its_time(store):
    with store.transaction() as tx:
        tx.send([message(DSL, "k1")], NOW)
    assert store.read().due_messages(NOW - timedelta(seconds=1)) == []


def test_a_waiting_retry_holds_back_later_messages_to_the_same_destination_only(store):
    with store.transaction() as tx:
        tx.send(
            [
                message(OFFICE_CHANNEL, "office-1", "overdue: tier 1"),
                message(OFFICE_CHANNEL, "office-2", "overdue: tier 2"),
                message(DSL, "dsl-1", "to the DSL"),
            ],
            NOW,
        )
    first_id = store.read().due_messages(NOW)[0][0]
    with store.transaction() as tx:
        tx.retry_later(first_id, NOW + timedelta(seconds=30), "ratelimited")

    # While the first office message waits, the second must not overtake it; the DSL's goes.
    assert [m.text for _, _, m in store.read().due_messages(NOW + timedelta(seconds=1))] == ["to the DSL"]

    # When the retry is due, both office messages go, in order.
    due = store.read().due_messages(NOW + timedelta(seconds=30))
    assert [m.text for _, _, m in due] == ["overdue: tier 1", "overdue: tier 2", "to the DSL"]
    assert due[0][1] == 1  # one attempt so far


def test_a_sent_message_is_no_longer_due(store):
    with store.transaction() as tx:
        tx.send([message(DSL, "k1", "one"), message(DSL, "k2", "two")], NOW)
    first_id = store.read().due_messages(NOW)[0][0]
    with store.transaction() as tx:
        tx.mark_sent(first_id, NOW, "approval:1:U01", DSL, "1700000000.000100")
    assert [m.text for _, _, m in store.read().due_messages(NOW)] == ["two"]
    assert store.read().message_ref("approval:1:U01") == (DSL, "1700000000.000100")


def test_a_failed_message_does_not_hold_back_the_next(store):
    with store.transaction() as tx:
        tx.send([message("U404", "k1", "one"), message("U404", "k2", "two")], NOW)
    first_id = store.read().due_messages(NOW)[0][0]
    with store.transaction() as tx:
        tx.mark_failed(first_id, "user_not_found")
    assert [m.text for _, _, m in store.read().due_messages(NOW)] == ["two"]
    assert store.read().outbox_health(NOW, 60)["failed"] == 1


# One decision per slot ------------------------------------------------------------


def test_the_database_enforces_one_decision_per_slot(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
    conn = store.db().conn
    insert = "INSERT INTO approvals (visit_id, slot, approver, approved, decided_at) VALUES (?, ?, ?, 1, ?)"
    conn.execute(insert, [visit.id, "dsl", DSL, NOW.timestamp()])
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert, [visit.id, "dsl", "U09", NOW.timestamp()])
    assert [d.approver for d in store.read().visit(visit.id).decisions] == [DSL]


def test_two_stale_approvals_for_one_slot_cannot_both_be_saved(store):
    with store.transaction() as tx:
        visit = tx.add_visit(make_visit(POLICY), NOW)
    # Two DSLs click on the same stale copy of the request at once.
    first = approve(visit, DSL, NOW, POLICY)
    second = approve(visit, "U09", NOW, POLICY)
    with store.transaction() as tx:
        tx.save_visit(first, NOW)
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction() as tx:
            tx.db.conn.execute(
                "INSERT INTO approvals (visit_id, slot, approver, approved, decided_at) VALUES (?, ?, ?, 1, ?)",
                [visit.id, second.decisions[0].slot, second.decisions[0].approver, NOW.timestamp()],
            )
    assert [d.approver for d in store.read().visit(visit.id).decisions] == [DSL]


# Register -------------------------------------------------------------------------


def test_register_matches_a_normalised_address(store):
    with store.transaction() as tx:
        tx.add_flag(Flag.dont_visit_alone, "Aggressive dog", DSL, NOW, address="12 Example Road")
    assert store.read().register_for("12, example road", "ZZ999") == [
        RegisterEntry(Flag.dont_visit_alone, "Aggressive dog", DSL)
    ]


def test_register_matches_a_family_reference(store):
    with store.transaction() as tx:
        tx.add_flag(Flag.meet_on_premises, "Threats to staff", HEAD, NOW, pupil_ref="ab 123")
    assert store.read().register_for("99 Other Street", "AB123") == [
        RegisterEntry(Flag.meet_on_premises, "Threats to staff", HEAD)
    ]


def test_register_does_not_match_other_addresses_or_families(store):
    with store.transaction() as tx:
        tx.add_flag(Flag.under_review, "Incident", DSL, NOW, address="12 Example Road", pupil_ref="AB123")
    assert store.read().register_for("14 Example Road", "AB124") == []


def test_a_family_only_flag_does_not_match_an_empty_address(store):
    with store.transaction() as tx:
        tx.add_flag(Flag.under_review, "Incident", DSL, NOW, pupil_ref="AB123")
    assert store.read().register_for("", "CD456") == []


def test_a_cleared_flag_no_longer_matches(store):
    with store.transaction() as tx:
        flag_id = tx.add_flag(Flag.under_review, "Incident", DSL, NOW, address="12 Example Road")
        tx.db.conn.execute("UPDATE register SET cleared_at = ? WHERE id = ?", [NOW.timestamp(), flag_id])
    assert store.read().register_for("12 Example Road", "AB123") == []


# Heartbeats -----------------------------------------------------------------------


def test_a_heartbeat_is_remembered(store):
    assert store.read().last_beat("sweep") is None
    with store.transaction() as tx:
        tx.beat("sweep", NOW)
    assert store.read().last_beat("sweep") == NOW


def test_a_lease_is_exclusive_until_it_expires_and_can_be_released(tmp_path):
    from datetime import timedelta

    store = Store(tmp_path / "lease.db")
    now = MONDAY_9AM
    with store.transaction() as tx:
        assert tx.acquire_lease("sweep", "host:1:a", now, 3)
        assert not tx.acquire_lease("sweep", "host:2:b", now + timedelta(seconds=2), 3)
        assert tx.acquire_lease("sweep", "host:1:a", now + timedelta(seconds=2), 3)  # renewed to +5 s
        assert not tx.acquire_lease("sweep", "host:2:b", now + timedelta(seconds=4), 3)
        assert tx.acquire_lease("sweep", "host:2:b", now + timedelta(seconds=6), 3)  # expired: taken over
        assert not tx.release_lease("sweep", "host:1:a")
        assert tx.release_lease("sweep", "host:2:b") and tx.lease_holder("sweep") is None


def test_a_savepoint_that_is_not_kept_undoes_only_its_own_step(tmp_path):
    store = Store(tmp_path / "sp.db")
    with store.transaction() as tx:
        tx.audit("U1", "kept", MONDAY_9AM)
        with store.savepoint(tx, keep=False):
            tx.audit("U1", "dry run", MONDAY_9AM)
        tx.audit("U1", "also kept", MONDAY_9AM)
    actions = [row[0] for row in store.db().execute("SELECT action FROM audit ORDER BY id")]
    assert actions == ["kept", "also kept"]
