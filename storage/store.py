"""The only place that touches SQLite: connections, transactions, repositories."""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from sqlite_utils import Database

from flows.durations import format_duration
from flows.messages import Button, Message
from flows.policy import Role, Tier
from flows.request import PURGED, RiskAnswers, VisitDetails
from flows.risk import Flag, RegisterEntry, RiskAssessment, address_key, family_key, legacy_address_key
from flows.policy import Policy
from flows.visit import LIVE, Decision, Slot, State, Visit, Watch
from flows.watch import next_due, signed_in_during_emergency
from storage.schema import migrations

BUSY_TIMEOUT_S = 5.0

# SQLite's primary result codes for "this database cannot be written now" (read-only, I/O error, disk full).
_UNWRITABLE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN}


class NotWritable(Exception):
    """The database can be read but not written (full disk, read-only file system, I/O errors)."""


def _unwritable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _UNWRITABLE


def ts(moment: datetime | None) -> float | None:
    """An aware datetime as epoch seconds for storage."""
    return None if moment is None else moment.timestamp()


def dt(value: float | None) -> datetime | None:
    """Epoch seconds back to an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


# dataclasses.fields() walks the class each call: the sweep serialises hundreds of these a tick.
_MESSAGE_FIELDS = tuple(f.name for f in fields(Message))
_BUTTON_FIELDS = tuple(f.name for f in fields(Button))


def message_to_json(message: Message) -> str:
    """Serialise a neutral message for the outbox."""
    # A shallow copy: dataclasses.asdict deep-copies every field, which dominated the sweep's cost.
    data = {name: getattr(message, name) for name in _MESSAGE_FIELDS}
    data["buttons"] = [{name: getattr(b, name) for name in _BUTTON_FIELDS} for b in message.buttons]
    return json.dumps(data)


def message_from_json(text: str) -> Message:
    """Read a neutral message back from the outbox."""
    data = json.loads(text)
    data["fields"] = tuple(tuple(pair) for pair in data["fields"])
    data["buttons"] = tuple(Button(**b) for b in data["buttons"])
    data["notes"] = tuple(data["notes"])
    data["fallback"] = tuple(data["fallback"])
    return Message(**data)


def is_alert_key(key: str | None) -> bool:
    """Whether an outbox key names an alert (a ladder step, an SOS, or a fallback copy of one): never terminal."""
    return bool(key) and key.startswith(("alert:", "sos:"))  # type: ignore[union-attr]


class Delivery(NamedTuple):
    """One queued message due now, as the dispatcher needs it."""

    id: int
    attempts: int
    message: Message
    alert: bool
    in_flight: bool  # a post was (maybe) under way when the last attempt ended: look in Slack before posting
    first_attempt_at: datetime | None
    visit_id: int | None


# Undelivered: queued, or (for alerts) possibly posted by a process that died before it could record it.
UNDELIVERED = "('pending', 'sending')"


def standby_group(key: str) -> str:
    """The key prefix a standby SMS shares with its tier's chat alerts (`alert:<visit>:e<n>:t<n>:`)."""
    return key[: key.index(":sms:") + 1] if ":sms:" in key else key


_WATCH_FIELDS = tuple(f.name for f in fields(Watch))


def watch_to_json(watch: Watch) -> str:
    """The safety-net state as JSON, times as epoch seconds."""
    return json.dumps({name: ts(v) if isinstance(v := getattr(watch, name), datetime) else v for name in _WATCH_FIELDS})


_WATCH_TIMES = {f.name for f in fields(Watch) if "datetime" in str(f.type)}


def watch_from_json(text: str) -> Watch:
    """The safety-net state back from JSON."""
    data = json.loads(text or "{}")
    return Watch(**{k: dt(v) if k in _WATCH_TIMES else v for k, v in data.items()})


class Store:
    """A SQLite database in WAL mode with one connection per thread.

    With a policy, every saved visit gets its `next_due_at` (when the sweep must look again).
    """

    def __init__(self, path: str | Path, policy: Policy | None = None):
        self.path = str(path)
        self.policy = policy
        # A fault switch for tests: every connection refuses writes as a full or read-only disk would.
        self.query_only = False
        # Called with each SQL statement any connection runs (tests read the hot paths' query plans).
        self.trace: Callable[[str], None] | None = None
        self._local = threading.local()
        db = self.db()
        with db.ensure_autocommit_on():
            db.execute("PRAGMA journal_mode=WAL")
        migrations.apply(db)

    def db(self) -> Database:
        """This thread's connection (sqlite3 connections must stay on their thread)."""
        db = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: no implicit transactions; every write goes through transaction().
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.set_trace_callback(lambda sql: self.trace and self.trace(sql))
            db = Database(conn)
            self._local.db = db
            self._local.query_only = False
        if self._local.query_only != self.query_only:
            db.conn.execute(f"PRAGMA query_only={'ON' if self.query_only else 'OFF'}")
            self._local.query_only = self.query_only
        return db

    @contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """One unit of work: everything inside commits together or not at all."""
        db = self.db()
        try:
            # IMMEDIATE takes the write lock up front, so two clicks at once queue instead of failing.
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(db, self.policy)
            except BaseException:
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
                raise
            else:
                try:
                    db.conn.execute("COMMIT")
                except BaseException:
                    if db.conn.in_transaction:
                        db.conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            if _unwritable(exc):
                raise NotWritable(type(exc).__name__) from exc
            raise

    def probe_write(self, now: datetime) -> str | None:
        """Write (and commit) a heartbeat: None if the database can be written, else why not (no personal data)."""
        try:
            with self.transaction() as tx:
                tx.beat("write-probe", now)
        except NotWritable as exc:
            return str(exc.__cause__ and getattr(exc.__cause__, "sqlite_errorname", None) or exc)
        return None

    @contextmanager
    def savepoint(self, tx: "Tx", keep: bool = True) -> Iterator["Tx"]:
        """A step inside a transaction that can fail alone: its changes are undone, the rest stand.

        With keep=False the step's changes are always undone (a dry run inside the transaction).
        """
        tx.db.conn.execute("SAVEPOINT step")
        try:
            yield tx
        except BaseException:
            tx.db.conn.execute("ROLLBACK TO step")
            tx.db.conn.execute("RELEASE step")
            raise
        if not keep:
            tx.db.conn.execute("ROLLBACK TO step")
        tx.db.conn.execute("RELEASE step")

    def install_id(self) -> str:
        """An id made once for this database and kept across restarts (a fresh database gets a new one)."""
        try:
            with self.transaction() as tx:
                tx.db.conn.execute("INSERT OR IGNORE INTO install_settings (name, value) VALUES ('install_id', ?)", [uuid.uuid4().hex])
        except NotWritable:
            pass  # read-only: the id made at an earlier start, if any
        row = self.read().db.conn.execute("SELECT value FROM install_settings WHERE name = 'install_id'").fetchone()
        return str(row[0]) if row else ""

    def read(self) -> "Tx":
        """Repository access outside a transaction, for reads."""
        return Tx(self.db(), self.policy)

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


# What the sweep asks every tick; the partial index keeps it independent of how many visits are out.
DUE_SQL = (
    "SELECT id, requester, companions FROM visits INDEXED BY visits_due"
    " WHERE next_due_at IS NOT NULL AND next_due_at <= ? ORDER BY next_due_at LIMIT ?"
)


class BoardRow(NamedTuple):
    """One visit as the board prints it: only the columns it shows."""

    id: int
    requester: str
    companions: tuple[str, ...]
    state: State
    start_at: datetime
    expected_return: datetime | None
    returned_at: datetime | None
    returned_home: bool

    @property
    def team(self) -> tuple[str, ...]:
        """Everyone going on the visit: the visitor first."""
        return (self.requester, *self.companions)

    @classmethod
    def of(cls, v: Visit) -> "BoardRow":
        """The board's columns of a whole visit."""
        return cls(v.id, v.requester, v.companions, v.state, v.start_at, v.expected_return, v.returned_at, v.returned_home)  # type: ignore[arg-type]


class Awaiting(NamedTuple):
    """A requested visit as "waiting for your decision" needs it: who goes, when, and its slots still open."""

    id: int
    requester: str
    team: tuple[str, ...]
    start_at: datetime
    open_slots: tuple[Slot, ...]


# Today's board: planned in the day or live now; the OR is answered from visits_start and visits_state_start.
BOARD_COLUMNS = "SELECT id, requester, companions, state, start_at, expected_return, returned_at, returned_home FROM visits"
# A drill is never on the board: the office must not take a test for a colleague overdue.
BOARD_SQL = BOARD_COLUMNS + " WHERE ((start_at >= ? AND start_at < ?) OR state IN ('out', 'overdue', 'emergency')) AND drill = 0"


# BoardRow by the stored columns it was made from (immutable, so shared by every thread); cleared when full.
_BOARD_ROWS: dict[tuple[Any, ...], BoardRow] = {}
_BOARD_ROWS_MAX = 20000
# Awaiting by the stored columns and the slots already filled (immutable, shared the same way).
_AWAITING: dict[tuple[Any, ...], "Awaiting"] = {}
_NOT_LIVE = ", ".join(f"'{s.value}'" for s in State if s not in LIVE)


@lru_cache(maxsize=64)
def _slots(text: str) -> tuple[Slot, ...]:
    """A visit's approval slots from JSON; visits share a handful of slot lists, so parse each once."""
    return tuple(Slot(s["name"], tuple(Role(x) for x in s["roles"])) for s in json.loads(text))


@lru_cache(maxsize=64)
def _ladder(text: str) -> tuple[Tier, ...]:
    """A frozen ladder from JSON; visits share a handful of ladders, so parse each once."""
    return tuple(Tier.model_validate(t) for t in json.loads(text))


def _visit_row(visit: Visit, now: datetime, policy: Policy | None) -> dict[str, Any]:
    return {
        "watch": watch_to_json(visit.watch),
        "next_due_at": ts(next_due(visit, policy)) if policy is not None else None,
        "round_lead": visit.round_lead,
        "round_pos": visit.round_pos,
        "drill": int(visit.drill),
        "state": visit.state.value,
        "requester": visit.requester,
        "companions": json.dumps(list(visit.companions)),
        "start_at": ts(visit.start_at),
        "created_at": ts(visit.created_at),
        "updated_at": ts(now),
        "departed_at": ts(visit.departed_at),
        "expected_return": ts(visit.expected_return),
        "returned_at": ts(visit.returned_at),
        "returned_home": int(visit.returned_home),
        "details": visit.details.model_dump_json(),
        "answers": visit.answers.model_dump_json(),
        "assessment": json.dumps({f.name: getattr(visit.assessment, f.name) for f in fields(RiskAssessment)}),
        "slots": json.dumps([{"name": s.name, "roles": [r.value for r in s.roles]} for s in visit.slots]),
        "ladder": json.dumps([{"after": format_duration(t.after) if t.after else "0s", "notify": t.notify} for t in visit.ladder]),
    }


class Tx:
    """Repositories over one connection; used inside Store.transaction() for writes."""

    def __init__(self, db: Database, policy: Policy | None = None):
        self.db = db
        self.policy = policy

    # Visits -----------------------------------------------------------------

    def add_visit(self, visit: Visit, now: datetime) -> Visit:
        """Store a new visit and return it with its id."""
        row = _visit_row(visit, now, self.policy)
        cursor = self.db.conn.execute(
            f"INSERT INTO visits ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
        return replace(visit, id=cursor.lastrowid)

    def save_visit(self, visit: Visit, now: datetime) -> None:
        """Write a visit's new state and any decisions not yet stored."""
        row = _visit_row(visit, now, self.policy)
        self.db.conn.execute(
            f"UPDATE visits SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?", [*row.values(), visit.id]
        )
        stored = {r[0] for r in self.db.conn.execute("SELECT slot FROM approvals WHERE visit_id = ?", [visit.id])}
        for d in visit.decisions:
            if d.slot not in stored:
                self.db.conn.execute(
                    "INSERT INTO approvals (visit_id, slot, approver, approved, reason, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [visit.id, d.slot, d.approver, int(d.approved), d.reason, ts(d.at)],
                )

    def save_watch(self, visit: Visit, now: datetime, was: State | None = None) -> None:
        """Write only what the safety net changes (state and timers): the sweep's hot path. With `was` (the state
        read), an unchanged state is not written, so the five indexes that hold it are left alone."""
        timers = [watch_to_json(visit.watch), ts(next_due(visit, self.policy)) if self.policy is not None else None, ts(now), visit.id]
        if was is visit.state:
            self.db.conn.execute("UPDATE visits SET watch = ?, next_due_at = ?, updated_at = ? WHERE id = ?", timers)
        else:
            self.db.conn.execute("UPDATE visits SET state = ?, watch = ?, next_due_at = ?, updated_at = ? WHERE id = ?", [visit.state.value, *timers])

    def visit(self, visit_id: int) -> Visit | None:
        """One visit with its decisions, or None."""
        found = self.visits_where("id = ?", [visit_id], order="id")
        return found[0] if found else None

    def visits_where(self, where: str, params: list[Any], order: str = "start_at") -> list[Visit]:
        """Visits matching a SQL condition, in order."""
        cursor = self.db.conn.execute(f"SELECT * FROM visits WHERE {where} ORDER BY {order}", params)
        cols = [c[0] for c in cursor.description]
        return [self._visit(dict(zip(cols, row))) for row in cursor.fetchall()]

    def visits_of(self, user: str, states: set[State]) -> list[Visit]:
        """A member of staff's own visits in the given states."""
        marks = ", ".join("?" * len(states))
        return self.visits_where(f"requester = ? AND state IN ({marks})", [user, *(s.value for s in states)])

    def visits_between(self, start: datetime, end: datetime) -> list[Visit]:
        """Visits planned to start in a time range, or live now."""
        return self.visits_where(
            "(start_at >= ? AND start_at < ?) OR state IN ('out', 'overdue', 'emergency')", [ts(start), ts(end)]
        )

    def board_rows(self, start: datetime, end: datetime, member: str | None = None) -> list[BoardRow]:
        """Visits planned to start in a time range, or live now, as the board shows them (in start order);
        with `member`, only the visits that person goes on."""
        sql, params = BOARD_SQL, [ts(start), ts(end)]
        if member is not None:
            # LIKE narrows in SQL (its `_` matches any character); team membership is checked exactly below.
            # Each half is narrowed on an index that holds the team, so only this person's rows are read.
            team = "(requester = ? OR companions LIKE ?) AND drill = 0"
            sql = (BOARD_COLUMNS + " WHERE id IN (SELECT id FROM visits INDEXED BY visits_day WHERE start_at >= ? AND start_at < ?"
                   f" AND {team} UNION SELECT id FROM visits INDEXED BY visits_live WHERE state IN ('out', 'overdue', 'emergency') AND {team})")
            params = [*params, member, f'%"{member}"%', member, f'%"{member}"%']
        rows = self._board_rows(sql + " ORDER BY start_at, id", params)
        return rows if member is None else [r for r in rows if member in r.team]

    def _board_rows(self, sql: str, params: list[Any]) -> list[BoardRow]:
        # A row's stored columns decide its BoardRow: each board re-reads the same hundreds, so convert each once.
        cache = _BOARD_ROWS
        if len(cache) > _BOARD_ROWS_MAX:
            cache.clear()
        rows = []
        for raw in self.db.conn.execute(sql, params):
            row = cache.get(raw)
            if row is None:
                i, req, comp, state, start_s, back, returned, home = raw
                row = cache[raw] = BoardRow(i, req, tuple(json.loads(comp)), State(state), dt(start_s), dt(back), dt(returned), bool(home))  # type: ignore[arg-type]
            rows.append(row)
        return rows

    def board_rows_capped(self, start: datetime, end: datetime, others: int) -> tuple[list[BoardRow], dict[str, int]]:
        """Every live visit, and the first `others` other visits planned in the range (in start order); with the
        number of those not listed, by state. A whole day of a trust is more than a chat message can show."""
        live = self._board_rows(
            BOARD_COLUMNS + " INDEXED BY visits_live WHERE state IN ('out', 'overdue', 'emergency') AND drill = 0 ORDER BY start_at, id", []
        )
        listed = self._board_rows(
            BOARD_COLUMNS + " WHERE start_at >= ? AND start_at < ? AND state NOT IN ('out', 'overdue', 'emergency') AND drill = 0"
            " ORDER BY start_at, id LIMIT ?", [ts(start), ts(end), others],
        )
        rest: dict[str, int] = {}
        if len(listed) == others:
            for state, count in self.db.conn.execute(
                # The states named, not "not live": then the (state, start_at) index alone answers the count.
                f"SELECT state, COUNT(*) FROM visits WHERE state IN ({_NOT_LIVE}) AND start_at >= ? AND start_at < ?"
                " AND drill = 0 GROUP BY state", [ts(start), ts(end)],
            ):
                rest[state] = count
            for row in listed:
                rest[row.state.value] -= 1
        return live + listed, {state: n for state, n in rest.items() if n}

    def awaiting_decision_of(self, user: str) -> list[Awaiting]:
        """Requested visits `user` has not decided on, with their open slots (in start order); the approvals
        of all of them in one query."""
        rows = self.db.conn.execute(
            "SELECT id, requester, companions, start_at, slots FROM visits WHERE state = 'requested' AND NOT EXISTS"
            " (SELECT 1 FROM approvals WHERE approvals.visit_id = visits.id AND approvals.approver = ?) ORDER BY start_at, id",
            [user],
        ).fetchall()
        filled: dict[int, set[str]] = {}
        for visit_id, slot in self.db.conn.execute(
            "SELECT visit_id, slot FROM approvals WHERE visit_id IN (SELECT id FROM visits WHERE state = 'requested')"
        ):
            filled.setdefault(visit_id, set()).add(slot)
        # Like the board's rows, each distinct (row, slots filled) is converted once: the head re-reads hundreds.
        cache = _AWAITING
        if len(cache) > _BOARD_ROWS_MAX:
            cache.clear()
        waiting = []
        for raw in rows:
            key = (*raw, frozenset(filled.get(raw[0], ())))
            found = cache.get(key)
            if found is None:
                i, req, comp, start_s, slots = raw
                found = cache[key] = Awaiting(i, req, (req, *json.loads(comp)), dt(start_s),  # type: ignore[arg-type]
                                              tuple(s for s in _slots(slots) if s.name not in key[-1]))
            waiting.append(found)
        return waiting

    def visits_by_id(self, ids: list[int]) -> dict[int, Visit]:
        """Visits by id, their decisions read in one query (the sweep's due batch)."""
        marks = ", ".join("?" * len(ids))
        decisions: dict[int, list[Decision]] = {i: [] for i in ids}
        for visit_id, slot, approver, approved, reason, at in self.db.conn.execute(
            f"SELECT visit_id, slot, approver, approved, reason, decided_at FROM approvals WHERE visit_id IN ({marks})"
            " ORDER BY visit_id, decided_at, rowid", ids,
        ):
            decisions[visit_id].append(Decision(slot, approver, bool(approved), dt(at), reason))  # type: ignore[arg-type]
        cursor = self.db.conn.execute(f"SELECT * FROM visits WHERE id IN ({marks})", ids)
        cols = [c[0] for c in cursor.description]
        found = (dict(zip(cols, row)) for row in cursor.fetchall())
        return {r["id"]: self._visit(r, tuple(decisions[r["id"]])) for r in found}

    def _visit(self, r: dict[str, Any], decisions: tuple[Decision, ...] | None = None) -> Visit:
        if decisions is None:
            decisions = tuple(
                Decision(slot, approver, bool(approved), dt(at), reason)  # type: ignore[arg-type]
                for slot, approver, approved, reason, at in self.db.conn.execute(
                    "SELECT slot, approver, approved, reason, decided_at FROM approvals WHERE visit_id = ? ORDER BY decided_at, rowid",
                    [r["id"]],
                )
            )
        a = json.loads(r["assessment"])
        assessment = RiskAssessment(
            level=a["level"],
            refusal=None,
            companion_reasons=tuple(a["companion_reasons"]),
            reminders=tuple(a["reminders"]),
            head_reasons=tuple(a["head_reasons"]),
            concerns=tuple(a["concerns"]),
        )
        return Visit(
            id=r["id"],
            requester=r["requester"],
            state=State(r["state"]),
            details=VisitDetails.model_validate_json(r["details"]),
            answers=RiskAnswers.model_validate_json(r["answers"]),
            assessment=assessment,
            slots=_slots(r["slots"]),
            created_at=dt(r["created_at"]),  # type: ignore[arg-type]
            start_at=dt(r["start_at"]),  # type: ignore[arg-type]
            decisions=decisions,
            departed_at=dt(r["departed_at"]),
            expected_return=dt(r["expected_return"]),
            returned_at=dt(r["returned_at"]),
            returned_home=bool(r["returned_home"]),
            ladder=_ladder(r["ladder"]),
            watch=watch_from_json(r["watch"]),
            round_lead=r["round_lead"],
            round_pos=r["round_pos"],
            drill=bool(r["drill"]),
        )

    # Register ---------------------------------------------------------------

    def register_for(self, address: str, pupil_ref: str) -> list[RegisterEntry]:
        """Active register flags on this address or family."""
        # Flags set before postcodes were read keep their old key: both forms are looked up.
        rows = self.db.conn.execute(
            "SELECT flag, reason, author FROM register WHERE cleared_at IS NULL AND (address_key IN (?, ?) OR family_key IN (?, ?))",
            [address_key(address), legacy_address_key(address), family_key(pupil_ref), re.sub(r"\s+", "", pupil_ref.upper())],
        ).fetchall()
        return [RegisterEntry(Flag(flag), reason, author) for flag, reason, author in rows]

    def add_flag(self, flag: Flag, reason: str, author: str, now: datetime, address: str | None = None, pupil_ref: str | None = None) -> int:
        """Flag an address or family on the register."""
        cursor = self.db.conn.execute(
            "INSERT INTO register (address_key, family_key, flag, reason, author, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [address_key(address) if address else None, family_key(pupil_ref) if pupil_ref else None, flag.value, reason, author, ts(now)],
        )
        return int(cursor.lastrowid or 0)

    # Audit ------------------------------------------------------------------

    def audit(self, actor: str, action: str, now: datetime, visit_id: int | None = None, **detail: Any) -> None:
        """Append who did what, when, to which visit (no personal details in `detail`)."""
        self.db.conn.execute(
            "INSERT INTO audit (at, actor, visit_id, action, detail) VALUES (?, ?, ?, ?, ?)",
            [ts(now), actor, visit_id, action, json.dumps(detail, default=str)],
        )

    def audit_trail(self, visit_id: int) -> list[dict[str, Any]]:
        """Every audit event of a visit, oldest first."""
        rows = self.db.conn.execute(
            "SELECT at, actor, action, detail FROM audit WHERE visit_id = ? ORDER BY id", [visit_id]
        ).fetchall()
        return [{"at": dt(at), "actor": actor, "action": action, **json.loads(detail)} for at, actor, action, detail in rows]

    # Outbox -----------------------------------------------------------------

    def send(self, messages: list[Message] | tuple[Message, ...], now: datetime, visit_id: int | None = None) -> int:
        """Queue messages in this transaction; a key already queued is not queued again."""
        queued = 0
        for message in messages:
            cursor = self.db.conn.execute(
                "INSERT OR IGNORE INTO outbox (key, visit_id, target, payload, created_at, next_attempt_at, alert)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [message.key, visit_id, message.to, message_to_json(message), ts(now), ts(now), int(is_alert_key(message.key))],
            )
            queued += cursor.rowcount
        return queued

    def due_messages(self, now: datetime, limit: int = 100) -> list[tuple[int, int, Message]]:
        """(id, attempts, message) of queued messages whose time has come, oldest first."""
        return [(d.id, d.attempts, d.message) for d in self.deliveries_due(now, limit)]

    def deliveries_due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Queued messages whose time has come, oldest first, each destination's in order."""
        rows = self.db.conn.execute(
            f"SELECT id, attempts, payload, alert, status, first_attempt_at, visit_id FROM outbox AS o"
            f" WHERE status IN {UNDELIVERED} AND next_attempt_at <= ?"
            # An earlier message to the same destination still waiting holds this one back (order),
            # except that a waiting non-alert (e.g. an hour's Retry-After) never holds back an alert.
            f" AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.target = o.target AND e.status IN {UNDELIVERED}"
            " AND e.id < o.id AND e.next_attempt_at > ? AND (e.alert = 1 OR o.alert = 0)) ORDER BY id LIMIT ?",
            [ts(now), ts(now), limit],
        ).fetchall()
        return [
            Delivery(row_id, attempts, message_from_json(payload), bool(alert), status == "sending", dt(first), visit_id)
            for row_id, attempts, payload, alert, status, first, visit_id in rows
        ]

    def mark_sent_key(self, key: str, now: datetime, ref: str | None, channel: str, message_ts: str) -> None:
        """A queued message already delivered another way (sent directly while the database was read-only)."""
        row = self.db.conn.execute("SELECT id FROM outbox WHERE key = ? AND status = 'pending'", [key]).fetchone()
        if row is not None:
            self.mark_sent(row[0], now, ref, channel, message_ts)

    def mark_sent(self, row_id: int, now: datetime, ref: str | None, channel: str, message_ts: str) -> None:
        """Record a delivery, and where the message lives if later messages will replace it."""
        self.db.conn.execute("UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?", [ts(now), row_id])
        if ref:
            self.db.conn.execute("INSERT OR REPLACE INTO message_refs (ref, channel, ts) VALUES (?, ?, ?)", [ref, channel, message_ts])

    def retry_later(self, row_id: int, at: datetime, error: str) -> None:
        """A delivery failed for now; try again at `at`."""
        self.db.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?", [ts(at), error, row_id]
        )

    def mark_failed(self, row_id: int, error: str) -> None:
        """A delivery that can never succeed as addressed."""
        self.db.conn.execute("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?", [error, row_id])

    def message_ref(self, ref: str) -> tuple[str, str] | None:
        """(channel, ts) of a delivered message named `ref`."""
        row = self.db.conn.execute("SELECT channel, ts FROM message_refs WHERE ref = ?", [ref]).fetchone()
        return None if row is None else (row[0], row[1])

    def outbox_health(self, now: datetime, late_after_s: float, failed_within_s: float = 86400.0) -> dict[str, int]:
        """Counts the health check reports: queued, late (queued too long) and failed (in the last day) messages."""
        pending, late, failed = self.db.conn.execute(
            f"SELECT COALESCE(SUM(status IN {UNDELIVERED}), 0), COALESCE(SUM(status IN {UNDELIVERED} AND created_at < ?), 0),"
            " COALESCE(SUM(status = 'failed' AND created_at > ?), 0) FROM outbox",
            [ts(now) - late_after_s, ts(now) - failed_within_s],
        ).fetchone()
        return {"queued": pending, "late": late, "failed": failed}

    # Alert delivery ----------------------------------------------------------

    def mark_in_flight(self, row_id: int, now: datetime) -> None:
        """An alert is about to be posted: after a crash, look for it in Slack before posting it again."""
        self.db.conn.execute(
            "UPDATE outbox SET status = 'sending', first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?", [ts(now), row_id]
        )

    def defer(self, row_id: int, at: datetime, error: str, in_flight: bool = False, refused: bool = False) -> None:
        """A delivery did not happen (or may have): try again at `at`; `refused` sends an alert's fallback copies now."""
        self.db.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
            " status = ?, refused = MAX(refused, ?) WHERE id = ? AND status IN " + UNDELIVERED,
            [ts(at), error, "sending" if in_flight else "pending", int(refused), row_id],
        )

    def mark_gone(self, row_id: int, error: str) -> None:
        """The message an update would rewrite was deleted by a person: nothing to deliver, nothing failed."""
        self.db.conn.execute("UPDATE outbox SET status = 'gone', attempts = attempts + 1, last_error = ? WHERE id = ?", [error, row_id])

    def supersede_finished(self, now: datetime) -> list[tuple[int, int]]:
        """Undelivered alerts about visits now over (an emergency's only once a responder confirmed safe) are
        dropped as 'superseded', each with an audit event; returns (outbox id, visit id) of each."""
        rows = self.finished_alerts()
        for row_id, visit_id in rows:
            self.db.conn.execute("UPDATE outbox SET status = 'superseded' WHERE id = ?", [row_id])
            self.audit("visitsafe", "alert_superseded", now, visit_id, outbox=row_id)
        return rows

    def finished_alerts(self) -> list[tuple[int, int]]:
        """(outbox id, visit id) of undelivered alerts about visits now over (an emergency's only once confirmed safe)."""
        return [(row_id, visit_id) for row_id, visit_id in self.db.conn.execute(
            f"SELECT o.id, o.visit_id FROM outbox AS o JOIN visits AS v ON v.id = o.visit_id"
            f" WHERE o.alert = 1 AND o.status IN {UNDELIVERED} AND json_extract(o.payload, '$.replaces') IS NULL"
            " AND v.state IN ('returned', 'closed')"
            " AND (json_extract(v.watch, '$.safe_by') IS NOT NULL OR o.key NOT LIKE 'alert:%:sos%')"
        )]

    def superseded(self, ref: str) -> bool:
        """Whether the alert named `ref` was dropped as superseded (so an update of it has nothing to rewrite)."""
        return self.db.conn.execute("SELECT 1 FROM outbox WHERE key = ? AND status = 'superseded'", [ref]).fetchone() is not None

    def drop_update_of_superseded(self, row_id: int, now: datetime, visit_id: int | None) -> None:
        """Drop an update whose alert was superseded (never shown, so nothing to rewrite), with an audit event."""
        self.db.conn.execute("UPDATE outbox SET status = 'superseded' WHERE id = ?", [row_id])
        self.audit("visitsafe", "alert_update_dropped", now, visit_id, outbox=row_id)

    def waiting_alerts(self, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Undelivered alerts, oldest first: ids, how long and how often tried, and Slack's last answer (never text)."""
        rows = self.db.conn.execute(
            f"SELECT visit_id, target, created_at, attempts, last_error, refused FROM outbox INDEXED BY outbox_waiting_alerts"
            f" WHERE alert = 1 AND status IN {UNDELIVERED} ORDER BY created_at, id LIMIT ?",
            [limit],
        ).fetchall()
        return [
            {"visit": visit_id, "to": target, "waiting_seconds": round(ts(now) - created, 1),  # type: ignore[operator]
             "attempts": attempts, "last_error": error, "refused": bool(refused)}
            for visit_id, target, created, attempts, error, refused in rows
        ]

    def late_steps(self, before: datetime) -> int:
        """Live visits whose next check-in, tier or repeat should have been handled before `before`."""
        return self.db.conn.execute(
            "SELECT COUNT(*) FROM visits INDEXED BY visits_due WHERE next_due_at IS NOT NULL AND next_due_at < ?", [ts(before)]
        ).fetchone()[0]

    # Heartbeats -------------------------------------------------------------

    def beat(self, name: str, now: datetime) -> None:
        """Record that a loop (the sweep, the dispatcher) is alive."""
        self.db.conn.execute("INSERT OR REPLACE INTO heartbeats (name, at) VALUES (?, ?)", [name, ts(now)])

    def last_beat(self, name: str) -> datetime | None:
        """When a loop last reported in."""
        row = self.db.conn.execute("SELECT at FROM heartbeats WHERE name = ?", [name]).fetchone()
        return None if row is None else dt(row[0])

    # The safety net --------------------------------------------------------

    def due(self, now: datetime, limit: int = 500) -> list[tuple[int, tuple[str, ...]]]:
        """(visit id, visiting team) of live visits whose check-in, tier or repeat has come, most overdue first.

        Only live visits have a next_due_at, so the partial index answers this without scanning them all.
        """
        rows = self.db.conn.execute(DUE_SQL, [ts(now), limit]).fetchall()
        return [(row_id, (requester, *json.loads(companions))) for row_id, requester, companions in rows]

    def earliest_timers_after(self, after: datetime, approved_from: datetime, alerts_queued_after: datetime) -> dict[str, datetime | None]:
        """The earliest moment after `after` of each timer the sweep acts on, from indexes only (for the wake-up).

        "visit": a check-in, tier or repeat (visits_due); "request": an undecided request's start
        (it expires then); "approved": the earliest start, from `approved_from` on, of an approved
        visit not yet started (it expires at the end of its day); "alert": the earliest queue time,
        after `alerts_queued_after`, of an alert still waiting with somewhere to fall back to.
        """
        q = self.db.conn.execute
        visit = q("SELECT MIN(next_due_at) FROM visits INDEXED BY visits_due WHERE next_due_at IS NOT NULL AND next_due_at > ?", [ts(after)])
        request = q("SELECT MIN(start_at) FROM visits WHERE state = 'requested' AND start_at > ?", [ts(after)])
        approved = q("SELECT MIN(start_at) FROM visits WHERE state = 'approved' AND start_at >= ?", [ts(approved_from)])
        alert = q(
            "SELECT MIN(created_at) FROM outbox WHERE alert = 1 AND status IN ('pending', 'sending')"
            " AND created_at > ? AND fell_back = 0 AND json_array_length(payload, '$.fallback') > 0",
            [ts(alerts_queued_after)],
        )
        return {name: dt(cursor.fetchone()[0]) for name, cursor in (("visit", visit), ("request", request), ("approved", approved), ("alert", alert))}

    def earliest_after_visit_timers_after(self, after: datetime) -> list[datetime]:
        """The earliest moment after `after` of each after-the-visit timer the sweep acts on, from indexes only (for the
        wake-up): an outcome reminder with no outcome given, a CPOMS reminder, a CPOMS deadline, a referral's follow-up."""
        q = self.db.conn.execute
        found = [
            q("SELECT remind_at FROM outcome_asks INDEXED BY outcome_asks_due WHERE reminded_at IS NULL AND remind_at > ?"
              " AND NOT EXISTS (SELECT 1 FROM outcomes WHERE outcomes.visit_id = outcome_asks.visit_id) ORDER BY remind_at LIMIT 1",
              [ts(after)]).fetchone(),
            q("SELECT MIN(remind_at) FROM records INDEXED BY records_open WHERE recorded_at IS NULL AND reminded_at IS NULL"
              " AND remind_at > ?", [ts(after)]).fetchone(),
            q("SELECT MIN(due_at) FROM records INDEXED BY records_escalation WHERE recorded_at IS NULL AND escalated_at IS NULL"
              " AND due_at > ?", [ts(after)]).fetchone(),
            q("SELECT MIN(follow_up_on) FROM referrals INDEXED BY referrals_follow_up WHERE follow_up_reminded_at IS NULL"
              " AND follow_up_on > ?", [ts(after)]).fetchone(),
        ]
        return [moment for row in found if row is not None and (moment := dt(row[0])) is not None]

    def timers_due_between(self, after: datetime, before: datetime) -> int:
        """Check-ins, tiers, repeats and request expiries that fell due after `after` and before `before` and are not handled yet."""
        visits = self.db.conn.execute(
            "SELECT COUNT(*) FROM visits INDEXED BY visits_due WHERE next_due_at IS NOT NULL AND next_due_at > ? AND next_due_at < ?",
            [ts(after), ts(before)],
        ).fetchone()[0]
        requests = self.db.conn.execute(
            "SELECT COUNT(*) FROM visits WHERE state = 'requested' AND start_at > ? AND start_at < ?", [ts(after), ts(before)]
        ).fetchone()[0]
        return visits + requests

    def live_visit_of(self, user: str) -> Visit | None:
        """The visit a member of staff is out on now, as visitor or companion."""
        # Narrowed on the small index of live visits (it holds requester and companions), then read in full.
        live = self.visits_where(
            # A drill is nobody's real visit: /sos, /back or a check-in during one acts as if it were not there.
            "id IN (SELECT id FROM visits INDEXED BY visits_live WHERE state IN ('out', 'overdue', 'emergency')"
            " AND drill = 0 AND (requester = ? OR companions LIKE ?))",
            [user, f'%"{user}"%'],
            order="departed_at DESC",
        )
        # A team signed back in during an emergency is not out any more as far as they can see.
        return next((v for v in live if user in v.team and not signed_in_during_emergency(v)), None)

    def to_purge(self, finished_before: datetime, limit: int = 200) -> list[Visit]:
        """Finished visits last changed before the cutoff whose personal details are still held."""
        # The partial index holds only finished, unpurged visits: a tick never scans the years of history.
        cursor = self.db.conn.execute(
            "SELECT id FROM visits INDEXED BY visits_to_purge WHERE purged_at IS NULL"
            " AND state IN ('declined', 'cancelled', 'expired', 'returned', 'closed') AND updated_at < ?"
            " ORDER BY updated_at LIMIT ?",
            [ts(finished_before), limit],
        )
        return [visit for (visit_id,) in cursor.fetchall() if (visit := self.visit(visit_id)) is not None]

    def unstarted_before(self, day_start: datetime) -> list[Visit]:
        """Approved visits planned before `day_start` that nobody signed out for (a round still out keeps its rest)."""
        return self.visits_where(
            "state = 'approved' AND start_at < ? AND (round_lead IS NULL OR NOT EXISTS (SELECT 1 FROM visits AS live"
            " WHERE live.round_lead = visits.round_lead AND live.state IN ('out', 'overdue', 'emergency')))",
            [ts(day_start)],
        )

    def purge_unlinked_messages(self, sent_before: datetime) -> int:
        """Drop delivered or failed messages tied to no visit (an SOS with no visit out), and where they live."""
        rows = self.db.conn.execute(
            "SELECT id, json_extract(payload, '$.ref') FROM outbox WHERE visit_id IS NULL AND status != 'pending' AND created_at < ?",
            [ts(sent_before)],
        ).fetchall()
        for row_id, ref in rows:
            if ref:
                self.db.conn.execute("DELETE FROM message_refs WHERE ref = ? OR ref LIKE ?", [ref, f"{ref}:fallback:%"])
            self.db.conn.execute("DELETE FROM outbox WHERE id = ?", [row_id])
        return len(rows)

    def save_purged(self, visit: Visit, now: datetime) -> None:
        """Write a purged visit, and drop the copies of its messages (they quote its details)."""
        row = _visit_row(visit, now, self.policy)
        # The finishing time stays what it was: purging is not an event in the visit's life.
        row["updated_at"] = self.db.conn.execute("SELECT updated_at FROM visits WHERE id = ?", [visit.id]).fetchone()[0]
        self.db.conn.execute(
            f"UPDATE visits SET {', '.join(f'{k} = ?' for k in row)}, purged_at = ? WHERE id = ?",
            [*row.values(), ts(now), visit.id],
        )
        for d in visit.decisions:
            self.db.conn.execute("UPDATE approvals SET reason = ? WHERE visit_id = ? AND slot = ?", [d.reason, visit.id, d.slot])
        self.db.conn.execute("DELETE FROM outbox WHERE visit_id = ? AND status NOT IN " + UNDELIVERED, [visit.id])
        self.db.conn.execute(
            "DELETE FROM message_refs WHERE ref LIKE ? OR ref LIKE ? OR ref LIKE ? OR ref = ?",
            [f"approval:{visit.id}:%", f"alert:{visit.id}:%", f"checkin:{visit.id}:%", f"request:{visit.id}"],
        )

    def rest_of_round(self, visit: Visit) -> list[Visit]:
        """The visits of a round still to come after this one, in order."""
        if visit.round_lead is None:
            return []
        return self.visits_where(
            "round_lead = ? AND round_pos > ? AND state = 'approved'", [visit.round_lead, visit.round_pos], order="round_pos"
        )

    def alert_refs(self, visit_id: int) -> list[tuple[str, str]]:
        """(ref, destination) of every alert message sent or queued for a visit."""
        return [
            (ref, target)
            for ref, target in self.db.conn.execute(
                "SELECT json_extract(payload, '$.ref'), target FROM outbox"
                " WHERE visit_id = ? AND json_extract(payload, '$.ref') LIKE 'alert:%' ORDER BY id",
                [visit_id],
            )
        ]

    def undelivered_alerts(self, queued_before: datetime) -> list[tuple[int, int | None, Message]]:
        """Alerts with somewhere else to go that were refused, or waited since `queued_before`, and have not fallen back yet."""
        rows = self.db.conn.execute(
            "SELECT id, visit_id, payload FROM outbox WHERE fell_back = 0 AND json_array_length(payload, '$.fallback') > 0"
            " AND status IN ('pending', 'sending', 'failed') AND (status = 'failed' OR refused = 1 OR created_at <= ?) ORDER BY id",
            [ts(queued_before)],
        ).fetchall()
        return [(row_id, visit_id, message_from_json(payload)) for row_id, visit_id, payload in rows]

    def mark_fell_back(self, row_id: int) -> None:
        """An alert's fallback copies are queued; never queue them again."""
        self.db.conn.execute("UPDATE outbox SET fell_back = 1 WHERE id = ?", [row_id])

    # Text messages (SMS, email) ----------------------------------------------

    def stand_by(self, messages: list[Message], now: datetime, visit_id: int) -> int:
        """Queue alerts that wait on standby: sent only if arm_texts() finds their tier not delivered or not acknowledged."""
        queued = 0
        for message in messages:
            queued += self.db.conn.execute(
                "INSERT OR IGNORE INTO outbox (key, visit_id, target, payload, created_at, next_attempt_at, alert, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, 'standby')",
                [message.key, visit_id, message.to, message_to_json(message), ts(now), ts(now)],
            ).rowcount
        return queued

    def arm_texts(self, now: datetime, undelivered_before: datetime, unacknowledged_before: datetime | None) -> list[tuple[int, int, str]]:
        """Standby texts of live visits whose tier has a chat alert refused or waiting since `undelivered_before`, or that
        nobody has acknowledged since it fired and before `unacknowledged_before`: queued now. (id, visit id, why) each."""
        # A drill's standby texts go by its own compressed times and its drill button (storage/drills.py).
        rows = self.db.conn.execute(
            "SELECT s.id, s.visit_id, s.created_at, s.key, json_extract(v.watch, '$.ack_at') FROM outbox AS s"
            " JOIN visits AS v ON v.id = s.visit_id WHERE s.status = 'standby' AND v.state NOT IN ('returned', 'closed') AND v.drill = 0"
        ).fetchall()
        armed = []
        for row_id, visit_id, created, key, ack_at in rows:
            why = None
            if self.chat_undelivered(visit_id, standby_group(key), created, undelivered_before):
                why = "chat_undelivered"
            if why is None and unacknowledged_before is not None and created <= ts(unacknowledged_before) and (ack_at is None or ack_at < created):
                why = "unacknowledged"
            if why is not None:
                self.arm_standby(row_id, now, why)
                armed.append((row_id, visit_id, why))
        return armed

    def chat_undelivered(self, visit_id: int, group: str, created: float, undelivered_before: datetime) -> bool:
        """Whether a standby text queued at `created` is due because its tier's chat alerts (keys starting `group`)
        were refused, or have waited since `undelivered_before`."""
        if created <= ts(undelivered_before) or self._refused_in(visit_id, group):
            return self._waiting_in(visit_id, group, ts(undelivered_before))
        return False

    def arm_standby(self, row_id: int, now: datetime, why: str) -> None:
        """A standby text is queued to go now (once: only while it is still on standby)."""
        self.db.conn.execute(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ? WHERE id = ? AND status = 'standby'",
            [ts(now), f"armed: {why}", row_id],
        )

    def _chat_alerts_in(self, visit_id: int, group: str, extra: str, params: list[Any]) -> bool:
        return self.db.conn.execute(
            f"SELECT 1 FROM outbox WHERE visit_id = ? AND alert = 1 AND status IN {UNDELIVERED} AND substr(key, 1, ?) = ?"
            " AND target NOT LIKE 'sms:%' AND target NOT LIKE 'email:%' AND " + extra + " LIMIT 1",
            [visit_id, len(group), group, *params],
        ).fetchone() is not None

    def _waiting_in(self, visit_id: int, group: str, before: float) -> bool:
        return self._chat_alerts_in(visit_id, group, "(created_at <= ? OR refused = 1)", [before])

    def _refused_in(self, visit_id: int, group: str) -> bool:
        return self._chat_alerts_in(visit_id, group, "refused = 1", [])

    def note_waiting_alerts(self, visit_id: int, note: str, exclude: list[str] | tuple[str, ...] = ()) -> int:
        """Add a note to every chat alert of a visit still waiting to be delivered (e.g. it has gone by SMS meanwhile),
        except those to the destinations in `exclude`."""
        return self.db.conn.execute(
            f"UPDATE outbox SET payload = json_insert(payload, '$.notes[#]', ?) WHERE visit_id = ? AND alert = 1"
            f" AND status IN {UNDELIVERED} AND target NOT LIKE 'sms:%' AND target NOT LIKE 'email:%'"
            " AND json_extract(payload, '$.replaces') IS NULL AND target NOT IN (SELECT value FROM json_each(?))",
            [note, visit_id, json.dumps(list(exclude))],
        ).rowcount

    def delivered_chat_alerts(self, visit_id: int, exclude: list[str] | tuple[str, ...] = ()) -> list[tuple[str, Message]]:
        """(ref, how it reads now: its last update queued, else itself) of each chat alert of a visit already delivered,
        except those to the destinations in `exclude`."""
        rows = self.db.conn.execute(
            "SELECT json_extract(payload, '$.ref'), payload FROM outbox WHERE visit_id = ? AND alert = 1 AND status = 'sent'"
            " AND json_extract(payload, '$.replaces') IS NULL AND json_extract(payload, '$.ref') IS NOT NULL"
            " AND target NOT LIKE 'sms:%' AND target NOT LIKE 'email:%' AND target NOT IN (SELECT value FROM json_each(?)) ORDER BY id",
            [visit_id, json.dumps(list(exclude))],
        ).fetchall()
        found = []
        for ref, payload in rows:
            latest = self.db.conn.execute(
                "SELECT payload FROM outbox WHERE visit_id = ? AND json_extract(payload, '$.replaces') = ?"
                " AND status NOT IN ('failed', 'superseded', 'gone') ORDER BY id DESC LIMIT 1",
                [visit_id, ref],
            ).fetchone()
            found.append((ref, message_from_json(latest[0] if latest else payload)))
        return found

    def texted_people(self, visit_id: int) -> list[str]:
        """The user ids sent (or maybe sent) an SMS alert about a visit, first texted first."""
        rows = self.db.conn.execute(
            "SELECT substr(target, 5) FROM outbox WHERE visit_id = ? AND alert = 1 AND target LIKE 'sms:%'"
            " AND status IN ('sent', 'sending') GROUP BY target ORDER BY MIN(id)",
            [visit_id],
        ).fetchall()
        return [user for (user,) in rows]

    def refused_not_fallen_back(self) -> bool:
        """Whether an alert with somewhere else to go was refused outright and its fallbacks (and SMS) are not queued yet."""
        return self.db.conn.execute(
            f"SELECT 1 FROM outbox INDEXED BY outbox_waiting_alerts WHERE alert = 1 AND status IN {UNDELIVERED} AND refused = 1"
            " AND fell_back = 0 AND json_array_length(payload, '$.fallback') > 0 LIMIT 1"
        ).fetchone() is not None

    def earliest_standby_after(self, created_after: datetime, chat_waiting: bool) -> datetime | None:
        """The earliest queue time, after `created_after`, of a text on standby for a live visit (for the wake-up):
        with `chat_waiting`, of those whose visit has a chat alert waiting; else of those nobody acknowledged since."""
        if chat_waiting:
            which = (
                f"EXISTS (SELECT 1 FROM outbox AS c WHERE c.visit_id = s.visit_id AND c.alert = 1 AND c.status IN {UNDELIVERED}"
                " AND c.target NOT LIKE 'sms:%' AND c.target NOT LIKE 'email:%')"
            )
        else:
            which = "(json_extract(v.watch, '$.ack_at') IS NULL OR json_extract(v.watch, '$.ack_at') < s.created_at)"
        row = self.db.conn.execute(
            "SELECT MIN(s.created_at) FROM outbox AS s INDEXED BY outbox_standby JOIN visits AS v ON v.id = s.visit_id"
            f" WHERE s.status = 'standby' AND s.created_at > ? AND v.state NOT IN ('returned', 'closed') AND {which}",
            [ts(created_after)],
        ).fetchone()
        return dt(row[0])

    def set_duress(self, user: str, salt: bytes, digest: bytes, now: datetime) -> None:
        """Store (or replace) a member of staff's duress word hash."""
        self.db.conn.execute(
            "INSERT OR REPLACE INTO duress_words (user, salt, digest, set_at) VALUES (?, ?, ?, ?)", [user, salt, digest, ts(now)]
        )

    def duress_of(self, user: str) -> tuple[bytes, bytes] | None:
        """(salt, digest) of a member of staff's duress word, if set."""
        row = self.db.conn.execute("SELECT salt, digest FROM duress_words WHERE user = ?", [user]).fetchone()
        return None if row is None else (row[0], row[1])

    def lease_holder(self, name: str) -> str | None:
        """Who holds a lease now (expired or not)."""
        row = self.db.conn.execute("SELECT holder FROM leases WHERE name = ?", [name]).fetchone()
        return None if row is None else row[0]

    def release_lease(self, name: str, holder: str) -> bool:
        """Give up a lease held by `holder` (e.g. a process known to be dead); True if it was released."""
        return self.db.conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [name, holder]).rowcount == 1

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """Take or renew a lease; True if `holder` has it until now + ttl."""
        self.db.conn.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
            [name, holder, ts(now) + ttl_s, ts(now)],
        )
        row = self.db.conn.execute("SELECT holder FROM leases WHERE name = ?", [name]).fetchone()
        return row is not None and row[0] == holder

    # Clock steps ------------------------------------------------------------

    def add_clock_step(self, wall_before: datetime, wall_after: datetime, holder: str) -> None:
        """Record a wall-clock step one process detected."""
        self.db.conn.execute(
            "INSERT INTO clock_steps (wall_before, wall_after, seconds, holder) VALUES (?, ?, ?, ?)",
            [ts(wall_before), ts(wall_after), ts(wall_after) - ts(wall_before), holder],  # type: ignore[operator]
        )

    def clock_steps_since(self, since: datetime) -> list[dict[str, Any]]:
        """Steps recorded after `since` by the wall clock of the moment (a forward step's row may lie ahead)."""
        rows = self.db.conn.execute(
            "SELECT wall_before, wall_after, seconds FROM clock_steps WHERE wall_after > ? OR wall_before > ? ORDER BY id",
            [ts(since), ts(since)],
        ).fetchall()
        return [{"wall_before": dt(b), "wall_after": dt(a), "seconds": s} for b, a, s in rows]

    def clock_offset(self) -> tuple[float, datetime] | None:
        """(seconds, since) of a forward step not yet put right, if any."""
        row = self.db.conn.execute("SELECT ahead_s, since FROM clock_offset WHERE id = 1").fetchone()
        return None if row is None else (row[0], dt(row[1]))  # type: ignore[return-value]

    def set_clock_offset(self, ahead_s: float | None, since: datetime | None = None) -> None:
        """Remember (or, with None, forget) a forward step not yet put right."""
        self.db.conn.execute("DELETE FROM clock_offset")
        if ahead_s is not None:
            self.db.conn.execute("INSERT INTO clock_offset (id, ahead_s, since) VALUES (1, ?, ?)", [ahead_s, ts(since)])

    def clamp_after_backward_step(self, now: datetime, back_s: float, max_retry_wait_s: float, lease_ttl_s: float) -> int:
        """After the clock stepped back by `back_s`: times no write could have set by this clock (a retry or a
        lease further ahead than its longest wait, a queued message created in the future) move back by the
        step, and never stay beyond that longest wait; returns how many rows moved."""
        now_s = ts(now)
        assert now_s is not None
        moved = self.db.conn.execute(
            f"UPDATE outbox SET next_attempt_at = MIN(next_attempt_at - ?, ?) WHERE status IN {UNDELIVERED} AND next_attempt_at > ?",
            [back_s, now_s + max_retry_wait_s, now_s + max_retry_wait_s],
        ).rowcount
        # The delivery fallback counts from created_at, and a post a dead process may have made is looked
        # for from first_attempt_at: a future one would hold back the first and miss the second.
        for column in ("created_at", "first_attempt_at"):
            moved += self.db.conn.execute(
                f"UPDATE outbox SET {column} = MIN({column} - ?, ?) WHERE status IN {UNDELIVERED} AND {column} > ?", [back_s, now_s, now_s]
            ).rowcount
        moved += self.db.conn.execute(
            "UPDATE leases SET expires_at = MIN(expires_at - ?, ?) WHERE expires_at > ?",
            [back_s, now_s + lease_ttl_s, now_s + lease_ttl_s],
        ).rowcount
        return moved

    # Interactions: /visit drafts and request signatures already seen ------------------

    def add_draft(self, user: str, payload: dict[str, Any], now: datetime) -> int:
        """Keep step 1 of /visit while step 2 is open; the id goes in the view."""
        cur = self.db.conn.execute(
            "INSERT INTO drafts (user, payload, created_at) VALUES (?, ?, ?)", [user, json.dumps(payload), ts(now)]
        )
        return int(cur.lastrowid or 0)

    def draft_of(self, draft_id: int, user: str) -> dict[str, Any] | None:
        """This user's draft (None if missing, purged or someone else's)."""
        row = self.db.conn.execute("SELECT payload FROM drafts WHERE id = ? AND user = ?", [draft_id, user]).fetchone()
        return None if row is None else json.loads(row[0])

    def drop_draft(self, draft_id: int, user: str) -> bool:
        """Remove a used draft; False if it was already gone."""
        return self.db.conn.execute("DELETE FROM drafts WHERE id = ? AND user = ?", [draft_id, user]).rowcount == 1

    def purge_drafts(self, before: datetime) -> int:
        """Drafts left unsubmitted since before `before` are deleted."""
        return self.db.conn.execute("DELETE FROM drafts WHERE created_at < ?", [ts(before)]).rowcount

    def first_sight(self, signature: str, now_s: float, window_s: float) -> bool:
        """Record a request signature; False if it was seen within the window (a replay)."""
        self.db.conn.execute("DELETE FROM seen_signatures WHERE seen_at < ?", [now_s - window_s])
        cur = self.db.conn.execute(
            "INSERT OR IGNORE INTO seen_signatures (signature, seen_at) VALUES (?, ?)", [signature, now_s]
        )
        return cur.rowcount == 1

    # Confidential conversations -----------------------------------------------

    def add_confidential(self, opened_by: str, with_user: str, conversation: str, now: datetime, visit_id: int | None = None) -> int:
        """Record that a confidential conversation exists (ids and a time, never its contents); its id."""
        cursor = self.db.conn.execute(
            "INSERT INTO confidential_conversations (opened_at, opened_by, with_user, visit_id, conversation) VALUES (?, ?, ?, ?, ?)",
            [ts(now), opened_by, with_user, visit_id, conversation],
        )
        return int(cursor.lastrowid or 0)

    def confidential_conversations(self) -> list[dict[str, Any]]:
        """Every recorded confidential conversation, oldest first."""
        rows = self.db.conn.execute(
            "SELECT id, opened_at, opened_by, with_user, visit_id, conversation FROM confidential_conversations ORDER BY id"
        ).fetchall()
        return [
            {"id": i, "opened_at": dt(at), "opened_by": by, "with_user": other, "visit_id": visit_id, "conversation": conversation}
            for i, at, by, other, visit_id, conversation in rows
        ]

    def purge_confidential(self, opened_before: datetime) -> int:
        """Records go with their visit when it is purged; a record tied to no visit after the retention period."""
        return self.db.conn.execute(
            "DELETE FROM confidential_conversations WHERE (visit_id IS NULL AND opened_at < ?)"
            " OR EXISTS (SELECT 1 FROM visits WHERE visits.id = confidential_conversations.visit_id AND visits.purged_at IS NOT NULL)",
            [ts(opened_before)],
        ).rowcount

    # After the visit, the DSL's side (helper "dslside", issue 14 items 2, 4, 5, 6) --------------------------------

    def add_concern(self, visit_id: int | None, kind: str, raised_by: str, now: datetime, detail: dict[str, Any]) -> int:
        """A safeguarding report (kind concern, incident, left_unsafe, allegation); its id."""
        cursor = self.db.conn.execute(
            "INSERT INTO concerns (visit_id, kind, raised_by, raised_at, detail) VALUES (?, ?, ?, ?, ?)",
            [visit_id, kind, raised_by, ts(now), json.dumps(detail)],
        )
        return int(cursor.lastrowid or 0)

    def concerns_of(self, visit_id: int) -> list[dict[str, Any]]:
        """A visit's safeguarding reports, oldest first."""
        rows = self.db.conn.execute(
            "SELECT id, kind, raised_by, raised_at, detail FROM concerns WHERE visit_id = ? ORDER BY raised_at, id", [visit_id]
        ).fetchall()
        return [{"id": i, "kind": k, "raised_by": by, "raised_at": dt(at), "detail": json.loads(d or "{}")} for i, k, by, at, d in rows]

    def add_register_flag(self, flag: Flag, reason: str, author: str, now: datetime, address: str | None, pupil_ref: str | None, label: str) -> int:
        """A flag added through /register, with what it is on as people read it; its id."""
        cursor = self.db.conn.execute(
            "INSERT INTO register (address_key, family_key, flag, reason, author, created_at, label) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [address_key(address) if address else None, family_key(pupil_ref) if pupil_ref else None, flag.value, reason, author, ts(now), label],
        )
        return int(cursor.lastrowid or 0)

    _REGISTER_COLUMNS = "id, flag, label, reason, author, created_at, cleared_at, cleared_by, clear_note, visit_id, address_key, family_key"

    def _register_rows(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(f"SELECT {self._REGISTER_COLUMNS} FROM register WHERE {where} ORDER BY created_at, id", params).fetchall()
        names = [c.strip() for c in self._REGISTER_COLUMNS.split(",")]
        out = [dict(zip(names, row)) for row in rows]
        for row in out:
            row["created_at"], row["cleared_at"] = dt(row["created_at"]), dt(row["cleared_at"])
        return out

    def open_flags(self, flag: Flag | None = None) -> list[dict[str, Any]]:
        """Flags not cleared (of one kind, if given), oldest first."""
        if flag is None:
            return self._register_rows("cleared_at IS NULL", [])
        return self._register_rows("cleared_at IS NULL AND flag = ?", [flag.value])

    def register_entry(self, flag_id: int) -> dict[str, Any] | None:
        """One flag, cleared or not."""
        found = self._register_rows("id = ?", [flag_id])
        return found[0] if found else None

    def register_history(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Every flag, cleared or not, on the same address or family as `entry`, oldest first."""
        return self._register_rows(
            "(address_key IS NOT NULL AND address_key = ?) OR (family_key IS NOT NULL AND family_key = ?)",
            [entry["address_key"], entry["family_key"]],
        )

    def clear_flag(self, flag_id: int, by: str, note: str, now: datetime) -> bool:
        """Clear a flag with a note (kept, with who and when); False if it was already cleared or does not exist."""
        return self.db.conn.execute(
            "UPDATE register SET cleared_at = ?, cleared_by = ?, clear_note = ? WHERE id = ? AND cleared_at IS NULL",
            [ts(now), by, note, flag_id],
        ).rowcount == 1

    def record_status(self, visit_id: int) -> dict[str, Any] | None:
        """The CPOMS recording timer of a visit (written by the recording feature), if any."""
        row = self.db.conn.execute("SELECT owner, due_at, recorded_at, recorded_by FROM records WHERE visit_id = ?", [visit_id]).fetchone()
        return None if row is None else {"owner": row[0], "due_at": dt(row[1]), "recorded_at": dt(row[2]), "recorded_by": row[3]}

    def add_referral(self, visit_id: int, agency: str, referred_on: datetime, referred_by: str, consent: bool,
                     follow_up_on: datetime | None, notes: str | None, now: datetime) -> int:
        """Log a referral to another agency; its id."""
        cursor = self.db.conn.execute(
            "INSERT INTO referrals (visit_id, agency, referred_on, referred_by, consent, follow_up_on, notes, logged_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [visit_id, agency, ts(referred_on), referred_by, int(consent), ts(follow_up_on), notes, ts(now)],
        )
        return int(cursor.lastrowid or 0)

    def referrals_where(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        """Referrals matching a SQL condition, oldest first."""
        rows = self.db.conn.execute(
            "SELECT id, visit_id, agency, referred_on, referred_by, consent, follow_up_on, follow_up_reminded_at, notes, logged_at"
            f" FROM referrals WHERE {where} ORDER BY referred_on, id", params,
        ).fetchall()
        return [
            {"id": i, "visit_id": v, "agency": a, "referred_on": dt(on), "referred_by": by, "consent": bool(c),
             "follow_up_on": dt(f), "reminded_at": dt(r), "notes": n, "logged_at": dt(at)}
            for i, v, a, on, by, c, f, r, n, at in rows
        ]

    def claim_follow_up(self, referral_id: int, now: datetime) -> bool:
        """Mark a referral's follow-up reminder as queued; True only for the one caller that changed it."""
        return self.db.conn.execute(
            "UPDATE referrals SET follow_up_reminded_at = ? WHERE id = ? AND follow_up_reminded_at IS NULL", [ts(now), referral_id]
        ).rowcount == 1

    def add_share(self, visit_id: int, shared_by: str, shared_with: str, shared_at: datetime, why: str, now: datetime) -> int:
        """Log information passed to another member of staff; its id."""
        cursor = self.db.conn.execute(
            "INSERT INTO shares (visit_id, shared_by, shared_with, shared_at, why, logged_at) VALUES (?, ?, ?, ?, ?, ?)",
            [visit_id, shared_by, shared_with, ts(shared_at), why, ts(now)],
        )
        return int(cursor.lastrowid or 0)

    def shares_of(self, visit_id: int) -> list[dict[str, Any]]:
        """Information passed to other staff about a visit, oldest first."""
        rows = self.db.conn.execute(
            "SELECT shared_by, shared_with, shared_at, why FROM shares WHERE visit_id = ? ORDER BY shared_at, id", [visit_id]
        ).fetchall()
        return [{"shared_by": by, "shared_with": to, "shared_at": dt(at), "why": why} for by, to, at, why in rows]

    def last_meeting(self) -> datetime | None:
        """When the last Vulnerable Children's Meeting was held, if ever."""
        row = self.db.conn.execute("SELECT MAX(held_at) FROM meetings").fetchone()
        return dt(row[0]) if row else None

    def add_meeting(self, now: datetime, by: str) -> int:
        """A Vulnerable Children's Meeting held now: the next period starts."""
        return int(self.db.conn.execute("INSERT INTO meetings (held_at, marked_by) VALUES (?, ?)", [ts(now), by]).lastrowid or 0)

    def concerns_since(self, since: datetime | None, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        """Safeguarding reports of these kinds raised after `since` (all, if None), drills left out, with the family."""
        marks = ", ".join("?" * len(kinds))
        rows = self.db.conn.execute(
            f"SELECT c.id, c.visit_id, c.kind, c.raised_by, c.raised_at, json_extract(v.details, '$.pupil_ref') FROM concerns AS c"
            f" LEFT JOIN visits AS v ON v.id = c.visit_id WHERE c.kind IN ({marks}) AND c.raised_at > ? AND COALESCE(v.drill, 0) = 0"
            " ORDER BY c.raised_at, c.id",
            [*kinds, ts(since) if since else -1.0],
        ).fetchall()
        return [{"id": i, "visit_id": v, "kind": k, "raised_by": by, "raised_at": dt(at), "pupil_ref": ref} for i, v, k, by, at, ref in rows]

    # Exports, the calendar, the governors' report and retention of the back half of a visit (helper "exports") --

    def visits_made_between(self, start: datetime, end: datetime) -> list[Visit]:
        """Visits that went out (drills left out), planned to start in [start, end), in start order."""
        return self.visits_where("departed_at IS NOT NULL AND drill = 0 AND start_at >= ? AND start_at < ?", [ts(start), ts(end)], order="start_at, id")

    def visits_made_count(self, start: datetime, end: datetime) -> int:
        """How many visits went out (drills left out), planned to start in [start, end): answered from the start index."""
        return int(self.db.conn.execute(
            "SELECT COUNT(*) FROM visits WHERE departed_at IS NOT NULL AND drill = 0 AND start_at >= ? AND start_at < ?", [ts(start), ts(end)]
        ).fetchone()[0])

    def return_confirmations(self, visit_ids: list[int]) -> dict[int, str]:
        """Who confirmed each visit's return: the responder who confirmed it safe, else who signed back."""
        found: dict[int, str] = {}
        marks = ", ".join("?" * len(visit_ids))
        for visit_id, actor, action in self.db.conn.execute(
            f"SELECT visit_id, actor, action FROM audit WHERE visit_id IN ({marks})"
            " AND action IN ('back', 'back_home', 'back_during_emergency', 'confirmed_safe') ORDER BY id", visit_ids,
        ):
            if action == "confirmed_safe" or visit_id not in found:
                found[visit_id] = actor
        return found

    def calendar_visits(self, since: datetime) -> list[tuple[Visit, datetime]]:
        """Approved, live and returned visits planned from `since` on (drills left out), each with when it last changed."""
        visits = self.visits_where(
            "drill = 0 AND start_at >= ? AND state IN ('approved', 'out', 'overdue', 'emergency', 'returned', 'closed')",
            [ts(since)], order="start_at, id",
        )
        changed = dict(self.db.conn.execute(
            f"SELECT id, updated_at FROM visits WHERE id IN ({', '.join('?' * len(visits))})", [v.id for v in visits]
        )) if visits else {}
        return [(v, dt(changed[v.id])) for v in visits]  # type: ignore[misc]

    def report_counts(self, start: datetime, end: datetime) -> dict[str, Any]:
        """What the governors' report counts of visits planned in [start, end), drills never: no personal data."""
        q = self.db.conn.execute
        span = [ts(start), ts(end)]
        real = "drill = 0 AND start_at >= ? AND start_at < ?"
        made = q(f"SELECT id, json_extract(details, '$.reason'), json_extract(details, '$.visit_type') FROM visits"
                 f" WHERE {real} AND departed_at IS NOT NULL ORDER BY id", span).fetchall()
        ids = [row[0] for row in made]
        in_ids = f"SELECT id FROM visits WHERE {real} AND departed_at IS NOT NULL"
        return {
            "requested": q(f"SELECT COUNT(*) FROM visits WHERE {real}", span).fetchone()[0],
            "declined": q(f"SELECT COUNT(*) FROM visits WHERE {real} AND state = 'declined'", span).fetchone()[0],
            "made": made,
            "outcomes": [o for (o,) in q(f"SELECT outcome FROM outcomes WHERE visit_id IN ({in_ids})", span)],
            "given": len(q(f"SELECT visit_id FROM outcomes WHERE visit_id IN ({in_ids})", span).fetchall()),
            "ids": ids,
            # Reports raised during or after a visit of the period, and any tied to no visit raised in it.
            "reports": [k for (k,) in q(
                f"SELECT kind FROM concerns WHERE visit_id IN (SELECT id FROM visits WHERE {real})"
                " OR (visit_id IS NULL AND raised_at >= ? AND raised_at < ?)", [*span, *span])],
            "events": [(v, a, at, json.loads(d).get("tier")) for v, a, at, d in q(
                f"SELECT visit_id, action, at, detail FROM audit WHERE visit_id IN ({in_ids})"
                " AND action IN ('tier_sent', 'back', 'back_home', 'checkin', 'extended', 'confirmed_safe', 'back_during_emergency')"
                " ORDER BY at, id", span)],
            "emergencies": q(f"SELECT COUNT(DISTINCT visit_id) FROM audit WHERE visit_id IN ({in_ids}) AND action LIKE 'emergency_%'",
                             span).fetchone()[0],
            "records": q(f"SELECT due_at, recorded_at FROM records WHERE visit_id IN ({in_ids})", span).fetchall(),
        }

    def calendar_token(self, new: bool = False) -> str:
        """The secret in the calendar feed's URL, made once per database (`new`: replaced, the old URL stops working)."""
        if new:
            self.db.conn.execute("DELETE FROM install_settings WHERE name = 'calendar_token'")
        self.db.conn.execute("INSERT OR IGNORE INTO install_settings (name, value) VALUES ('calendar_token', ?)", [uuid.uuid4().hex + uuid.uuid4().hex])
        return str(self.db.conn.execute("SELECT value FROM install_settings WHERE name = 'calendar_token'").fetchone()[0])

    def stored_calendar_token(self) -> str | None:
        """The calendar feed's secret, if one was ever made (read-only: the feed never creates it)."""
        row = self.db.conn.execute("SELECT value FROM install_settings WHERE name = 'calendar_token'").fetchone()
        return None if row is None else str(row[0])

    def add_download(self, token_hash: str, user: str, filename: str, content_type: str, body: bytes, now: datetime, expires: datetime) -> None:
        """Keep a file for one person to fetch once; expired ones go now."""
        self.db.conn.execute("DELETE FROM downloads WHERE expires_at < ?", [ts(now)])
        self.db.conn.execute(
            "INSERT INTO downloads (token_hash, user, filename, content_type, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [token_hash, user, filename, content_type, body, ts(now), ts(expires)],
        )

    def take_download(self, token_hash: str, now: datetime) -> tuple[str, str, str, bytes] | None:
        """(user, filename, content type, body) of a file not yet fetched nor expired, deleted as it is taken."""
        self.db.conn.execute("DELETE FROM downloads WHERE expires_at < ?", [ts(now)])
        row = self.db.conn.execute("SELECT user, filename, content_type, body FROM downloads WHERE token_hash = ?", [token_hash]).fetchone()
        if row is None:
            return None
        self.db.conn.execute("DELETE FROM downloads WHERE token_hash = ?", [token_hash])
        return str(row[0]), str(row[1]), str(row[2]), bytes(row[3])

    def purge_after_visit_text(self, before: datetime, now: datetime) -> dict[str, int]:
        """Free text of the back half of a visit older than `before` is replaced; kinds, times and ids stay for the report.

        Concern and incident reports, referral notes, why information was shared, and a cleared register flag's
        reason and clearing note (an open flag keeps its reason: it still stops visits).
        """
        cut, at = ts(before), ts(now)
        done = {
            "concerns": self.db.conn.execute(
                "UPDATE concerns SET detail = '{}', purged_at = ? WHERE purged_at IS NULL AND raised_at < ?", [at, cut]).rowcount,
            "referrals": self.db.conn.execute(
                "UPDATE referrals SET notes = CASE WHEN notes IS NULL THEN NULL ELSE ? END, purged_at = ? WHERE purged_at IS NULL"
                " AND logged_at < ? AND (follow_up_on IS NULL OR follow_up_on < ?)", [PURGED, at, cut, cut]).rowcount,
            "shares": self.db.conn.execute(
                "UPDATE shares SET why = ?, purged_at = ? WHERE purged_at IS NULL AND logged_at < ?", [PURGED, at, cut]).rowcount,
            "register": self.db.conn.execute(
                "UPDATE register SET reason = ?, clear_note = CASE WHEN clear_note IS NULL THEN NULL ELSE ? END, label = NULL,"
                " address_key = NULL, family_key = NULL"
                " WHERE cleared_at IS NOT NULL AND cleared_at < ? AND reason != ?", [PURGED, PURGED, cut, PURGED]).rowcount,
        }
        return {k: v for k, v in done.items() if v}

    # After the visit (issue 14, helper "outcome"): outcomes, their reports, records on CPOMS ---------

    def ask_outcome(self, visit_id: int, visitor: str, now: datetime, remind_at: datetime) -> bool:
        """Remember that a visit's outcome was asked of `visitor` (once per visit); True if newly asked."""
        return self.db.conn.execute(
            "INSERT OR IGNORE INTO outcome_asks (visit_id, visitor, asked_at, remind_at) VALUES (?, ?, ?, ?)",
            [visit_id, visitor, ts(now), ts(remind_at)],
        ).rowcount == 1

    def outcome_ask(self, visit_id: int) -> dict[str, Any] | None:
        """Whom a visit's outcome was asked of, and whether the reminder went."""
        row = self.db.conn.execute("SELECT visitor, asked_at, reminded_at FROM outcome_asks WHERE visit_id = ?", [visit_id]).fetchone()
        return None if row is None else {"visitor": row[0], "asked_at": dt(row[1]), "reminded_at": dt(row[2])}

    def outcome_of(self, visit_id: int) -> dict[str, Any] | None:
        """A visit's outcome, if given."""
        return self._one_with_times("SELECT * FROM outcomes WHERE visit_id = ?", [visit_id])

    def _one_with_times(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        """One row as a dict, its `*_at` columns as datetimes (None if no row)."""
        cursor = self.db.conn.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        found = dict(zip([c[0] for c in cursor.description], row))
        return {k: dt(v) if k.endswith("_at") else v for k, v in found.items()}

    def add_outcome(self, visit_id: int, outcome: str, by: str, now: datetime, card: str | None = None, debrief_offered: bool = False) -> bool:
        """Record a visit's one outcome; False if it already has one (nothing changed)."""
        return self.db.conn.execute(
            "INSERT OR IGNORE INTO outcomes (visit_id, outcome, given_by, given_at, card, debrief_offered_at) VALUES (?, ?, ?, ?, ?, ?)",
            [visit_id, outcome, by, ts(now), card, ts(now) if debrief_offered else None],
        ).rowcount == 1

    def earlier_no_answers(self, visit: Visit) -> list[bool]:
        """The family's no-answers in a row before this visit (newest first), each as its visit's planned flag;
        any other outcome for the family ends the run."""
        key = family_key(visit.details.pupil_ref)
        run: list[bool] = []
        for outcome, pupil_ref, planned in self.db.conn.execute(
            "SELECT o.outcome, json_extract(v.details, '$.pupil_ref'), json_extract(v.details, '$.planned')"
            " FROM outcomes AS o JOIN visits AS v ON v.id = o.visit_id WHERE o.visit_id != ? ORDER BY o.given_at DESC, o.visit_id DESC",
            [visit.id],
        ):
            if family_key(pupil_ref or "") != key:
                continue
            if outcome != "nobody_home":
                break
            run.append(bool(planned))
        return run

    def flag_for_review(self, visit: Visit, reason: str, author: str, now: datetime) -> int:
        """Flag a visit's address and family "under review" on the register, tied to the visit; the flag's id."""
        flag_id = self.add_flag(Flag.under_review, reason, author, now, address=visit.details.address, pupil_ref=visit.details.pupil_ref)
        self.db.conn.execute(
            "UPDATE register SET visit_id = ?, label = ? WHERE id = ?",
            [visit.id, f"{visit.details.pupil_ref}, {visit.details.address}", flag_id],
        )
        return flag_id

    def answer_debrief(self, visit_id: int, answer: str, now: datetime) -> bool:
        """Record the visitor's answer to the debrief offer; False if none was offered or it was answered already."""
        return self.db.conn.execute(
            "UPDATE outcomes SET debrief_answer = ?, debrief_answered_at = ?"
            " WHERE visit_id = ? AND debrief_offered_at IS NOT NULL AND debrief_answer IS NULL",
            [answer, ts(now), visit_id],
        ).rowcount == 1

    def open_record(self, visit_id: int, owner: str, remind_at: datetime, due_at: datetime) -> bool:
        """Start a visit's recording timers (once per visit); True if newly started."""
        return self.db.conn.execute(
            "INSERT OR IGNORE INTO records (visit_id, owner, due_at, remind_at) VALUES (?, ?, ?, ?)",
            [visit_id, owner, ts(due_at), ts(remind_at)],
        ).rowcount == 1

    def record_of(self, visit_id: int) -> dict[str, Any] | None:
        """A visit's recording timers and whether (and by whom) it was recorded."""
        return self._one_with_times("SELECT * FROM records WHERE visit_id = ?", [visit_id])

    def mark_recorded(self, visit_id: int, by: str, now: datetime) -> bool:
        """The visit is recorded on CPOMS; False if it was already."""
        return self.db.conn.execute(
            "UPDATE records SET recorded_at = ?, recorded_by = ? WHERE visit_id = ? AND recorded_at IS NULL", [ts(now), by, visit_id]
        ).rowcount == 1

    def claim_outcome_reminders(self, now: datetime, limit: int = 100) -> list[tuple[int, str]]:
        """(visit id, visitor) of outcome reminders due now with no outcome given, each claimed so it is sent once."""
        due = self.db.conn.execute(
            "SELECT visit_id, visitor FROM outcome_asks INDEXED BY outcome_asks_due WHERE reminded_at IS NULL AND remind_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outcomes WHERE outcomes.visit_id = outcome_asks.visit_id) ORDER BY remind_at LIMIT ?",
            [ts(now), limit],
        ).fetchall()
        return [(visit_id, visitor) for visit_id, visitor in due if self.db.conn.execute(
            "UPDATE outcome_asks SET reminded_at = ? WHERE visit_id = ? AND reminded_at IS NULL", [ts(now), visit_id]
        ).rowcount == 1]

    def claim_record_timers(self, now: datetime, column: str, limit: int = 100) -> list[dict[str, Any]]:
        """Unrecorded visits whose reminder (`column` "reminded_at", at remind_at) or DSL alert ("escalated_at", at
        due_at) has come, each claimed so it is sent once."""
        at = {"reminded_at": "remind_at", "escalated_at": "due_at"}[column]
        due = self.db.conn.execute(
            f"SELECT visit_id, owner, due_at FROM records WHERE recorded_at IS NULL AND {column} IS NULL AND {at} <= ? ORDER BY {at} LIMIT ?",
            [ts(now), limit],
        ).fetchall()
        return [
            {"visit_id": visit_id, "owner": owner, "due_at": dt(due_at)}
            for visit_id, owner, due_at in due
            if self.db.conn.execute(f"UPDATE records SET {column} = ? WHERE visit_id = ? AND {column} IS NULL", [ts(now), visit_id]).rowcount == 1
        ]

    def was_queued(self, key: str) -> bool:
        """Whether a message with this outbox key was ever queued (so a later update has something to rewrite)."""
        return self.db.conn.execute("SELECT 1 FROM outbox WHERE key = ?", [key]).fetchone() is not None
