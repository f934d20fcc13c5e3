"""Shared fixtures: a policy, a fixed clock, and a whole simulated workspace for end-to-end tests."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Iterator

import pytest
import yaml

from bot.clock import FixedClock
from bot.runtime import Runtime
from bot.serving import Server
from bot.settings import Settings
from bot.simslack import SimSlack
from bot.simslack.driver import Driver
from flows.policy import Policy, parse_policy

# People of the test school.
REQUESTER, COMPANION, DSL, HEAD, OFFICE, SENIOR, DEPUTY = "U10", "U11", "U01", "U02", "U03", "U04", "U09"
OFFICE_CHANNEL, SAFEGUARDING_CHANNEL = "C0OFFICE", "C0SAFE"
# In no approval rule, ladder tier or board: they are here for /confidential.
ELT, FAMILY_SUPPORT = "U05", "U06"

POLICY = {
    "school": "Example Primary",
    "timezone": "Europe/London",
    "channels": {"office": OFFICE_CHANNEL, "safeguarding": SAFEGUARDING_CHANNEL},
    "roles": {"dsl": [DSL, DEPUTY], "head": [HEAD], "senior_leader": [SENIOR], "office": [OFFICE], "elt": [ELT], "family_support": [FAMILY_SUPPORT]},
    "approvals": {"all_of": ["dsl", "head"]},
    "pairs_required": True,
    "visiting_hours": {"start": "08:00", "end": "17:30"},
    "checkin_interval": "30m",
    "sweep_interval": "15s",
    "escalation": [
        {"after": "0m", "notify": ["visitor"]},
        {"after": "15m", "notify": ["office"]},
        {"after": "30m", "notify": ["safeguarding", "dsl"]},
        {"after": "60m", "notify": ["head", "dsl"]},
    ],
    "record_deadline": "24h",
    "retention": "365d",
}

# The test school's Slack directory.
USERS = {
    REQUESTER: {"name": "Sam Visitor", "phone": "07700 900010"},
    COMPANION: {"name": "Chris Companion", "phone": "07700 900011"},
    DSL: {"name": "Jo Reid", "phone": "07700 900001"},
    HEAD: {"name": "Pat Head", "phone": "07700 900002"},
    DEPUTY: {"name": "Dee Deputy"},
    SENIOR: {"name": "Sue Senior"},
    OFFICE: {"name": "Alex Office"},
    ELT: {"name": "Lee Leader", "phone": "07700 900005"},
    FAMILY_SUPPORT: {"name": "Fran Support", "phone": "07700 900006"},
}

# Monday 23 November 2026, 09:00 in London (GMT).
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def make_policy(**changes: object) -> Policy:
    """The test school's policy with some settings changed."""
    return parse_policy({**POLICY, **changes})


@pytest.fixture
def policy() -> Policy:
    return make_policy()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_9AM)


class Workspace:
    """A running bot, served over HTTP, talking to a simulated Slack; the driver plays the people."""

    def __init__(self, tmp_path, policy: Policy, clock: FixedClock):
        self.sim = SimSlack(
            users=USERS,
            clock=lambda: clock().timestamp(),  # message ts on the test's clock, as the bot's lookups expect
        ).start()
        self.secret = secrets.token_hex(16)
        self.settings = Settings(
            slack_bot_token="test-bot-token",
            slack_signing_secret=self.secret,
            slack_api_url=self.sim.base_url,
            visitsafe_db=tmp_path / "visitsafe.db",
            visitsafe_config=tmp_path / "visitsafe.yml",
        )
        (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(POLICY))
        self.clock = clock
        self.runtime = Runtime(self.settings, policy, clock, process_before_response=True)
        self.server = Server(self.runtime.wsgi).start()
        self.url = f"http://127.0.0.1:{self.server.port}/slack/events"
        self.driver = Driver(self.url, self.secret, self.sim, settle=self.runtime.settle)

    def dms(self, user: str) -> list:
        """Messages the bot has sent `user` directly, as they look now."""
        return self.sim.messages(user)

    def channel(self, channel: str) -> list:
        return self.sim.messages(channel)

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()
        self.sim.stop()


@pytest.fixture
def workspace(tmp_path, policy, clock) -> Iterator[Workspace]:
    ws = Workspace(tmp_path, policy, clock)
    try:
        yield ws
    finally:
        ws.close()


def visit_form(**changes: object) -> dict[str, object]:
    """Step 1 answers for a visit today at 10:00, by block id."""
    answers: dict[str, object] = {
        "pupil_ref": "AB123",
        "address": "12 Example Road, Botley OX2 9AA",
        "contact_phone": "01632 960123",
        "reason": "attendance",
        "visit_type": "doorstep",
        "planned": "planned",
        "date": "2026-11-23",
        "start_time": "10:00",
        "duration": "45m",
        "travel_mode": "car",
        "travel_details": "AB12 CDE, blue Ford Focus",
        "parents_informed": "yes",
    }
    answers.update(changes)
    return answers


def risk_form(**changes: object) -> dict[str, object]:
    """Step 2 answers: no risks, allergies none, one companion."""
    answers: dict[str, object] = {"risks": [], "allergies": "none", "companions": [COMPANION]}
    answers.update(changes)
    return answers


