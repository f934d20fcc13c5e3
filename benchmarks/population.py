"""A school at a trust's size, written straight to a database: today's visits, years of history, people who
will sign out during a run, and visits that fall due during it (shared by load.py, ack_vs_bare.py, board_scaling.py).

One visit is built the way the model allows (flows.visit, as alert_latency.py does); every other row is a
copy of its stored row with its own people, times and state, inserted in bulk, so 100,000 visits of history
take seconds. History has what a year of real use leaves: two approvals, three outbox messages (one an alert)
and four audit events per visit.
"""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from flows.approvals import required_slots
from flows.messages import Message
from flows.policy import Policy
from flows.request import RiskAnswers, VisitDetails
from flows.risk import assess
from flows.visit import Decision, State, Visit, go_out
from storage.store import Store, _visit_row, message_to_json, ts
from common import DSL, HEAD, OFFICE_CHANNEL  # noqa: E402  (benchmarks/common.py)

TODAY_STATES = (State.requested, State.approved, State.out, State.returned, State.declined)
HISTORY_STATES = (State.returned, State.returned, State.returned, State.closed, State.declined, State.cancelled, State.expired)
BATCH = 5000


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def template(policy: Policy, day: datetime) -> Visit:
    """An approved visit on `day` (school time) by a placeholder visitor with one companion."""
    details = VisitDetails.model_validate(
        {
            "pupil_ref": "PP00000", "address": "12 Example Road, Botley OX2 9AA", "contact_phone": "01632 960123",
            "reason": "attendance", "visit_type": "doorstep", "planned": True, "date": day.date().isoformat(),
            "start_time": "10:00", "duration": "45m", "travel_mode": "car", "travel_details": "AB12 CDE, blue Ford Focus",
            "parents_informed": True, "commute": False,
        }
    )
    answers = RiskAnswers.model_validate({"companions": ("UQ00000",)})
    assessment = assess(details, answers, [], policy, "UP00000")
    slots = required_slots(policy, "UP00000", details, assessment)
    decided = datetime.combine(day.date(), time(7), tzinfo=policy.tz)
    approvers = {"dsl": DSL, "head": HEAD}
    decisions = tuple(Decision(s.name, approvers.get(s.name, DSL), True, decided) for s in slots)
    return Visit(
        "UP00000", details, answers, assessment, slots, created_at=decided - timedelta(hours=1),
        start_at=details.start_at(policy), state=State.approved, decisions=decisions,
    )


class Writer:
    """Bulk inserts of visits (with approvals, outbox and audit rows) into one database."""

    def __init__(self, store: Store, policy: Policy):
        self.store, self.policy = store, policy
        self.visits: list[dict[str, Any]] = []
        self.approvals: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        self.audit: list[tuple[Any, ...]] = []
        row = store.read().db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM visits").fetchone()
        self.next_id = int(row[0]) + 1

    def add(self, visit: Visit, now: datetime, history: bool = False) -> int:
        """Queue one visit (its id is assigned here); returns the id."""
        visit_id = self.next_id
        self.next_id += 1
        row = _visit_row(visit, now, self.store.policy)
        row["id"] = visit_id
        self.visits.append(row)
        for d in visit.decisions:
            self.approvals.append((visit_id, d.slot, d.approver, int(d.approved), d.reason, ts(d.at)))
        if history:
            at = ts(visit.returned_at or visit.start_at)
            for n, (key, to) in enumerate(((f"request:{visit_id}", visit.requester), (f"approval:{visit_id}:dsl", DSL),
                                           (f"alert:{visit_id}:1:0", OFFICE_CHANNEL))):
                message = Message(to=to, text="(history)", key=key, ref=key)
                self.outbox.append((key, visit_id, to, message_to_json(message), "sent", 1, at, at, at, int(n == 2)))
            for action in ("requested", "approved", "out", "back"):
                self.audit.append((at, visit.requester, visit_id, action, "{}"))
        if len(self.visits) >= BATCH:
            self.flush()
        return visit_id

    def flush(self) -> None:
        if not self.visits:
            return
        cols = list(self.visits[0])
        with self.store.transaction() as tx:
            c = tx.db.conn
            c.executemany(f"INSERT INTO visits ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [list(r.values()) for r in self.visits])
            c.executemany("INSERT INTO approvals (visit_id, slot, approver, approved, reason, decided_at) VALUES (?, ?, ?, ?, ?, ?)", self.approvals)
            c.executemany(
                "INSERT INTO outbox (key, visit_id, target, payload, status, attempts, created_at, next_attempt_at, sent_at, alert)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.outbox)
            c.executemany("INSERT INTO audit (at, actor, visit_id, action, detail) VALUES (?, ?, ?, ?, ?)", self.audit)
        self.visits, self.approvals, self.outbox, self.audit = [], [], [], []


def _person(base: Visit, prefix: str, i: int, start_at: datetime, pupil: str) -> Visit:
    details = base.details.model_copy(update={"pupil_ref": pupil})
    answers = base.answers.model_copy(update={"companions": (f"{prefix}C{i:05d}",)})
    return replace(base, requester=f"{prefix}{i:05d}", details=details, answers=answers, start_at=start_at)


def seed(path: Path, policy: Policy, now: datetime, today: int = 0, history: int = 0, cyclers: int = 0,
         due: list[float] | None = None, seed_value: int = 1) -> dict[str, Any]:
    """Write a school's visits into the database at `path`; returns who cycles and which visits fall due when.

    today: visits planned for today by other staff, in a mix of states (out ones due back tonight; requested ones,
    waiting for the DSL's and the head's decisions, start 2 to 4 hours after `now`, so none expires during a run);
    history: finished visits spread over the last year; cyclers: people US00000.. with one approved visit
    each today (they sign out, check in and sign back during a run); due: epoch seconds at which one more
    visit each (visitor UA00000..) falls due (its tier 0 DMs the visitor).
    """
    rng = random.Random(seed_value)
    store = Store(path, policy)
    writer = Writer(store, policy)
    local = now.astimezone(policy.tz)
    day_start = datetime.combine(local.date(), time(0), tzinfo=policy.tz)
    base = template(policy, local)
    for i in range(today):
        start_at = day_start + timedelta(hours=8, minutes=(i * 7) % (8 * 60))
        state = TODAY_STATES[i % len(TODAY_STATES)]
        v = _person(base, "UT", i, start_at, f"TD{i:05d}")
        if state is State.requested:
            # Undecided, so planned after the run: a request whose start has passed expires at the first tick.
            v = replace(v, state=state, decisions=(), start_at=now + timedelta(hours=2, minutes=(i * 7) % 120))
        elif state is State.declined:
            v = replace(v, state=state, decisions=(Decision(v.slots[0].name, DSL, False, start_at - timedelta(hours=1), "Meet at school instead"),))
        elif state is State.out:
            v = go_out(v, v.requester, now - timedelta(minutes=30), now + timedelta(hours=6), policy)  # due back long after the run
        elif state is State.returned:
            v = replace(v, state=state, departed_at=start_at, expected_return=start_at + timedelta(minutes=45),
                        returned_at=start_at + timedelta(minutes=40))
        writer.add(v, now)
    for i in range(history):
        day = day_start - timedelta(days=1 + rng.randrange(365))
        start_at = day + timedelta(hours=8, minutes=rng.randrange(8 * 60))
        state = HISTORY_STATES[i % len(HISTORY_STATES)]
        v = _person(base, "UH", i % 400, start_at, f"HS{i:06d}")
        v = replace(v, state=state, created_at=start_at - timedelta(days=1), departed_at=start_at,
                    expected_return=start_at + timedelta(minutes=45), returned_at=start_at + timedelta(minutes=40))
        writer.add(v, start_at + timedelta(hours=1), history=True)
    people = []
    for i in range(cyclers):
        v = _person(base, "US", i, day_start + timedelta(hours=8), f"CY{i:05d}")
        writer.add(v, now)
        people.append(v.requester)
    alerts = []
    for i, at in enumerate(due or []):
        v = _person(base, "UA", i, day_start + timedelta(hours=8), f"AL{i:05d}")
        v = go_out(v, v.requester, utc(at) - timedelta(minutes=45), utc(at), policy)
        alerts.append({"visit_id": writer.add(v, now), "visitor": v.requester, "due": at})
    writer.flush()
    store.close()
    return {"cyclers": people, "alerts": alerts}


def alert_delays(path: Path, policy: Policy, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each seeded due visit: seconds from falling due to its first alert queued and sent (None: not yet)."""
    store = Store(path, policy)
    rows = []
    try:
        c = store.read().db.conn
        for a in alerts:
            row = c.execute(
                "SELECT MIN(created_at), MIN(sent_at) FROM outbox WHERE visit_id = ? AND alert = 1", [a["visit_id"]]
            ).fetchone()
            rows.append({**a, "queued_s": None if row[0] is None else row[0] - a["due"],
                         "sent_s": None if row[1] is None else row[1] - a["due"]})
    finally:
        store.close()
    return rows


def counts(path: Path, policy: Policy) -> dict[str, int]:
    """Rows in the hot tables."""
    store = Store(path, policy)
    try:
        c = store.read().db.conn
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("visits", "approvals", "outbox", "audit")}
    finally:
        store.close()
