#!/usr/bin/env python
"""How long after a visit falls due its first alert reaches Slack, in real time, wired as in production.

For each sweep interval asked for, builds a fresh bot the way `visitsafe run` does: a
temporary SQLite database, the real `bot.runtime.Runtime` on the real clock
(`bot.clock.system_clock`), `start_background()` (the catch-up tick, the wake-up thread, APScheduler ticking every
`policy.sweep_interval`, the outbox dispatcher thread), and the simulated Slack Web API
(`bot.simslack.SimSlack`) on 127.0.0.1, by default in its own process as Slack is not in the
bot's process (nor its GIL). No slash commands are sent, so the HTTP events server is not started.

Before the scheduler starts, N visits are written straight to the database: each is approved,
then signed out with `flows.visit.go_out(now=<45 min before it falls due>)` and saved with
`Tx.save_visit` through a `Store` built with the policy (so `next_due_at` is computed). Their
expected returns are spread over the run, one in each slot of `spread / N` seconds at a
uniformly random point of the slot, so due times are not aligned with the ticks. Each visit
has its own visitor, and the ladder's first tier (after 0m) goes to the visitor alone, so the
alert is the chat.postMessage whose channel is that visitor's user id. (Each visitor is new to
the bot, so each alert also pays the two users.info look-ups of its team's mobiles: the worst
case of `ProfilePhones`, whose cache lasts an hour.) One extra visit, already due when the bot
starts, warms the catch-up tick up and is not counted.

    latency = Call.at of the first successful chat.postMessage to the visitor  (SimSlack's time.time())
              - the visit's expected return                                    (when it fell due)

Both are wall-clock epoch seconds on the same machine. The latency is split into the wait for
the sweep (outbox row created_at, which is the sweeping tick's clock - due) and delivery
(Call.at - created_at). The goal is p99 < 100 ms whatever the sweep_interval: the wake-up
(bot/wakeup.py) runs the sweep when a visit falls due. Percentiles are nearest-rank;
with fewer than 100 alerts, p99 is the maximum.

    python benchmarks/alert_latency.py                     # 15 s then 1 s, about 2 minutes
    python benchmarks/alert_latency.py --interval 1 --alerts 200 --json alerts.json
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from bot.heap import freeze_startup_heap
from bot.runtime import Runtime
from bot.settings import Settings
from bot.simslack import SimSlack
from flows.approvals import required_slots
from flows.policy import Policy, parse_policy
from flows.request import RiskAnswers, VisitDetails
from flows.risk import assess
from flows.visit import Decision, State, Visit, go_out
from storage.store import Store
from common import DSL, HEAD, OFFICE, nearest_rank, policy  # noqa: E402  (benchmarks/common.py)

GOAL_S = 0.1  # the goal: p99 < 100 ms, at any sweep_interval (issue 16)

# Check-ins off: the only thing that falls due during the run is each visit's first tier.
SCHOOL_POLICY = policy(checkin_interval=None)

WARMUP_USER, WARMUP_PARTNER = "UW00000", "UWP0000"


def visitor(i: int) -> str:
    return f"UV{i:05d}"


def partner(i: int) -> str:
    return f"UP{i:05d}"


def slack_users(n: int) -> dict[str, dict[str, Any]]:
    """The directory SimSlack serves to users.info: the school's roles and every visiting team."""
    users: dict[str, dict[str, Any]] = {DSL: {"name": "Jo Reid"}, HEAD: {"name": "Pat Head"}, OFFICE: {"name": "Alex Office"}}
    users[WARMUP_USER] = {"name": "Warm Up", "phone": "07700 900000"}
    users[WARMUP_PARTNER] = {"name": "Warm Up Partner", "phone": "07700 900000"}
    for i in range(n):
        users[visitor(i)] = {"name": f"Visitor {i}", "phone": f"07700 9{i:05d}"}
        users[partner(i)] = {"name": f"Partner {i}", "phone": f"07700 8{i:05d}"}
    return users


def summary(values: list[float]) -> dict[str, Any]:
    s = sorted(values)
    if not s:
        return {"count": 0}
    return {
        "count": len(s),
        "min_s": round(s[0], 4),
        "median_s": round(statistics.median(s), 4),
        "p95_s": round(nearest_rank(s, 95), 4),
        "p99_s": round(nearest_rank(s, 99), 4),
        "max_s": round(s[-1], 4),
        "mean_s": round(statistics.fmean(s), 4),
    }


# The simulated Slack --------------------------------------------------------

Brief = tuple[str, Any, float, bool, Any]  # (method, channel, at, failed, error)


def _brief(sim: SimSlack) -> list[Brief]:
    return [(c.method, c.params.get("channel"), c.at, c.failed, c.error) for c in sim.calls]


def _serve_simslack(conn: Any, users: dict[str, dict[str, Any]]) -> None:
    """In a child process: run a SimSlack, answer "calls" with the calls so far, stop on anything else."""
    sim = SimSlack(users=users).start()
    conn.send(sim.base_url)
    try:
        while conn.recv() == "calls":
            conn.send(_brief(sim))
    except EOFError:
        pass
    sim.stop()


class ChildSlack:
    """A SimSlack in its own process; its calls are fetched over a pipe."""

    def __init__(self, users: dict[str, dict[str, Any]]):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_simslack, args=(child, users), name="simslack", daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def calls(self) -> list[Brief]:
        self._conn.send("calls")
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()


class LocalSlack:
    """A SimSlack in this process, as the tests run it."""

    def __init__(self, users: dict[str, dict[str, Any]]):
        self.sim = SimSlack(users=users).start()
        self.base_url = self.sim.base_url

    def calls(self) -> list[Brief]:
        return _brief(self.sim)

    def stop(self) -> None:
        self.sim.stop()


# Seeding --------------------------------------------------------------------

def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def out_visit(policy: Policy, user: str, companion: str, number: int, due: float) -> tuple[Visit, Visit]:
    """(approved, signed out) versions of one visit whose expected return is the epoch `due`.

    The details are built as the model allows, without validate_details (which checks the clock).
    """
    local_due = utc(due).astimezone(policy.tz)
    details = VisitDetails.model_validate(
        {
            "pupil_ref": f"AL{number:05d}",
            "address": f"{1 + number % 200} Example Road, Botley OX2 9AA",
            "contact_phone": "01632 960123",
            "reason": "attendance",
            "visit_type": "doorstep",
            "planned": True,
            "date": local_due.date().isoformat(),
            "start_time": "09:00",
            "duration": "45m",
            "travel_mode": "car",
            "travel_details": "AB12 CDE, blue Ford Focus",
            "parents_informed": True,
            "commute": False,
        }
    )
    answers = RiskAnswers.model_validate({"companions": (companion,)})
    assessment = assess(details, answers, [], policy, user)
    slots = required_slots(policy, user, details, assessment)
    departed = utc(due) - timedelta(minutes=45)
    decided = departed - timedelta(minutes=30)
    approvers = {"dsl": DSL, "head": HEAD}
    decisions = tuple(Decision(slot.name, approvers.get(slot.name, DSL), True, decided) for slot in slots)
    approved = Visit(
        user, details, answers, assessment, slots,
        created_at=decided - timedelta(hours=1), start_at=details.start_at(policy), state=State.approved, decisions=decisions,
    )
    return approved, go_out(approved, user, departed, utc(due), policy)


@dataclass
class Seeded:
    visit_id: int
    channel: str
    due: float  # epoch seconds


def seed(db: Path, policy: Policy, plan: list[tuple[str, str, float]]) -> list[Seeded]:
    """Write each planned visit (visitor, companion, due) as approved, then out; return where each alert goes."""
    store = Store(db, policy)
    seeded = []
    try:
        with store.transaction() as tx:
            for number, (user, companion, due) in enumerate(plan):
                approved, out = out_visit(policy, user, companion, number, due)
                approved = tx.add_visit(approved, approved.created_at)
                out = replace(out, id=approved.id)
                tx.save_visit(out, out.departed_at)  # type: ignore[arg-type]
                seeded.append(Seeded(approved.id or 0, user, due))
        row = store.read().db.conn.execute("SELECT COUNT(*), MIN(next_due_at) FROM visits WHERE next_due_at IS NOT NULL").fetchone()
        assert row[0] == len(plan), f"next_due_at missing on {len(plan) - row[0]} seeded visits"
    finally:
        store.close()
    return seeded


# One run --------------------------------------------------------------------

@dataclass
class RunResult:
    interval_s: float
    alerts: int
    spread_s: float
    latencies: list[float] = field(default_factory=list)
    sweep_wait: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    failed_calls: int = 0
    tiers_sent: int = 0  # tier alerts the sweeps queued (audit), the warm-up visit's included
    woke: int = 0  # ticks the wake-up ran
    wake_missed: int = 0  # timers a periodic tick found more than 1 s overdue (the wake-up missed them)
    wall_s: float = 0.0

    @property
    def goal_s(self) -> float:
        return GOAL_S

    def met(self) -> bool:
        return not self.missing and bool(self.latencies) and nearest_rank(sorted(self.latencies), 99) < self.goal_s

    def as_json(self) -> dict[str, Any]:
        return {
            "sweep_interval_s": self.interval_s,
            "alerts_planned": self.alerts,
            "spread_s": round(self.spread_s, 2),
            "goal_p99_s": self.goal_s,
            "goal_met": self.met(),
            "latency": summary(self.latencies),
            "sweep_wait": summary(self.sweep_wait),
            "delivery": summary(self.delivery),
            "missing_visit_ids": self.missing,
            "failed_api_calls": self.failed_calls,
            "tiers_sent": self.tiers_sent,
            "woke": self.woke,
            "wake_missed": self.wake_missed,
            "wall_s": round(self.wall_s, 2),
            "latencies_s": [round(x, 4) for x in self.latencies],
        }


def run_interval(interval_s: float, alerts: int, spread_s: float, lead_s: float, rng: random.Random, in_process_slack: bool, say: Callable[[str], None]) -> RunResult:
    result = RunResult(interval_s, alerts, spread_s)
    policy = parse_policy({**SCHOOL_POLICY, "sweep_interval": timedelta(seconds=interval_s)}, "benchmark policy")
    users = slack_users(alerts)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="visitsafe-alerts-") as folder:
        slack: ChildSlack | LocalSlack = LocalSlack(users) if in_process_slack else ChildSlack(users)
        runtime: Runtime | None = None
        stopped = False
        try:
            settings = Settings(
                slack_bot_token="bench-bot-token",
                slack_signing_secret="bench-signing-secret",
                slack_api_url=slack.base_url,
                visitsafe_db=Path(folder) / "alerts.db",
                visitsafe_config=Path(folder) / "visitsafe.yml",
            )
            runtime = Runtime(settings, policy)  # the real system clock, production settings
            # Due times: one per slot of spread/N seconds, at a random point in it, from `lead` after now.
            base = time.time() + lead_s
            slot = spread_s / alerts
            plan = [(WARMUP_USER, WARMUP_PARTNER, time.time() - 1.0)]
            plan += [(visitor(i), partner(i), base + (i + rng.random()) * slot) for i in range(alerts)]
            seeded = seed(settings.visitsafe_db, policy, plan)[1:]
            if time.time() > base:
                raise SystemExit(f"seeding took longer than the lead of {lead_s} s: use a larger --lead")
            runtime.start_background()  # catch-up tick (the warm-up visit), the wake-up, then every sweep_interval
            freeze_startup_heap()  # as `visitsafe serve` does
            say(f"  sweep_interval {interval_s:g} s: {alerts} visits falling due over {spread_s:.0f} s"
                f" (first in {seeded[0].due - time.time():.1f} s), bot started")

            by_channel = {s.channel: s for s in seeded}
            arrived: dict[int, float] = {}
            deadline = seeded[-1].due + interval_s + 10.0
            next_note = time.time() + 15.0
            calls: list[Brief] = []
            while time.time() < deadline:
                time.sleep(0.25)
                calls = slack.calls()
                for method, channel, at, failed, error in calls:
                    s = by_channel.get(channel)
                    if method == "chat.postMessage" and s is not None and not failed and not error and s.visit_id not in arrived:
                        arrived[s.visit_id] = at
                if len(arrived) == len(seeded):
                    break
                if time.time() >= next_note:
                    say(f"    {len(arrived)}/{len(seeded)} alerts received")
                    next_note += 15.0
            runtime.stop()
            stopped = True
            result.failed_calls = sum(1 for c in calls if c[3] or c[4])

            tx = runtime.store.read()
            queued = {
                visit_id: created
                for visit_id, created in tx.db.conn.execute(
                    "SELECT visit_id, MIN(created_at) FROM outbox WHERE key LIKE 'alert:%:t0:%' GROUP BY visit_id"
                )
            }
            result.tiers_sent = tx.db.conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'tier_sent'").fetchone()[0]
            result.woke, result.wake_missed = runtime.wakeup.woke, runtime.wakeup.missed
            for s in seeded:
                if s.visit_id not in arrived:
                    result.missing.append(s.visit_id)
                    continue
                result.latencies.append(arrived[s.visit_id] - s.due)
                if s.visit_id in queued:
                    result.sweep_wait.append(queued[s.visit_id] - s.due)
                    result.delivery.append(arrived[s.visit_id] - queued[s.visit_id])
        finally:
            if runtime is not None:
                if not stopped and runtime.scheduler is not None:
                    runtime.stop()
                runtime.store.close()
            slack.stop()
    result.wall_s = time.perf_counter() - started
    return result


def table(results: list[RunResult]) -> str:
    head = (f"{'sweep_interval':>14} {'alerts':>6} {'recvd':>5} {'median':>7} {'p95':>7} {'p99':>7} {'max':>7}"
            f" {'goal p99<':>9} {'met':>4}   {'wait p99':>8} {'deliv med':>9} {'deliv p99':>9}")
    lines = [head, "-" * len(head)]
    for r in results:
        s = summary(r.latencies)
        w, d = summary(r.sweep_wait), summary(r.delivery)
        if not s["count"]:
            lines.append(f"{r.interval_s:>13g}s {r.alerts:>6} {0:>5}  (no alert arrived)")
            continue
        lines.append(
            f"{r.interval_s:>13g}s {r.alerts:>6} {s['count']:>5} {s['median_s']:>7.3f} {s['p95_s']:>7.3f} {s['p99_s']:>7.3f}"
            f" {s['max_s']:>7.3f} {r.goal_s:>8g}s {'yes' if r.met() else 'NO':>4}"
            f"   {w.get('p99_s', float('nan')):>8.3f} {d.get('median_s', float('nan')):>9.3f} {d.get('p99_s', float('nan')):>9.3f}"
        )
    lines.append("seconds from a visit falling due (expected return) to SimSlack receiving its first alert (chat.postMessage);")
    lines.append("percentiles nearest-rank (p99 = max below 100 alerts); wait = due -> queued by a sweep, deliv = queued -> Slack")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, nargs="+", default=[15.0, 1.0], metavar="S",
                        help="sweep_interval(s) in seconds, one run each, in order (default: 15 1)")
    parser.add_argument("--alerts", type=int, metavar="N",
                        help="visits falling due per run (default: 40 for an interval of 5 s or more, else 60)")
    parser.add_argument("--spread", type=float, metavar="S",
                        help="seconds over which the due times are spread (default: max(0.7 x alerts, 4 x interval))")
    parser.add_argument("--lead", type=float, default=2.0, metavar="S", help="seconds from seeding to the first due time (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the due times' jitter (default 1)")
    parser.add_argument("--in-process-slack", action="store_true", help="run SimSlack in the bot's process (default: its own process)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    if any(i <= 0 for i in args.interval) or (args.alerts is not None and args.alerts < 1) or args.lead < 0.5:
        parser.error("--interval must be positive, --alerts at least 1, --lead at least 0.5")

    logging.basicConfig(level=logging.WARNING)
    say = (lambda *_: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    rng = random.Random(args.seed)
    machine = {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    print(f"alert latency: nproc {machine['nproc']}, Python {machine['python']}, {machine['platform']}", flush=True)
    started = time.perf_counter()
    results = []
    for interval in args.interval:
        alerts = args.alerts or (40 if interval >= 5 else 60)
        spread = args.spread or max(0.7 * alerts, 4 * interval)
        results.append(run_interval(interval, alerts, spread, args.lead, rng, args.in_process_slack, say))
    total_s = time.perf_counter() - started

    print(table(results))
    print(f"SimSlack {'in the bot process' if args.in_process_slack else 'in its own process'}; total run time {total_s:.1f} s")
    for r in results:
        if r.missing:
            print(f"sweep_interval {r.interval_s:g} s: {len(r.missing)} alerts never arrived (visits {r.missing[:10]})", file=sys.stderr)
        print(f"sweep_interval {r.interval_s:g} s: the wake-up ran {r.woke} ticks; periodic ticks caught {r.wake_missed} timers it missed")
        if r.failed_calls:
            print(f"sweep_interval {r.interval_s:g} s: {r.failed_calls} Slack API calls failed", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "alert_latency",
                    "machine": machine,
                    "options": {"interval": args.interval, "alerts": args.alerts, "spread": args.spread, "lead": args.lead,
                                "seed": args.seed, "in_process_slack": args.in_process_slack},
                    "total_s": round(total_s, 2),
                    "runs": [r.as_json() for r in results],
                },
                indent=2,
            )
            + "\n"
        )
        say(f"wrote {args.json}")
    return 0 if all(r.met() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
