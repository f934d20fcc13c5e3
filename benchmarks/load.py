#!/usr/bin/env python
"""Open-loop load: slash commands at a fixed rate against the bot as in production, with alerts falling due.

A temporary database gets a trust-sized school (benchmarks/population.py): `--today` visits today,
`--history` finished visits of the last year (with their approvals, outbox and audit rows), one approved
visit for each person who will cycle, and `--alerts` visits that fall due during the run. The bot runs in
its own process as `visitsafe run` would (the real Runtime on the system clock, its production settings,
start_background(): the sweep every `--interval` seconds and the outbox dispatcher), served by waitress;
the simulated Slack runs in a third process. This process sends a signed slash command every 1/rate s
whether or not earlier ones were answered (open loop), each on its own connection and thread.

The mix: blocks of `--people` people; each block signs out (`/out 45m`), checks in (`/checkin`), looks at
the board (`/visits`, every other one asked by the office, who sees every visit) and signs back in (`/back`),
`--people` requests of each in turn. A reply counts as answered if it is HTTP 200 with the expected words
within Slack's 3 s. Latency is measured from the moment the request was due to be sent (so a slow server
cannot hide its queue). Goals: every request answered, p99 < 100 ms, no `database is locked` logged, no
alert later than sweep interval + 1 s (from falling due to sent, read from the outbox).

    python benchmarks/load.py                          # 50/s for 60 s, 3,000 today, 100,000 history
    python benchmarks/load.py --rate 10 --duration 5 --today 50 --history 0 --json load.json
"""
from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's code, not an installed copy

import population  # noqa: E402
import servers  # noqa: E402
from ack_latency import ChildSlack
from common import OFFICE, nearest_rank, policy  # noqa: E402  (benchmarks/common.py)
from flows.policy import parse_policy

EXPECT = {"/out": "You are out on visit", "/checkin": "checked in", "/visits": "Home visits today", "/back": "Welcome back"}
STEPS = ("/out 45m", "/checkin", "/visits", "/back")


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    if not s:
        return {}
    return {"count": len(s), "median_ms": round(statistics.median(s), 2), "p95_ms": round(nearest_rank(s, 95), 2),
            "p99_ms": round(nearest_rank(s, 99), 2), "max_ms": round(s[-1], 2)}


def run(args: argparse.Namespace, say) -> dict:  # type: ignore[no-untyped-def]
    raw = policy(sweep_interval=f"{args.interval:g}s")
    school = parse_policy(raw, "benchmark policy")
    total = int(args.rate * args.duration)
    # Everyone signs out once: a person with two approved visits would be offered a choice instead.
    cyclers_needed = -(-total // len(STEPS))
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="visitsafe-load-") as folder:
        db = Path(folder) / "load.db"
        started = time.perf_counter()
        # The alerts fall due while the commands run: seeding first, then their times are set relative to the start.
        seeded = population.seed(db, school, now, today=args.today, history=args.history, cyclers=cyclers_needed)
        seed_s = time.perf_counter() - started
        say(f"seeded {population.counts(db, school)} in {seed_s:.1f} s")
        slack = ChildSlack()
        secret = secrets.token_hex(16)
        lead = 8.0  # the bot's start-up (catch-up tick, phone look-ups) comes before the first due alert
        start_at = time.time() + lead
        dues = [start_at + 2 + (args.duration - 4) * (i + 0.5) / max(1, args.alerts) for i in range(args.alerts)]
        alerts = population.seed(db, school, datetime.now(timezone.utc), due=dues)["alerts"]
        bot = servers.bot(db, raw, secret, slack.base_url)
        client = servers.Client(bot.port, secret, servers.Slack(slack.team_id, slack.app_id, slack.base_url), EXPECT)
        for _ in range(5):  # warm-up, untimed
            client.send("/visits", OFFICE)
        time.sleep(max(0.0, start_at - time.time()))
        # Each block of people must be new people: rotate through every cycler in blocks of --people.
        people = seeded["cyclers"]
        block = min(args.people, len(people))
        plan = []
        for b in range(0, len(people), block):
            group = people[b: b + block]
            for step in STEPS:
                for i, user in enumerate(group):
                    plan.append((step, OFFICE if step == "/visits" and i % 2 else user))
        plan = plan[:total]
        answers: list[servers.Answer] = []
        lock = threading.Lock()
        threads = []

        def fire(label: str, user: str, due: float) -> None:
            a = client.send(label, user, started=due)
            with lock:
                answers.append(a)

        t0 = time.perf_counter()
        lag = []
        for k, (label, user) in enumerate(plan):
            due = t0 + k / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            lag.append(time.perf_counter() - due)
            t = threading.Thread(target=fire, args=(label, user, due), daemon=True)
            t.start()
            threads.append(t)
        send_s = time.perf_counter() - t0
        for t in threads:
            t.join(timeout=servers.SLACK_LIMIT_S + 10)
        time.sleep(args.interval + 2)  # the last alerts' tick and delivery
        report = bot.stop()
        slack.stop()
        delays = population.alert_delays(db, school, alerts)
    sent = [d["sent_s"] for d in delays if d["sent_s"] is not None]
    by_cmd = {}
    for step in STEPS:
        name = step.split(" ")[0]
        mine = [a for a in answers if a.label.split(" ")[0] == name]
        by_cmd[name] = {**summary([a.ms for a in mine]), "not_answered": sum(not a.ok for a in mine),
                        "first_error": next((a.error for a in mine if not a.ok), "")}
    return {
        "benchmark": "load", "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "options": vars(args) | {"json": str(args.json) if args.json else None},
        "seed_s": round(seed_s, 1), "send_s": round(send_s, 2), "sender_lag_max_ms": round(max(lag) * 1000, 1) if lag else 0,
        "requests": len(plan), "answered": sum(a.ok for a in answers), "all": summary([a.ms for a in answers]),
        "commands": by_cmd, "bot": report,
        "alerts": {"count": len(delays), "delivered": len(sent), "max_s": round(max(sent), 2) if sent else None,
                   "p99_s": round(nearest_rank(sorted(sent), 99), 2) if sent else None,
                   "median_s": round(statistics.median(sent), 2) if sent else None, "goal_s": args.interval + 1},
    }


def table(r: dict) -> str:
    lines = [f"{'command':<9} {'count':>6} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8} {'not answered':>12}"]
    for name, s in [*r["commands"].items(), ("all", {**r["all"], "not_answered": r["requests"] - r["answered"]})]:
        if s.get("count"):
            lines.append(f"{name:<9} {s['count']:>6} {s['median_ms']:>8.1f} {s['p95_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f} {s['not_answered']:>12}")
    a = r["alerts"]
    cpu = r["bot"].get("cpu_s")
    if cpu is not None:
        lines.append(f"bot CPU while serving: {cpu} s, {1000 * cpu / max(1, r['requests']):.1f} ms a request (sweep and outbox included)")
    lines.append(f"requests {r['requests']}, answered {r['answered']}; database is locked: {r['bot'].get('database_locked')};"
                 f" errors logged: {r['bot'].get('errors_logged')} {r['bot'].get('first_error') or ''}")
    lines.append(f"alerts {a['delivered']}/{a['count']} sent; from due to sent: median {a['median_s']} s, max {a['max_s']} s (goal < {a['goal_s']} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    servers.school_args(parser, history=100000)
    parser.add_argument("--people", type=int, default=200, help="people cycling at once (default 200)")
    parser.add_argument("--alerts", type=int, default=30, help="visits falling due during the run (default 30)")
    parser.add_argument("--interval", type=float, default=1.0, help="sweep interval in seconds (default 1)")
    return servers.script(parser, argv, run, table, met)


def met(r: dict) -> bool:
    a = r["alerts"]
    return (r["answered"] == r["requests"] and r["all"].get("p99_ms", 0) < 100 and not r["bot"].get("database_locked")
            and a["delivered"] == a["count"] and (a["max_s"] or 0) < a["goal_s"])


if __name__ == "__main__":
    sys.exit(main())
