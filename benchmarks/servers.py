"""Servers in their own processes for the open-loop benchmarks: the bot as in production, a bare Bolt app, and a
client that sends signed slash commands and times them (the load generator must not share the bot's GIL).
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bot.simslack import sign_request
from bot.simslack.driver import command_body

SLACK_LIMIT_S = 3.0


class _Counter(logging.Handler):
    """Counts log records: every error, and each 'database is locked'."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = 0
        self.locked = 0
        self.first: str = ""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        self.errors += record.levelno >= logging.ERROR
        if record.levelno >= logging.ERROR and not self.first:
            self.first = f"{record.name}: {record.getMessage()[:200]}"
        self.locked += "database is locked" in text


def _serve_until_stopped(conn: Any, wsgi: Any) -> None:
    """Serve `wsgi` with waitress, tell the parent the port, and stop when it says so."""
    from bot.serving import Server

    server = Server(wsgi).start()
    conn.send(server.port)
    try:
        conn.recv()
    except EOFError:
        pass
    server.stop()


def _serve_bot(conn: Any, db: str, policy_raw: dict[str, Any], secret: str, slack_url: str, background: bool) -> None:
    """In a child process: the real Runtime on the system clock, with production settings, served by waitress."""
    from bot.heap import freeze_startup_heap
    from bot.runtime import Runtime
    from bot.settings import Settings
    from flows.policy import parse_policy

    counter = _Counter()
    logging.getLogger().addHandler(counter)
    folder = Path(db).parent
    settings = Settings(slack_bot_token="bench-bot-token", slack_signing_secret=secret, slack_api_url=slack_url,
                        visitsafe_db=Path(db), visitsafe_config=folder / "visitsafe.yml")
    runtime = Runtime(settings, parse_policy(policy_raw, "benchmark policy"))
    if background:
        runtime.start_background()
    else:
        runtime.dispatcher.start()
    freeze_startup_heap()  # as `visitsafe serve` does
    cpu = time.process_time()
    _serve_until_stopped(conn, runtime.wsgi)
    runtime.stop()
    # The bot's CPU while serving (every thread): on a shared machine, what decides whether a queue builds up.
    conn.send({"errors_logged": counter.errors, "database_locked": counter.locked, "first_error": counter.first,
               "cpu_s": round(time.process_time() - cpu, 2)})


def _serve_bare(conn: Any, secret: str, slack_url: str, process_before_response: bool) -> None:
    """In a child process: a Bolt app whose only listener acks, on the same server and signing check."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    app = App(client=WebClient(token="bench-bare-token", base_url=slack_url), signing_secret=secret,
              process_before_response=process_before_response, token_verification_enabled=False)

    @app.command(re.compile(".*"))
    def only_ack(ack: Any) -> None:
        ack()

    _serve_until_stopped(conn, SlackRequestHandler(app))
    conn.send({})


class Child:
    """A server in its own process; `port` once it listens, `stop()` returns what it counted."""

    def __init__(self, target: Any, *args: Any):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=target, args=(child, *args), daemon=True)
        self._process.start()
        self.port: int = self._conn.recv()

    def stop(self) -> dict[str, Any]:
        self._conn.send("stop")
        report = self._conn.recv() if self._conn.poll(30) else {}
        self._process.join(timeout=10)
        return report


def bot(db: Path, policy_raw: dict[str, Any], secret: str, slack_url: str, background: bool = True) -> Child:
    return Child(_serve_bot, str(db), policy_raw, secret, slack_url, background)


def bare(secret: str, slack_url: str, process_before_response: bool) -> Child:
    return Child(_serve_bare, secret, slack_url, process_before_response)


@dataclass
class Slack:
    """What a signed command body needs to know of the workspace."""

    team_id: str
    app_id: str
    base_url: str


@dataclass
class Answer:
    label: str
    ms: float
    ok: bool
    error: str = ""


@dataclass
class Client:
    """Sends one signed slash command over a new connection and checks the reply for expected words."""

    port: int
    secret: str
    slack: Slack
    expect: dict[str, str] = field(default_factory=dict)
    _n: list[int] = field(default_factory=lambda: [0])

    def body(self, user: str, command: str, text: str) -> tuple[bytes, dict[str, str]]:
        self._n[0] += 1
        body = command_body(self.slack, user, command, text, f"{self._n[0]}.{secrets.token_hex(4)}")  # type: ignore[arg-type]
        return body.encode(), sign_request(self.secret, body)

    def send(self, label: str, user: str, started: float | None = None) -> Answer:
        """Time one command from `started` (its scheduled moment in an open-loop run) or from now."""
        command, _, text = label.partition(" ")
        body, headers = self.body(user, command, text)
        t0 = time.perf_counter() if started is None else started
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SLACK_LIMIT_S + 7)
            conn.request("POST", "/slack/events", body=body, headers=headers)
            answer = conn.getresponse()
            raw = answer.read()
            conn.close()
        except OSError as exc:
            return Answer(label, (time.perf_counter() - t0) * 1000, False, type(exc).__name__)
        ms = (time.perf_counter() - t0) * 1000
        words = self.expect.get(label.split(" ")[0], "")
        try:
            text_of = json.loads(raw).get("text", "") if raw else ""
        except ValueError:
            text_of = raw.decode(errors="replace")
        ok = answer.status == 200 and words in text_of and ms < SLACK_LIMIT_S * 1000
        return Answer(label, ms, ok, "" if ok else f"HTTP {answer.status} {ms:.0f} ms: {text_of[:120]}")


def school_args(parser: argparse.ArgumentParser, history: int) -> None:
    """The size of the school a script seeds: visits today and visits of history."""
    parser.add_argument("--today", type=int, default=3000, help="other visits today (default 3,000)")
    parser.add_argument("--history", type=int, default=history, help=f"finished visits of history (default {history:,})")


def script(parser: argparse.ArgumentParser, argv: list[str] | None, run: Callable[..., dict], table: Callable[[dict], str],
           met: Callable[[dict], bool]) -> int:
    """What every script ends with: the shared options, the run, the table, the JSON, and the exit status."""
    parser.add_argument("--no-goal", action="store_true", help="exit 0 even if a goal is missed (smoke runs)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    say = (lambda *_: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    result = run(args, say)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met(result) or args.no_goal else 1
