"""Every query on a hot path uses an index: none reads the whole of visits, outbox, approvals or audit.

The hot paths are driven end to end (HOT_PATHS below, the one list of them) with every statement the
bot runs traced; each is then put to SQLite's EXPLAIN QUERY PLAN. A year of history would make a full
table scan cost tens of milliseconds on every command or tick (issue 12).
"""
from __future__ import annotations

import re

from tests.conftest import DSL, HEAD, OFFICE, REQUESTER
from tests.test_e2e_safety import answer_checkin, at, out_at_ten
from tests.test_e2e_slack import app_home, approval_dm

BIG_TABLES = ("visits", "outbox", "approvals", "audit")


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


def full_scans(conn, sql: str, partial: set[str]) -> list[str]:
    """The plan lines of `sql` that read a whole big table (a partial index holds only what is live)."""
    found = []
    for _, _, _, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall():
        m = re.match(r"SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if m and m.group(1) in BIG_TABLES and m.group(2) not in partial:
            found.append(detail)
    return found


def test_no_hot_query_scans_a_whole_big_table(workspace):
    ws = workspace
    statements: dict[str, str] = {}
    path = ["start"]
    ws.runtime.store.trace = lambda sql: statements.setdefault(" ".join(sql.split()), path[0])
    ws.runtime.store.db().conn.set_trace_callback(ws.runtime.store.trace)
    for name, run in HOT_PATHS.items():
        path[0] = name
        run(ws)
    ws.runtime.store.trace = None
    conn = ws.runtime.store.db().conn
    conn.set_trace_callback(None)
    partial = {name for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")}
    offenders = []
    for sql, name in statements.items():
        if not re.match(r"(SELECT|UPDATE|DELETE|INSERT .* SELECT|WITH)\b", sql, re.I) or "sqlite_master" in sql:
            continue
        scans = full_scans(conn, sql, partial)
        if scans:
            offenders.append(f"{name}: {sql[:200]} -> {scans}")
    assert len(statements) > 50  # the trace saw the hot paths
    assert offenders == [], "\n".join(offenders)


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
