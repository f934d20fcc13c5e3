"""Real `visitsafe serve` processes for the restart and SIGKILL tests: start one, wait on it, seed its database."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.simslack import SimSlack
import yaml

from flows.policy import Policy, parse_policy
from flows.visit import State, Visit, go_out
from storage.store import Store
from tests.conftest import POLICY, REQUESTER
from tests.factories import make_visit

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds: float, what: str, poll: float = 0.05) -> None:
    """Poll a real process's effect (these tests run real processes on the real clock)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def serve(tmp_path: Path, sim: SimSlack) -> subprocess.Popen:
    """Start `visitsafe serve` on the database and policy in tmp_path, against the simulated Slack."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VISITSAFE_"))},
        "SLACK_BOT_TOKEN": "restart-test-token",
        "SLACK_SIGNING_SECRET": "restart-test-secret",
        "SLACK_API_URL": sim.base_url,
        "VISITSAFE_DB": str(tmp_path / "visitsafe.db"),
        "VISITSAFE_CONFIG": str(tmp_path / "visitsafe.yml"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def pending(store: Store) -> int:
    """Messages not yet delivered (queued, or in flight when a process died)."""
    return store.db().execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]


def seed_out(store: Store, policy: Policy, expected_return: datetime) -> Visit:
    """A visit out now, due back at `expected_return`, written straight to the database."""
    visit = go_out(make_visit(policy, state=State.approved), REQUESTER, expected_return - timedelta(minutes=30), expected_return, policy)
    with store.transaction() as tx:
        return tx.add_visit(visit, datetime.now(timezone.utc))


def alerts_for(sim: SimSlack, visit_id: int) -> Counter:
    """(destination, first line) of every alert delivered about a visit, counted."""
    return Counter(
        (call.params["channel"], call.params["text"].split(" (")[0])
        for call in sim.calls_to("chat.postMessage")
        if not call.failed and f"visit #{visit_id}" in call.params["text"].lower()
    )


def process_school(tmp_path: Path, ladder: list[dict]) -> tuple[Policy, Store]:
    """The test school with a fast sweep, this ladder and no check-ins, written where `serve` reads it; and its store."""
    raw = {**POLICY, "sweep_interval": "1s", "escalation": ladder}
    raw.pop("checkin_interval")
    (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(raw))
    policy = parse_policy(raw)
    return policy, Store(tmp_path / "visitsafe.db", policy)
