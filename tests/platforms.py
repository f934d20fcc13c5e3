"""A platform-neutral test harness: the test school on Slack or on Google Chat, driven the same way.

A `Site` plays the people (`command`, `click`, `submit_form`), shows what they see (`messages`, plain
text as a person reads it), breaks the platform (`fail_for_a_while`/`recover`), runs the sweep (`tick`)
and owns the clock. People are named by role ("requester", "dsl", "office"), spaces by "#office" and "#safeguarding", never by id.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.emoji import emojize
from bot.clock import FixedClock
from tests.faults.alerts import check_each_once_in_order, is_alert
from tests.conftest import (
    COMPANION, DEPUTY, DSL, ELT, FAMILY_SUPPORT, HEAD, OFFICE, OFFICE_CHANNEL, POLICY, REQUESTER,
    SAFEGUARDING_CHANNEL, SENIOR, USERS, Workspace,
)

PLATFORMS = ("slack", "google_chat")
SLACK_IDS = {
    "requester": REQUESTER, "companion": COMPANION, "dsl": DSL, "deputy": DEPUTY, "head": HEAD, "office": OFFICE,
    "senior": SENIOR, "elt": ELT, "family_support": FAMILY_SUPPORT,
}
SLACK_PLACES = {"#office": OFFICE_CHANNEL, "#safeguarding": SAFEGUARDING_CHANNEL}
# The same school on Chat: people are users/<digits>, channels are spaces.
CHAT_IDS = {role: "users/" + user[1:] for role, user in SLACK_IDS.items()}
CHAT_PLACES = {"#office": "spaces/OFFICE", "#safeguarding": "spaces/SAFE"}


def chat_policy() -> dict[str, Any]:
    """The test school's policy on Google Chat: the same roles and ladder, Chat ids, mobiles from `staff`."""
    raw = json.loads(json.dumps(POLICY))
    slack_to_chat = {slack: CHAT_IDS[role] for role, slack in SLACK_IDS.items()}
    raw["platform"] = "google_chat"
    raw["channels"] = {"office": CHAT_PLACES["#office"], "safeguarding": CHAT_PLACES["#safeguarding"]}
    raw["roles"] = {role: [slack_to_chat[u] for u in users] for role, users in raw["roles"].items()}
    raw["staff"] = {slack_to_chat[u]: {"name": p["name"], **({"mobile": p["phone"]} if p.get("phone") else {})} for u, p in USERS.items()}
    return raw


@dataclass(frozen=True)
class Seen:
    """A message as a person sees it now: `text` is plain (names, emoji, no markup); `raw` the platform's own."""

    id: str
    text: str
    raw: Any

    def __contains__(self, words: str) -> bool:
        return words in self.text


@dataclass(frozen=True)
class Answer:
    """What a person saw in answer to their own action (a reply only they see), and the HTTP status."""

    status: int
    text: str


_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def as_seen(text: str, names: dict[str, str]) -> str:
    """Markup as a person reads it: mentions as @Name, emoji drawn, no bold asterisks or backticks, entities decoded."""
    text = re.sub(r"<@([^>\s]+)>", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = re.sub(r"@(users/\d+)", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _BOLD.sub(r"\1", emojize(text)).replace("`", "")
    return html.unescape(text).replace("\u2039", "<").replace("\u203a", ">")


class Site:
    """The test school on one platform; see the module docstring."""

    platform: str
    ids: dict[str, str]
    places: dict[str, str]
    clock: FixedClock

    def id(self, who: str) -> str:
        """A person's (or place's) id on this platform."""
        return self.ids.get(who) or self.places[who]

    def role_of(self, place_id: str) -> str:
        return {v: k for k, v in {**self.ids, **self.places}.items()}.get(place_id, place_id)

    @property
    def store(self):
        return self.runtime.store

    def tick(self) -> None:
        """One sweep, and the outbox drained."""
        self.runtime.tick()

    def at(self, hour: int, minute: int) -> None:
        """Move the clock to hh:mm (London = UTC in November) and run one sweep."""
        self.clock.set(self.clock().replace(hour=hour, minute=minute))
        self.tick()

    def messages(self, where: str) -> list[Seen]:
        raise NotImplementedError

    def alerts_in(self, where: str, visit: int = 1) -> list[Seen]:
        """Alert messages about a visit in a place or a person's DM, as they read now."""
        return [m for m in self.messages(where) if f"#{visit}" in m.text and is_alert(m.text)]

    def assert_each_alert_once_in_order(self, expected: dict[str, int]) -> list[tuple[str, str]]:
        """Every alert the platform accepted, exactly once; `expected` alerts per destination (by role); each
        destination's in ladder order. Returns (destination, text) of the alerts."""
        return check_each_once_in_order(self.delivered_alerts(), expected)


class SlackSite(Site):
    """The test school on the simulated Slack (tests/conftest.py's Workspace)."""

    platform = "slack"
    ids, places = SLACK_IDS, SLACK_PLACES

    def __init__(self, tmp_path, policy, clock: FixedClock):
        self.ws = Workspace(tmp_path, policy, clock)
        self.sim, self.runtime, self.clock, self.driver = self.ws.sim, self.ws.runtime, clock, self.ws.driver
        self.names = {user: p["name"] for user, p in USERS.items()}

    def _seen(self, text: str) -> str:
        return as_seen(text, self.names)

    def _answer(self, user: str, response: Any, ephemerals_before: int) -> Answer:
        said = [response.text] + [e.plain() for e in self.sim.ephemerals(user)[ephemerals_before:]]
        return Answer(response.status, self._seen("\n".join(s for s in said if s)))

    def command(self, who: str, name: str, text: str = "") -> Answer:
        user = self.id(who)
        before = len(self.sim.ephemerals(user))
        return self._answer(user, self.driver.command(user, name, text), before)

    def click(self, who: str, message: Seen, label: str) -> Answer:
        user = self.id(who)
        before = len(self.sim.ephemerals(user))
        return self._answer(user, self.driver.click(user, message.raw, label, channel=message.raw.channel), before)

    def form_title(self, who: str) -> str:
        return self.driver.view(self.id(who))["title"]["text"]

    def submit_form(self, who: str, answers: dict[str, Any]) -> Answer:
        """Submit the form `who` has open; the answer's text is the form's error messages, if any."""
        response = self.driver.submit(self.id(who), answers)
        body = response.body if isinstance(response.body, dict) else {}
        errors = body.get("errors") or {}
        return Answer(response.status, self._seen("\n".join(errors.values())))

    def messages(self, where: str) -> list[Seen]:
        return [Seen(m.ts, self._seen(m.plain()), m) for m in self.sim.messages(self.id(where))]

    def fail_for_a_while(self) -> None:
        self.sim.down()

    def recover(self) -> None:
        self.sim.up()

    def delivered_alerts(self) -> list[tuple[str, str]]:
        return [
            (self.role_of(call.params["channel"]), self._seen(call.params["text"]))
            for call in self.sim.calls_to("chat.postMessage")
            if not call.failed and not call.error and is_alert(call.params.get("text") or "")
        ]

    def everything_sent(self) -> str:
        """Every request the bot made of the platform, as JSON text."""
        return json.dumps([c.params for c in self.sim.calls], ensure_ascii=False)

    def tampered_click(self, who: str, action_id: str, value: str) -> Answer:
        """A correctly signed click whose button value was edited by the client."""
        user = self.id(who)
        before = len(self.sim.ephemerals(user))
        return self._answer(user, self.driver.action(user, action_id, value), before)

    def forged_command(self, who: str, name: str, text: str, how: str) -> int:
        """A command with no signature ('unsigned') or a wrong one ('bad'): the HTTP status."""
        from bot.simslack.driver import command_body
        from bot.simslack.server import sign_request

        user = self.id(who)
        body = command_body(self.sim, user, name, text, self.sim.new_trigger_id(user))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if how == "bad":
            headers.update(sign_request("not-the-signing-secret", body))
        return self.driver.post(body, headers).status

    def close(self) -> None:
        self.ws.close()


def make_site(platform: str, tmp_path, clock: FixedClock) -> Site:
    """The test school running on `platform` ("slack" or "google_chat")."""
    from flows.policy import parse_policy

    if platform == "slack":
        return SlackSite(tmp_path, parse_policy(POLICY), clock)
    try:
        from bot.gchat import app  # noqa: F401 - the Chat endpoint (issue 13, branch chat-app)
    except ImportError:
        import pytest

        pytest.skip("the Google Chat endpoint (bot/gchat/app.py) is not merged yet")
    return ChatSite(tmp_path, parse_policy(chat_policy()), clock)
