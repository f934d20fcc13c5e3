"""The benchmark scripts still run (tiny sizes; their figures come from full runs, not from here)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "script, args",
    [
        ("sweep_time.py", ["--sizes", "100", "--repeats", "2", "--quiet"]),
        ("ack_latency.py", ["--visits", "10", "--others", "10", "--scaling-samples", "2", "--quiet"]),
        ("load.py", ["--rate", "10", "--duration", "2", "--today", "20", "--history", "50", "--alerts", "1", "--people", "3", "--no-goal", "--quiet"]),
        ("ack_vs_bare.py", ["--samples", "3", "--today", "20", "--warmup", "1", "--no-goal", "--quiet"]),
        ("board_scaling.py", ["--today", "20", "--history", "0", "50", "--history-today", "10", "--samples", "3", "--warmup", "1", "--no-goal", "--quiet"]),
    ],
)
def test_benchmark_script_runs(script, args, tmp_path):
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's code, not an installed copy
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert out.read_text().startswith("{")


def test_the_population_has_requests_waiting_for_the_heads_decision(tmp_path, clock):
    # The board's "waiting for your decision" part was never measured: the requests were written as approved.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import population
        from common import HEAD, policy
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from bot.clock import FixedClock
    from commands.board import today
    from commands.context import Ctx
    from flows.policy import parse_policy
    from storage.store import Store

    school = parse_policy(policy(), "benchmark policy")
    db = tmp_path / "school.db"
    population.seed(db, school, clock(), today=10)
    store = Store(db, school)
    try:
        states = dict(store.read().db.conn.execute("SELECT state, COUNT(*) FROM visits GROUP BY state").fetchall())
        assert states == {"requested": 2, "approved": 2, "out": 2, "returned": 2, "declined": 2}
        text = today(Ctx(store, school, FixedClock(clock())), HEAD).text
        assert "*Waiting for your decision* (2)" in text, text
        # Still to be decided once the run has started: a request whose start has passed expires at the first tick.
        assert all(start > clock().timestamp() for (start,) in store.read().db.conn.execute(
            "SELECT start_at FROM visits WHERE state = 'requested'"))
    finally:
        store.close()
