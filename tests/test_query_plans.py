"""Every query on a hot path uses an index: none reads the whole of visits, outbox, approvals or audit.

The hot paths are driven end to end (HOT_PATHS below, the one list of them) with every statement the
bot runs traced; each is then put to SQLite's EXPLAIN QUERY PLAN. A year of history would make a full
table scan cost tens of milliseconds on every command or tick (issue 12).
"""
from __future__ import annotations

import re
from datetime import timedelta

from tests.conftest import DSL, HEAD, OFFICE, REQUESTER
from tests.test_e2e_safety import answer_checkin, at, out_at_ten
from tests.test_e2e_slack import app_home, approval_dm
from tests.test_notify import notify, notify_workspace  # noqa: F401 - the fake Notify fixture

# Tables that grow with every visit (or every safeguarding note) for as long as the records are kept.
BIG_TABLES = ("visits", "outbox", "approvals", "audit", "concerns", "records", "referrals", "drill_messages")


def _sos_acknowledged(ws):
    ws.driver.command(REQUESTER, "/sos", "help")
    [alert] = [m for m in ws.sim.messages("C0SAFE") if "SOS" in m.plain()]
    ws.driver.click(DSL, alert, "I'm handling this")


# Each hot path: what a person does many times a day, or what every tick does.
HOT_PATHS = {
    "request, approve and sign out": out_at_ten,
    "the board": lambda ws: [ws.driver.command(user, "/visits") for user in (OFFICE, HEAD, REQUESTER)],
    "the App Home tab": lambda ws: [app_home(ws, user) for user in (HEAD, REQUESTER)],
    "a check-in answered": lambda ws: (at(ws, 10, 30), answer_checkin(ws), ws.driver.command(REQUESTER, "/checkin")),
    "running late": lambda ws: ws.driver.command(REQUESTER, "/extend", "20m"),
    "overdue: the sweep and the dispatcher": lambda ws: [at(ws, 11, minute) for minute in (6, 21, 36, 50)],
    "an SOS handled": _sos_acknowledged,
    "signing back in": lambda ws: ws.driver.command(REQUESTER, "/back"),
    "the next ticks": lambda ws: [at(ws, 12, minute) for minute in (0, 1)],
}


_NOT_ALIASES = {"where", "join", "left", "inner", "cross", "on", "indexed", "order", "group", "limit", "using", "natural", "set", "values"}


def aliases(sql: str) -> dict[str, str]:
    """Each table alias of `sql` (`FROM outbox AS o`, `JOIN visits v`) and the table it names."""
    return {alias: table for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+AS)?\s+(\w+)", sql, re.I)
            if alias.lower() not in _NOT_ALIASES}


def full_scans(conn, sql: str, partial: set[str]) -> list[str]:
    """The plan lines of `sql` that read a whole big table (a partial index holds only what is live)."""
    found = []
    named = aliases(sql)
    for _, _, _, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall():
        # SQLite names an aliased table by its alias alone ("SCAN o").
        m = re.match(r"SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if m and named.get(m.group(1), m.group(1)) in BIG_TABLES and m.group(2) not in partial:
            found.append(detail)
    return found


def traced(ws, paths) -> dict[str, str]:
    """Every distinct statement (values bound) that running `paths` (name: step) made, with the step that first made it."""
    statements: dict[str, str] = {}
    path = ["start"]
    ws.runtime.store.trace = lambda sql: statements.setdefault(" ".join(sql.split()), path[0])
    ws.runtime.store.db().conn.set_trace_callback(ws.runtime.store.trace)
    try:
        for name, run in paths.items():
            path[0] = name
            run(ws)
    finally:
        ws.runtime.store.trace = None
        ws.runtime.store.db().conn.set_trace_callback(None)
    return statements


def scanning(conn, statements: dict[str, str]) -> list[str]:
    """The statements (with their step) whose plan reads a whole big table."""
    partial = {name for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")}
    offenders = []
    for sql, name in statements.items():
        if not re.match(r"(SELECT|UPDATE|DELETE|INSERT .* SELECT|WITH)\b", sql, re.I) or "sqlite_master" in sql:
            continue
        scans = full_scans(conn, sql, partial)
        if scans:
            offenders.append(f"{name}: {sql[:200]} -> {scans}")
    return offenders


def test_no_hot_query_scans_a_whole_big_table(workspace):
    ws = workspace
    statements = traced(ws, HOT_PATHS)
    assert len(statements) > 50  # the trace saw the hot paths
    offenders = scanning(ws.runtime.store.db().conn, statements)
    assert offenders == [], "\n".join(offenders)


def later(ws, **step):
    """Move the clock on and run one tick (the sweep, then the dispatcher)."""
    ws.clock.set(ws.clock() + timedelta(**step))
    ws.runtime.tick()


def _every_job_has_work(ws):
    """A drill running, a referral's follow-up due, a concern and a record: each tick job has something to read."""
    out_at_ten(ws)
    now = ws.clock()
    with ws.runtime.store.transaction() as tx:
        tx.add_referral(1, "Early Help", now, DSL, True, now, None, now)
        tx.add_concern(1, "welfare", REQUESTER, now, {})
    assert "DRILL #2 started" in ws.driver.command(DSL, "/visitsafe", "drill 60").text.replace("*", "")


# Every job of a tick (commands.sweep.sweep, then the dispatcher), each with work to do and then with none.
SWEEP_TICKS = {
    "set-up": _every_job_has_work,
    "drill tiers, a follow-up, the check-in": lambda ws: [later(ws, seconds=15) for _ in range(4)],
    "overdue: tiers, SMS standing by, then armed": lambda ws: [at(ws, 10, 46), later(ws, minutes=2), later(ws, minutes=15)],
    "the drill's wait over": lambda ws: [later(ws, minutes=30)],
    "back: undelivered alerts superseded": lambda ws: (ws.sim.fail("chat.postMessage", times=3), ws.driver.command(REQUESTER, "/back"),
                                                       later(ws, seconds=1)),
    "nothing to do": lambda ws: [later(ws, minutes=1) for _ in range(2)],
}


def test_every_query_of_a_tick_reads_an_index_whatever_there_is_to_do(tmp_path, clock, notify, monkeypatch):  # noqa: F811
    # The sweep runs every few seconds for as long as the bot runs: a scan of a table that grows with the years
    # (visits, the outbox, the audit, the safeguarding record, the drills' messages) would cost every tick more.
    ws = notify_workspace(tmp_path, clock, notify, monkeypatch, sms_after="5m")
    try:
        statements = traced(ws, SWEEP_TICKS)
        ticks = {sql for sql, step in statements.items() if step != "set-up"}
        # The trace saw every job of the tick: SMS standby, drills, follow-ups, the outbox's supersede check.
        for part in ("status = 'standby'", "FROM drills", "FROM referrals", "'superseded'", "INTO drill_messages", "drill_ended",
                     "follow_up_reminded_at = ", "status = 'pending', next_attempt_at"):
            assert any(part in sql for sql in ticks), part
        offenders = scanning(ws.runtime.store.db().conn, {sql: statements[sql] for sql in ticks})
        assert offenders == [], "\n".join(offenders)
    finally:
        ws.close()


def test_a_persons_visits_are_found_from_their_own_rows_not_every_visit_in_a_state(workspace):
    # Without statistics SQLite answered "this person's approved visits" and "the visit this person is out on"
    # by walking every visit of the school in that state (the state index gives start order for free): at a
    # trust's size every /out, /checkin and /back read hundreds of rows to find one.
    ws = workspace
    statements: list[str] = []
    ws.runtime.store.trace = statements.append
    ws.runtime.store.db().conn.set_trace_callback(ws.runtime.store.trace)
    out_at_ten(ws)
    ws.driver.command(REQUESTER, "/checkin")
    for user in (OFFICE, REQUESTER):
        ws.driver.command(user, "/visits")
    ws.driver.command(REQUESTER, "/back")
    ws.runtime.store.trace = None
    conn = ws.runtime.store.db().conn
    conn.set_trace_callback(None)
    # The trace sees each statement with its values bound.
    by_person = {" ".join(sql.split()) for sql in statements if re.search(r"requester = '", sql) and "FROM visits" in sql}
    assert len(by_person) >= 3  # visits_of, live_visit_of, the member's board
    walks = []
    for sql in by_person:
        plan = [detail for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
        if any("visits_state_start (state=?)" in line for line in plan):
            walks.append(f"{sql[:160]} -> {plan}")
    assert walks == [], "\n".join(walks)


def test_the_boards_live_visits_are_read_from_the_index_of_live_visits(workspace):
    ws = workspace
    statements: list[str] = []
    out_at_ten(ws)
    ws.runtime.store.trace = statements.append
    ws.runtime.store.db().conn.set_trace_callback(ws.runtime.store.trace)
    ws.driver.command(OFFICE, "/visits")
    ws.runtime.store.trace = None
    conn = ws.runtime.store.db().conn
    conn.set_trace_callback(None)
    [live] = [sql for sql in statements if "state IN ('out', 'overdue', 'emergency') AND drill = 0 ORDER BY" in sql]
    plan = [detail for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {live}").fetchall()]
    assert plan == ["SCAN visits USING COVERING INDEX visits_live"]


def test_a_scan_of_an_aliased_table_is_seen(workspace):
    # SQLite's plan names an aliased table by its alias ("SCAN o"): the check must still see a scan of the outbox.
    conn = workspace.runtime.store.db().conn
    assert full_scans(conn, "SELECT o.id FROM outbox AS o JOIN visits v ON v.id = o.visit_id WHERE o.last_error = 'x'", set()) != []
    assert full_scans(conn, "SELECT id FROM outbox WHERE visit_id = 1", set()) == []
