"""Ladder drills in the database: the runs, the messages each tier queued (with what the outbox made of them), the answers."""
from __future__ import annotations

from datetime import datetime, timedelta

from flows.drill import Answer, Run, Sent
from storage.store import Tx, dt, standby_group, ts

_RUN = "SELECT visit_id, started_by, started_at, factor, window_s, ended_at, stopped_by FROM drills"


def _run(row: tuple) -> Run:  # type: ignore[type-arg]
    visit_id, started_by, started_at, factor, window_s, ended_at, stopped_by = row
    return Run(visit_id, started_by, dt(started_at), factor, timedelta(seconds=window_s), dt(ended_at), stopped_by)  # type: ignore[arg-type]


def add(tx: Tx, visit_id: int, started_by: str, now: datetime, factor: int, wait: timedelta) -> None:
    """Record a drill just started on its (already stored) drill visit."""
    tx.db.conn.execute(
        "INSERT INTO drills (visit_id, started_by, started_at, factor, window_s) VALUES (?, ?, ?, ?, ?)",
        [visit_id, started_by, ts(now), factor, wait.total_seconds()],
    )


def running(tx: Tx) -> list[Run]:
    """Drills not yet ended, oldest first."""
    return [_run(row) for row in tx.db.conn.execute(_RUN + " WHERE ended_at IS NULL ORDER BY started_at")]


def run(tx: Tx, visit_id: int) -> Run | None:
    """The drill run on this visit, or None."""
    row = tx.db.conn.execute(_RUN + " WHERE visit_id = ?", [visit_id]).fetchone()
    return None if row is None else _run(row)


def end(tx: Tx, visit_id: int, now: datetime, stopped_by: str | None) -> Run:
    """Mark a drill ended (by `stopped_by`, or because every tier is done); returns the ended run."""
    tx.db.conn.execute("UPDATE drills SET ended_at = ?, stopped_by = ? WHERE visit_id = ? AND ended_at IS NULL", [ts(now), stopped_by, visit_id])
    found = run(tx, visit_id)
    assert found is not None
    return found


def add_message(tx: Tx, visit_id: int, tier: int, target: str, key: str, now: datetime) -> int:
    """The id a drill message's button carries (the same id again for a key already recorded)."""
    tx.db.conn.execute(
        "INSERT OR IGNORE INTO drill_messages (visit_id, tier, target, key, queued_at) VALUES (?, ?, ?, ?, ?)",
        [visit_id, tier, target, key, ts(now)],
    )
    return int(tx.db.conn.execute("SELECT id FROM drill_messages WHERE key = ?", [key]).fetchone()[0])


def message(tx: Tx, message_id: int) -> tuple[int, Sent] | None:
    """(drill visit id, the message) of a drill message id, or None."""
    row = tx.db.conn.execute("SELECT visit_id FROM drill_messages WHERE id = ?", [message_id]).fetchone()
    if row is None:
        return None
    return row[0], next(s for s in sent(tx, row[0]) if s.id == message_id)


def sent(tx: Tx, visit_id: int) -> list[Sent]:
    """Every message a drill's tiers queued, in order, each with its outbox status, delivery time and last error."""
    rows = tx.db.conn.execute(
        "SELECT m.id, m.tier, m.target, m.queued_at, COALESCE(o.status, 'pending'), o.sent_at, o.last_error"
        " FROM drill_messages AS m LEFT JOIN outbox AS o ON o.key = m.key WHERE m.visit_id = ? ORDER BY m.id",
        [visit_id],
    ).fetchall()
    return [Sent(i, tier, target, dt(queued), status, dt(sent_at), error) for i, tier, target, queued, status, sent_at, error in rows]  # type: ignore[arg-type]


def answer(tx: Tx, message_id: int, user: str, now: datetime) -> datetime | None:
    """Record `user`'s answer to a drill message; None if it is their first, else when they first answered."""
    before = tx.db.conn.execute("SELECT at FROM drill_acks WHERE message_id = ? AND user = ?", [message_id, user]).fetchone()
    if before is not None:
        return dt(before[0])
    tx.db.conn.execute("INSERT INTO drill_acks (message_id, user, at) VALUES (?, ?, ?)", [message_id, user, ts(now)])
    return None


def answers(tx: Tx, visit_id: int) -> list[Answer]:
    """Every answer to a drill's messages, oldest first."""
    rows = tx.db.conn.execute(
        "SELECT a.message_id, a.user, a.at FROM drill_acks AS a JOIN drill_messages AS m ON m.id = a.message_id"
        " WHERE m.visit_id = ? ORDER BY a.at, a.rowid",
        [visit_id],
    ).fetchall()
    return [Answer(message_id, user, dt(at)) for message_id, user, at in rows]  # type: ignore[arg-type]


def arm_texts(tx: Tx, now: datetime, fallback_after: timedelta, sms_after: timedelta | None) -> list[tuple[int, int, str]]:
    """Standby texts of running drills, armed like a real visit's but with delivery_fallback_after and sms_after divided
    by the drill's factor (so a drill tests the SMS fallback too), and acknowledged by the tier's drill button.
    (outbox id, visit id, why) of each armed."""
    armed = []
    for drill in running(tx):
        rows = tx.db.conn.execute(
            "SELECT id, created_at, key FROM outbox WHERE visit_id = ? AND status = 'standby'", [drill.visit_id]
        ).fetchall()
        for row_id, created, key in rows:
            group = standby_group(key)
            why = None
            if tx.chat_undelivered(drill.visit_id, group, created, now - fallback_after / drill.factor):
                why = "chat_undelivered (drill)"
            elif sms_after is not None and created <= ts(now - sms_after / drill.factor) and not _tier_answered(tx, drill.visit_id, group):
                why = "unacknowledged (drill)"
            if why is not None:
                tx.arm_standby(row_id, now, why)
                armed.append((row_id, drill.visit_id, why))
    return armed


def _tier_answered(tx: Tx, visit_id: int, group: str) -> bool:
    """Whether anyone pressed the drill button on a message of the tier whose keys start with `group`."""
    return tx.db.conn.execute(
        "SELECT 1 FROM drill_acks AS a JOIN drill_messages AS m ON m.id = a.message_id"
        " WHERE m.visit_id = ? AND substr(m.key, 1, ?) = ? LIMIT 1",
        [visit_id, len(group), group],
    ).fetchone() is not None
