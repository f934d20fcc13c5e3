#!/usr/bin/env python
"""`/visits` latency against the visits of the day and against years of history.

For each case a fresh database is seeded (benchmarks/population.py) and the bot runs in its own process as in
production (the real Runtime, its production settings, the sweep every second and the outbox dispatcher);
the simulated Slack has a process of its own. `/visits` is then sent `--samples` times one after another by
the head (who sees every visit and has decisions waiting) and timed end to end over HTTP.

Cases: `--today` sizes (default 50, 300, 1,000, 3,000) with no history, then `--history` sizes (default 0,
10,000, 100,000) with `--history-today` visits today (default 300). Goals: p99 at 3,000 today under 25 ms;
the p99 with the most history under 1.2x the p99 with none.

    python benchmarks/board_scaling.py                        # ~2 min
    python benchmarks/board_scaling.py --today 50 --history 0 100 --samples 5 --json board.json
"""
from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's code, not an installed copy

import population  # noqa: E402
import servers  # noqa: E402
from ack_latency import ChildSlack
from common import HEAD, policy  # noqa: E402  (benchmarks/common.py)
from flows.policy import parse_policy
from load import summary

EXPECT = {"/visits": "Home visits today"}


def one_case(today: int, history: int, samples: int, warmup: int, slack: ChildSlack) -> dict:
    raw = policy(sweep_interval="1s")
    school = parse_policy(raw, "benchmark policy")
    with tempfile.TemporaryDirectory(prefix="visitsafe-board-") as folder:
        db = Path(folder) / "board.db"
        started = time.perf_counter()
        population.seed(db, school, datetime.now(timezone.utc), today=today, history=history)
        seed_s = time.perf_counter() - started
        secret = secrets.token_hex(16)
        bot = servers.bot(db, raw, secret, slack.base_url)
        client = servers.Client(bot.port, secret, servers.Slack(slack.team_id, slack.app_id, slack.base_url), EXPECT)
        for _ in range(warmup):
            client.send("/visits", HEAD)
        answers = [client.send("/visits", HEAD) for _ in range(samples)]
        bot.stop()
    return {"today": today, "history": history, "seed_s": round(seed_s, 1), **summary([a.ms for a in answers]),
            "errors": sum(not a.ok for a in answers), "first_error": next((a.error for a in answers if not a.ok), "")}


def run(args: argparse.Namespace, say) -> dict:  # type: ignore[no-untyped-def]
    slack = ChildSlack()
    cases = []
    try:
        for today in args.today:
            cases.append(one_case(today, 0, args.samples, args.warmup, slack))
            say(f"today {today}: p99 {cases[-1].get('p99_ms')} ms")
        for history in args.history:
            cases.append(one_case(args.history_today, history, args.samples, args.warmup, slack))
            say(f"history {history}: p99 {cases[-1].get('p99_ms')} ms")
    finally:
        slack.stop()
    goals = {}
    biggest = [c for c in cases[: len(args.today)] if c["today"] >= 3000]
    if biggest:
        goals["p99_ms_at_3000_today"] = {"value": biggest[-1]["p99_ms"], "goal": 25.0}
    hist = cases[len(args.today):]
    if len(hist) >= 2:
        goals["history_cost"] = {"value": round(hist[-1]["p99_ms"] / hist[0]["p99_ms"], 2), "goal": 1.2}
    return {"benchmark": "board_scaling", "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
            "options": vars(args) | {"json": str(args.json) if args.json else None}, "cases": cases, "goals": goals}


def table(r: dict) -> str:
    lines = [f"{'today':>6} {'history':>8} {'count':>6} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>6}"]
    for c in r["cases"]:
        lines.append(f"{c['today']:>6} {c['history']:>8} {c['count']:>6} {c['median_ms']:>8.2f} {c['p95_ms']:>8.2f} {c['p99_ms']:>8.2f} {c['max_ms']:>8.2f} {c['errors']:>6}")
    for name, g in r["goals"].items():
        lines.append(f"{name}: {g['value']} (goal < {g['goal']}) {'ok' if g['value'] < g['goal'] else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--today", type=int, nargs="*", default=[50, 300, 1000, 3000], help="visits today, one case each")
    parser.add_argument("--history", type=int, nargs="*", default=[0, 10000, 100000], help="visits of history, one case each")
    parser.add_argument("--history-today", type=int, default=300, help="visits today in the history cases (default 300)")
    parser.add_argument("--samples", type=int, default=100, help="timed /visits per case (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed /visits per case first (default 5)")
    return servers.script(parser, argv, run, table, lambda r: not any(c["errors"] for c in r["cases"])
                          and all(g["value"] < g["goal"] for g in r["goals"].values()))


if __name__ == "__main__":
    sys.exit(main())
