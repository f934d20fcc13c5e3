"""`visitsafe serve` as a school runs it: on $PORT, bound to 127.0.0.1, and a quiet INFO log that has
one line per command handled and per alert sent, with ids only (issue 11 item 4)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import yaml

from bot.simslack import SimSlack
from bot.simslack.driver import Driver
from flows.policy import parse_policy
from storage.store import Store
from tests.conftest import COMPANION, DEPUTY, DSL, ELT, FAMILY_SUPPORT, HEAD, OFFICE, POLICY, REQUESTER, SENIOR
from tests.processes import ROOT, alerts_for, free_port, seed_out, wait_for
from tests.test_cli import visitsafe


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def test_serve_on_port_from_the_environment_on_loopback_with_a_quiet_log(tmp_path):
    raw = {**POLICY, "sweep_interval": "1s"}
    (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(raw))
    policy = parse_policy(raw)
    store = Store(tmp_path / "visitsafe.db", policy)
    visit = seed_out(store, policy, datetime.now(timezone.utc) - timedelta(seconds=5))
    port = free_port()
    log = tmp_path / "stderr.log"
    people = {user: {"name": f"Person {user}", "phone": "07700 900123"} for user in (REQUESTER, COMPANION, DSL, HEAD, OFFICE, SENIOR, DEPUTY, ELT, FAMILY_SUPPORT)}
    with SimSlack(users=people) as sim, log.open("w") as stderr:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VISITSAFE_", "PORT"))},
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "serve-test-token",
            "SLACK_SIGNING_SECRET": "serve-test-secret",
            "SLACK_API_URL": sim.base_url,
            "VISITSAFE_DB": str(tmp_path / "visitsafe.db"),
            "VISITSAFE_CONFIG": str(tmp_path / "visitsafe.yml"),
            "PORT": str(port),
        }
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_for(lambda: healthy(port), 30, "/healthz on $PORT")
            wait_for(lambda: sum(alerts_for(sim, visit.id).values()) == 1, 30, "the visitor's overdue alert")
            driver = Driver(f"http://127.0.0.1:{port}/slack/events", "serve-test-secret", sim)
            assert driver.command(REQUESTER, "/visits").status == 200
            time.sleep(3)  # three more sweep ticks, each of which must log nothing
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert any(f"serving on http://127.0.0.1:{port}" in line for line in lines), lines
    assert not [line for line in lines if "apscheduler" in line or "Running job" in line or "executed successfully" in line]
    assert not [line for line in lines if " WARNING " in line or " ERROR " in line], lines
    assert [line for line in lines if line.endswith(f"handled /visits from {REQUESTER}")] != []
    assert len([line for line in lines if "handled /visits" in line]) == 1
    alert_lines = [line for line in lines if "alert about visit" in line]
    assert len(alert_lines) == 1 and alert_lines[0].endswith(f"alert about visit {visit.id} delivered to {REQUESTER}")
    # No personal data: the visit's address and phone numbers stay out of the log.
    text = log.read_text()
    assert visit.details.address not in text and visit.details.contact_phone not in text and "07700 900123" not in text


def test_version():
    result = visitsafe("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "visitsafe 0.1.0"


def test_every_subcommands_help_describes_its_options_and_defaults():
    options = {"run": ["--host", "--example"], "serve": ["--port", "--host", "--example"], "check-config": ["file", "--example"], "demo": ["--verbose", "--overdue"]}
    for command, names in options.items():
        result = visitsafe(command, "--help")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        for name in names:
            assert name in text, (command, name)
        assert text.count("default") >= len(names), (command, text)
    serve = " ".join(visitsafe("serve", "--help").stdout.split())
    assert "(default: $PORT, else 3000)" in serve and "(default: 127.0.0.1" in serve
