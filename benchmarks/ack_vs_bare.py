#!/usr/bin/env python
"""VisitSafe's slash-command answers against a bare Bolt app's, measured interleaved in one run.

Three servers, each in its own process, on the same waitress server (bot.serving.Server) and the same Bolt:
VisitSafe as in production (the real Runtime on the system clock, its production settings, the sweep and the
outbox dispatcher running), and two bare Bolt apps whose only listener acks, with the same signing secret and
check: one with Bolt's default `process_before_response=False` (acks from its thread pool, polled every
10 ms), one with `process_before_response=True`. The simulated Slack has its own process too.

VisitSafe's database holds `--today` visits today (default 3,000) and `--history` finished ones, plus one
approved visit for each of `--samples` people. Each person in turn sends `/out 45m`, `/checkin`, `/back`, and
the office `/visits` (which lists every visit today); every request to VisitSafe is followed by the same
command to each bare app, one request at a time, so all three see the same moment of the machine. Times are
end to end over HTTP (new connection, signed POST, response read). Goals: `/out`, `/back`, `/checkin` p99
within 1.5x of the bare app's p99; `/visits` within 3x (judged against the bare app with Bolt's defaults; the
ratio to the bare app with `process_before_response=True` is printed too).

    python benchmarks/ack_vs_bare.py                      # 200 people, 3,000 today, ~1 min
    python benchmarks/ack_vs_bare.py --samples 20 --today 50 --json bare.json
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
from common import OFFICE, policy  # noqa: E402  (benchmarks/common.py)
from flows.policy import parse_policy
from load import summary

EXPECT = {"/out": "You are out on visit", "/checkin": "checked in", "/visits": "Home visits today", "/back": "Welcome back"}
STEPS = ("/out 45m", "/checkin", "/back", "/visits")
GOAL = {"/out": 1.5, "/checkin": 1.5, "/back": 1.5, "/visits": 3.0}
APPS = ("visitsafe", "bare (default)", "bare (process_before_response)")


def run(args: argparse.Namespace, say) -> dict:  # type: ignore[no-untyped-def]
    raw = policy(sweep_interval="1s")
    school = parse_policy(raw, "benchmark policy")
    samples: dict[str, dict[str, list[float]]] = {app: {s.split(" ")[0]: [] for s in STEPS} for app in APPS}
    errors: dict[str, list[str]] = {app: [] for app in APPS}
    with tempfile.TemporaryDirectory(prefix="visitsafe-bare-") as folder:
        db = Path(folder) / "bare.db"
        started = time.perf_counter()
        seeded = population.seed(db, school, datetime.now(timezone.utc), today=args.today, history=args.history, cyclers=args.samples)
        say(f"seeded {population.counts(db, school)} in {time.perf_counter() - started:.1f} s")
        slack = ChildSlack()
        ws = servers.Slack(slack.team_id, slack.app_id, slack.base_url)
        secret = secrets.token_hex(16)
        children = [servers.bot(db, raw, secret, slack.base_url), servers.bare(secret, slack.base_url, False),
                    servers.bare(secret, slack.base_url, True)]
        clients = {app: servers.Client(c.port, secret, ws, EXPECT if app == "visitsafe" else {}) for app, c in zip(APPS, children)}
        for _ in range(args.warmup):
            for client in clients.values():
                client.send("/visits", OFFICE)
        t0 = time.perf_counter()
        for user in seeded["cyclers"]:
            for step in STEPS:
                asker = OFFICE if step == "/visits" else user
                for app, client in clients.items():
                    answer = client.send(step, asker)
                    samples[app][step.split(" ")[0]].append(answer.ms)
                    if not answer.ok:
                        errors[app].append(answer.error)
        timed_s = time.perf_counter() - t0
        reports = [c.stop() for c in children]
        slack.stop()
    result = {app: {cmd: summary(v) for cmd, v in cmds.items()} for app, cmds in samples.items()}
    ratios = {}
    for cmd in samples["visitsafe"]:
        mine = result["visitsafe"][cmd]["p99_ms"]
        ratios[cmd] = {"p99_ratio": round(mine / result[APPS[1]][cmd]["p99_ms"], 2),
                       "p99_ratio_to_process_before_response": round(mine / result[APPS[2]][cmd]["p99_ms"], 2), "goal": GOAL[cmd]}
    return {
        "benchmark": "ack_vs_bare", "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "options": vars(args) | {"json": str(args.json) if args.json else None}, "timed_s": round(timed_s, 1),
        "apps": result, "ratios": ratios, "errors": {app: len(e) for app, e in errors.items()},
        "first_error": {app: e[0] for app, e in errors.items() if e}, "bot": reports[0],
    }


def table(r: dict) -> str:
    lines = [f"{'app':<32} {'command':<9} {'count':>6} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8}"]
    for app, cmds in r["apps"].items():
        for cmd, s in cmds.items():
            lines.append(f"{app:<32} {cmd:<9} {s['count']:>6} {s['median_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
    for cmd, ratio in r["ratios"].items():
        mark = "ok" if ratio["p99_ratio"] <= ratio["goal"] else "MISSED"
        lines.append(f"{cmd:<9} VisitSafe p99 / bare (default) p99 = {ratio['p99_ratio']:.2f} (goal <= {ratio['goal']}) {mark};"
                     f" / bare (process_before_response) p99 = {ratio['p99_ratio_to_process_before_response']:.2f}")
    lines.append(f"errors: {r['errors']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="people, each timed once per command (default 200)")
    servers.school_args(parser, history=0)
    parser.add_argument("--warmup", type=int, default=5, help="untimed /visits per app first (default 5)")
    return servers.script(parser, argv, run, table, lambda r: not any(r["errors"].values())
                          and all(x["p99_ratio"] <= x["goal"] for x in r["ratios"].values()))


if __name__ == "__main__":
    sys.exit(main())
