#!/usr/bin/env python
"""How fast VisitSafe acknowledges slash commands over HTTP (Slack gives an app 3 seconds).

Builds its own workspace the way `visitsafe demo` does: a temporary SQLite database, the
simulated Slack Web API (`bot.simslack.SimSlack`) on loopback, the real `bot.runtime.Runtime`
with production settings (`process_before_response=False`, so Bolt acks from its listener
thread pool) served by waitress (`bot.serving.Server`), and the outbox dispatcher thread
running so messages are delivered in the background while commands are being answered.
The simulated Slack runs in a child process (real Slack is not in the bot's process, nor its
GIL); --in-process-slack runs it in-process as the tests do.

Each round (--repeat) pre-creates N approved visits for N distinct members of staff through the real
code path (`commands.request.submit`, then `commands.decide.approve` by the DSL and the
head), waits for the outbox to empty, then times signed HTTP POSTs to /slack/events:

    /out 45x   a bad argument, from a member of staff with an approved visit
    /out 45m   signing out for the approved visit
    /visits    the office board, asked by the office (interleaved with the two above)
    /back      signing back in, from each member of staff who is out

Each figure is wall time from just before the request is sent (new TCP connection, as the
Driver does) to the response body fully read, measured with time.perf_counter(). Signing and
building the body happen before the clock starts; parsing and checking the reply after it.
Every reply is checked (status 200 and the expected words); anything else counts as an error.

Then, in the same workspace, 1,000 other visits for today (by other staff, in a mix of
states) are added and /visits alone is timed again, to show how it scales: it lists every
visit of the day, so its cost grows with the day's visits while the other commands' does not.

    python benchmarks/ack_latency.py
    python benchmarks/ack_latency.py --visits 300 --others 1000 --json ack.json

Percentiles are nearest-rank. No network is used beyond 127.0.0.1.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import logging
import multiprocessing
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import FixedClock
from bot.runtime import Runtime
from bot.serving import Server
from bot.settings import Settings
from bot.simslack import SimSlack, sign_request
from bot.simslack.driver import command_body, Response
from commands import decide, request
from flows.policy import Policy, parse_policy
from flows.visit import Decision, State, Visit
from common import DSL, HEAD, OFFICE, nearest_rank, policy  # noqa: E402  (benchmarks/common.py)

SLACK_ACK_LIMIT_MS = 3000.0

SCHOOL_POLICY = policy()  # two approvals (DSL and head), pairs required, office hours

COMMANDS = ("/visits", "/out 45m", "/back", "/out 45x")
# What a correct reply to each command contains.
EXPECT = {
    "/visits": "Home visits today",
    "/out 45m": "You are out on visit #",
    "/back": "Welcome back",
    "/out 45x": "is not a duration",
}


def staff(i: int) -> str:
    """The i-th member of staff who makes a visit in the timed passes."""
    return f"US{i:05d}"


def companion(i: int) -> str:
    return f"UC{i:05d}"


def details_raw(day: str, i: int, start: str = "10:00") -> dict[str, Any]:
    """Step 1 answers as bot.slack.forms.details_answers produces them."""
    return {
        "pupil_ref": f"BM{i:05d}",
        "address": f"{1 + i % 200} Example Road, Botley OX2 9AA",
        "contact_phone": "01632 960123",
        "reason": "attendance",
        "visit_type": "doorstep",
        "planned": True,
        "date": day,
        "start_time": start,
        "duration": "45m",
        "travel_mode": "car",
        "travel_details": "AB12 CDE, blue Ford Focus",
        "parents_informed": True,
        "commute": False,
    }


def risk_raw(partner: str) -> dict[str, Any]:
    """Step 2 answers as bot.slack.forms.risk_answers produces them: no risks, one companion."""
    return {
        "violence_known": False,
        "violent_person_present": False,
        "family_new": False,
        "animals": False,
        "interpreter": False,
        "special_needs": False,
        "allergies_checked": True,
        "other_agencies": None,
        "other_concerns": None,
        "companions": (partner,),
    }


@dataclass
class Series:
    """The timings of one command in one pass."""

    samples: list[float] = field(default_factory=list)  # milliseconds
    errors: int = 0
    bytes: int = 0
    first_error: str | None = None

    def summary(self) -> dict[str, Any]:
        s = sorted(self.samples)
        if not s:
            return {"count": 0, "errors": self.errors}
        return {
            "count": len(s),
            "errors": self.errors,
            "median_ms": round(statistics.median(s), 3),
            "p95_ms": round(nearest_rank(s, 95), 3),
            "p99_ms": round(nearest_rank(s, 99), 3),
            "max_ms": round(s[-1], 3),
            "mean_ms": round(statistics.fmean(s), 3),
            "over_3s": sum(1 for x in s if x >= SLACK_ACK_LIMIT_MS),
            "mean_response_bytes": round(self.bytes / len(s)),
            **({"first_error": self.first_error} if self.first_error else {}),
        }


SLACK_USERS = {DSL: {"name": "Jo Reid"}, HEAD: {"name": "Pat Head"}, OFFICE: {"name": "Alex Office"}}


def _serve_simslack(conn: Any) -> None:
    """In a child process: run a SimSlack until told to stop."""
    sim = SimSlack(users=SLACK_USERS).start()
    conn.send((sim.base_url, sim.team_id, sim.app_id))
    try:
        conn.recv()
    except EOFError:
        pass
    sim.stop()


class ChildSlack:
    """A SimSlack in its own process, as Slack is not in the bot's process (nor its GIL)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_simslack, args=(child,), name="simslack", daemon=True)
        self._process.start()
        self.base_url, self.team_id, self.app_id = self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=5)


class Bench:
    """One running bot on loopback with its own database, simulated Slack and dispatcher."""

    def __init__(self, folder: Path, policy: Policy, clock: FixedClock, in_process_slack: bool = False, process_before_response: bool = False):
        self.policy, self.clock = policy, clock
        self.sim: SimSlack | ChildSlack = SimSlack(users=SLACK_USERS).start() if in_process_slack else ChildSlack()
        self._triggers = itertools.count(1)
        self.secret = secrets.token_hex(16)
        settings = Settings(
            slack_bot_token="bench-bot-token",
            slack_signing_secret=self.secret,
            slack_api_url=self.sim.base_url,
            visitsafe_db=folder / "bench.db",
            visitsafe_config=folder / "visitsafe.yml",
        )
        self.runtime = Runtime(settings, policy, clock, process_before_response=process_before_response)
        self.runtime.dispatcher.start()  # delivery in the background, as in production
        self.server = Server(self.runtime.wsgi).start()
        self.port = self.server.port
        self.ctx = self.runtime.ctx

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()
        self.sim.stop()

    # Setting up ------------------------------------------------------------

    def approved_visit(self, user: str, partner: str, number: int, start: str = "10:00") -> Visit:
        """A visit requested and approved through the real commands."""
        day = self.clock().astimezone(self.policy.tz).date().isoformat()
        visit = request.submit(self.ctx, user, details_raw(day, number, start), risk_raw(partner))
        assert visit.id is not None
        for approver in (DSL, HEAD):
            decide.approve(self.ctx, approver, visit.id)
        return visit

    def add_others(self, count: int) -> None:
        """`count` other visits today by other staff, in a mix of states, written straight to the store.

        One visit goes through the real request and approvals; the rest are copies of it with
        their own staff, pupil and start time (no outbox traffic, so setting up stays fast).
        """
        if count <= 0:
            return
        first = self.approved_visit("UO00000", "UQ00000", 90000, f"{planned_start(self.clock(), 1):%H:%M}")
        template = self.ctx.store.read().visit(first.id)  # type: ignore[arg-type]
        assert template is not None and template.state is State.approved
        now = self.clock()
        states = (State.requested, State.approved, State.returned, State.out, State.declined)
        with self.ctx.store.transaction() as tx:
            for i in range(1, count):
                minute = 8 * 60 + (i * 7) % (8 * 60)  # 08:00 .. 15:59
                start = f"{minute // 60:02d}:{minute % 60:02d}"
                details = template.details.model_copy(update={"pupil_ref": f"OT{i:05d}", "start_time": datetime.strptime(start, "%H:%M").time()})
                answers = template.answers.model_copy(update={"companions": (f"UQ{i:05d}",)})
                state = states[i % len(states)]
                start_at = details.start_at(self.policy)
                visit = replace(
                    template,
                    id=None,
                    requester=f"UO{i:05d}",
                    details=details,
                    answers=answers,
                    start_at=start_at,
                    state=state,
                    decisions=() if state is State.requested else template.decisions,
                    departed_at=start_at if state in (State.out, State.returned) else None,
                    expected_return=start_at + details.duration if state in (State.out, State.returned) else None,
                    returned_at=start_at + details.duration if state is State.returned else None,
                )
                if state is State.declined:
                    visit = replace(visit, decisions=(Decision("dsl", DSL, False, now, "Meet at school instead"),))
                tx.save_visit(tx.add_visit(visit, now), now)  # save_visit stores the decisions

    def wait_for_outbox(self, timeout: float = 60.0) -> dict[str, int]:
        """Wait until the dispatcher has delivered everything queued; return the outbox counts."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.outbox()
            if counts["pending"] == 0 or time.monotonic() > deadline:
                return counts
            self.runtime.dispatcher.wake()
            time.sleep(0.02)

    def outbox(self) -> dict[str, int]:
        rows = self.ctx.store.read().db.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts = {"pending": 0, "sent": 0, "failed": 0}
        counts.update({status: n for status, n in rows})
        return counts

    def visits_in_db(self) -> tuple[int, int]:
        """(all visits, visits planned for today or live) in the database."""
        tx = self.ctx.store.read()
        total = tx.db.conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0]
        local = self.clock().astimezone(self.policy.tz)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        today = tx.db.conn.execute(
            "SELECT COUNT(*) FROM visits WHERE (start_at >= ? AND start_at < ?) OR state IN ('out', 'overdue', 'emergency')",
            [start.timestamp(), (start + timedelta(days=1)).timestamp()],
        ).fetchone()[0]
        return total, today

    # Timing ----------------------------------------------------------------

    def command_body(self, user: str, command: str, text: str) -> str:
        """What Slack POSTs for a slash command."""
        return command_body(self.sim, user, command, text, f"{next(self._triggers)}.{user}.bench")

    def timed(self, series: Series | None, label: str, user: str) -> None:
        """Send one signed slash command, time it, and check the reply."""
        command, _, text = label.partition(" ")
        body = self.command_body(user, command, text).encode()
        headers = sign_request(self.secret, body.decode())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        t0 = time.perf_counter()
        conn.request("POST", "/slack/events", body=body, headers=headers)
        answer = conn.getresponse()
        raw = answer.read()
        elapsed_ms = (time.perf_counter() - t0) * 1000
        conn.close()
        if series is None:  # warm-up
            return
        series.samples.append(elapsed_ms)
        series.bytes += len(raw)
        try:
            reply = Response(answer.status, json.loads(raw) if raw else None)
            ok = answer.status == 200 and EXPECT[label] in reply.text
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            series.errors += 1
            series.first_error = series.first_error or f"HTTP {answer.status}: {raw[:300]!r}"


@dataclass
class PassResult:
    name: str
    others: int
    series: dict[str, Series]
    visits_in_db: int = 0
    visits_today: int = 0
    setup_s: float = 0.0
    timed_s: float = 0.0
    outbox: dict[str, int] = field(default_factory=dict)


def school_morning(policy: Policy) -> datetime:
    """09:00 on the next school day (today if a weekday), in the school's time zone."""
    day = datetime.now(policy.tz).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), tzinfo=policy.tz).replace(hour=9)


def planned_start(now: datetime, n: int) -> datetime:
    """The next quarter hour after N approvals a second apart, kept inside visiting hours."""
    ready = now + timedelta(seconds=n + 60)
    start = ready.replace(minute=ready.minute // 15 * 15, second=0, microsecond=0) + timedelta(minutes=15)
    if (start.hour, start.minute) > (16, 30) or start.date() != now.date():
        raise SystemExit("too many rounds for one school day (visits must end by 17:30): use a smaller --repeat or --visits")
    return start


def run(policy: Policy, n: int, repeat: int, others: int, scaling_samples: int, warmup: int, in_process_slack: bool, process_before_response: bool, say) -> list[PassResult]:  # type: ignore[no-untyped-def]
    """The baseline pass (all four commands), then the /visits scaling pass in the same workspace."""
    clock = FixedClock(school_morning(policy))
    baseline = PassResult("baseline", 0, {label: Series() for label in COMMANDS})
    results = [baseline]
    with tempfile.TemporaryDirectory(prefix="visitsafe-bench-") as folder:
        bench = Bench(Path(folder), policy, clock, in_process_slack, process_before_response)
        try:
            for round_no in range(repeat):
                # Before the visits: N requests, each approved by the DSL and the head, a second apart,
                # for the next quarter hour after that (time only moves forward, round after round).
                start = planned_start(clock(), n)
                started = time.perf_counter()
                for i in range(n):
                    bench.approved_visit(staff(i), companion(i), round_no * n + i, f"{start:%H:%M}")
                    clock.advance(timedelta(seconds=1))
                counts = bench.wait_for_outbox()  # the approvals' messages are not part of what is timed
                baseline.setup_s += time.perf_counter() - started
                say(f"  round {round_no + 1}/{repeat}: {n} approved visits ready"
                    f" in {time.perf_counter() - started:.1f} s (outbox {counts})")

                clock.set(max(clock(), start))
                if round_no == 0:
                    for _ in range(warmup):
                        bench.timed(None, "/visits", OFFICE)
                        bench.timed(None, "/out 45x", staff(0))

                started = time.perf_counter()
                for i in range(n):  # leaving, one after another, while the office watches the board
                    bench.timed(baseline.series["/out 45x"], "/out 45x", staff(i))
                    bench.timed(baseline.series["/out 45m"], "/out 45m", staff(i))
                    bench.timed(baseline.series["/visits"], "/visits", OFFICE)
                    clock.advance(timedelta(seconds=2))
                clock.advance(timedelta(minutes=30))
                for i in range(n):  # coming back
                    bench.timed(baseline.series["/back"], "/back", staff(i))
                    clock.advance(timedelta(seconds=1))
                baseline.timed_s += time.perf_counter() - started
                say(f"  round {round_no + 1}/{repeat}: {4 * n} commands timed in {time.perf_counter() - started:.1f} s")
            baseline.visits_in_db, baseline.visits_today = bench.visits_in_db()
            baseline.outbox = bench.wait_for_outbox()

            if others and scaling_samples:
                scaling = PassResult(f"+{others} other visits today", others, {"/visits": Series()})
                results.append(scaling)
                started = time.perf_counter()
                bench.add_others(others)
                scaling.outbox = bench.wait_for_outbox()
                scaling.setup_s = time.perf_counter() - started
                scaling.visits_in_db, scaling.visits_today = bench.visits_in_db()
                say(f"  {others} other visits added in {scaling.setup_s:.1f} s ({scaling.visits_today} visits today)")
                started = time.perf_counter()
                for _ in range(scaling_samples):
                    bench.timed(scaling.series["/visits"], "/visits", OFFICE)
                    clock.advance(timedelta(seconds=2))
                scaling.timed_s = time.perf_counter() - started
        finally:
            bench.close()
    return results


def table(results: list[PassResult]) -> str:
    head = f"{'pass':<28} {'command':<9} {'count':>6} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>6} {'visits in db':>12} {'bytes':>6}"
    lines = [head, "-" * len(head)]
    for r in results:
        for label in r.series:
            s = r.series[label].summary()
            if not s["count"]:
                continue
            lines.append(
                f"{r.name:<28} {label:<9} {s['count']:>6} {s['median_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['p99_ms']:>8.2f}"
                f" {s['max_ms']:>8.2f} {s['errors']:>6} {r.visits_in_db:>12} {s['mean_response_bytes']:>6}"
            )
    lines.append("times in ms, end to end over HTTP (connect, signed POST, ack, response read); Slack's limit is 3000 ms")
    lines.append("visits in db: all visits in the database at the end of the pass; bytes: mean response size")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=300, metavar="N", help="approved visits (distinct staff) per round; each command is timed N times per round (default 300)")
    parser.add_argument("--repeat", type=int, default=1, metavar="R", help="rounds per pass, each with N fresh visits for the same staff (default 1)")
    parser.add_argument("--others", type=int, default=1000, metavar="M", help="other visits for today in the second pass; 0 skips it (default 1000)")
    parser.add_argument("--scaling-samples", type=int, default=20, metavar="S", help="/visits requests timed with the other visits in place; 0 skips that pass (default 20)")
    parser.add_argument("--warmup", type=int, default=5, metavar="W", help="untimed /visits and /out 45x requests before timing (default 5 each)")
    parser.add_argument("--in-process-slack", action="store_true", help="run the simulated Slack in the bot's process, as the tests do (default: its own process)")
    parser.add_argument("--process-before-response", action="store_true", help="build the Runtime as the tests do (ack after the listener returns) instead of the production setting")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    if args.visits < 1 or args.repeat < 1 or min(args.others, args.scaling_samples, args.warmup) < 0:
        parser.error("--visits and --repeat must be at least 1; --others, --scaling-samples and --warmup at least 0")

    logging.basicConfig(level=logging.WARNING)
    say = (lambda *_: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    policy = parse_policy(SCHOOL_POLICY, "benchmark policy")
    started = time.perf_counter()
    say(f"ack latency: {args.visits} visits x {args.repeat} round(s), nproc {os.cpu_count()}, Python {platform.python_version()}")
    results = run(policy, args.visits, args.repeat, args.others, args.scaling_samples, args.warmup, args.in_process_slack, args.process_before_response, say)
    total_s = time.perf_counter() - started

    print(table(results))
    print(f"total run time {total_s:.1f} s")
    worst = max((max(s.samples) for r in results for s in r.series.values() if s.samples), default=0.0)
    errors = sum(s.errors for r in results for s in r.series.values())
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "ack_latency",
                    "limit_ms": SLACK_ACK_LIMIT_MS,
                    "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
                    "options": {
                        "visits": args.visits, "repeat": args.repeat, "others": args.others,
                        "scaling_samples": args.scaling_samples, "warmup": args.warmup, "in_process_slack": args.in_process_slack,
                        "process_before_response": args.process_before_response,
                    },
                    "total_s": round(total_s, 2),
                    "passes": [
                        {
                            "name": r.name,
                            "other_visits": r.others,
                            "visits_in_db": r.visits_in_db,
                            "visits_today": r.visits_today,
                            "setup_s": round(r.setup_s, 2),
                            "timed_s": round(r.timed_s, 2),
                            "outbox": r.outbox,
                            "commands": {label: series.summary() for label, series in r.series.items()},
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        say(f"wrote {args.json}")
    if errors:
        print(f"{errors} replies were not what was expected (see --json for the first of each)", file=sys.stderr)
    return 1 if errors or worst >= SLACK_ACK_LIMIT_MS else 0


if __name__ == "__main__":
    sys.exit(main())
