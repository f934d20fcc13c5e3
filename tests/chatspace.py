"""A whole simulated Google Chat workspace for end-to-end tests: the real Runtime (platform google_chat) served
over HTTP by waitress, events from ChatDriver with JWTs minted by SimChat, the Chat API faked by SimChat."""
from __future__ import annotations

from typing import Any

import yaml

from bot.clock import FixedClock
from bot.runtime import Runtime
from bot.serving import Server
from bot.settings import Settings
from bot.simchat import SimChat
from bot.simchat.driver import ChatDriver
from flows.policy import Policy, parse_policy
from tests import conftest as slack

# The test school's people as Chat users (the same roles as tests/conftest.py's Slack ids).
CHAT_ID = {
    slack.REQUESTER: "users/110", slack.COMPANION: "users/111", slack.DSL: "users/101", slack.HEAD: "users/102",
    slack.OFFICE: "users/103", slack.SENIOR: "users/104", slack.DEPUTY: "users/109", slack.ELT: "users/105",
    slack.FAMILY_SUPPORT: "users/106",
}
REQUESTER, COMPANION, DSL, HEAD = (CHAT_ID[u] for u in (slack.REQUESTER, slack.COMPANION, slack.DSL, slack.HEAD))
OFFICE, SENIOR, DEPUTY, ELT, FAMILY_SUPPORT = (CHAT_ID[u] for u in (slack.OFFICE, slack.SENIOR, slack.DEPUTY, slack.ELT, slack.FAMILY_SUPPORT))
OFFICE_SPACE, SAFEGUARDING_SPACE, ELT_SPACE = "spaces/AAAAoffice", "spaces/AAAAsafe", "spaces/AAAAelt"
AUDIENCE = "123456789012"  # a Cloud project number
NAMES = {CHAT_ID[u]: entry["name"] for u, entry in slack.USERS.items()}
# Chat profiles have no phone: the mobiles the Slack profiles carry are in the policy's staff directory instead.
STAFF = {CHAT_ID[u]: {"name": entry["name"], **({"mobile": entry["phone"]} if "phone" in entry else {})} for u, entry in slack.USERS.items()}


def chat_policy_data(**changes: Any) -> dict[str, Any]:
    """The test school's policy (tests/conftest.py POLICY) on Google Chat, with some settings changed."""
    data: dict[str, Any] = {
        **slack.POLICY,
        "platform": "google_chat",
        "channels": {"office": OFFICE_SPACE, "safeguarding": SAFEGUARDING_SPACE},
        "roles": {role: [CHAT_ID[u] for u in people] for role, people in slack.POLICY["roles"].items()},  # type: ignore[union-attr]
        "staff": STAFF,
    }
    data.update(changes)
    return data


def chat_policy(**changes: Any) -> Policy:
    return parse_policy(chat_policy_data(**changes))


class SettlingDriver(ChatDriver):
    """A ChatDriver that, after each answer, lets the bot deliver what the action queued (as a running bot would)."""

    def __init__(self, url: str, sim: SimChat, audience: str, settle: Any):
        super().__init__(url, sim, audience)
        self.settle = settle

    def send(self, event: dict[str, Any], token: str | None = None, authorization: str | None = None) -> Any:
        answer = super().send(event, token, authorization)
        self.settle()
        return answer


class ChatWorkspace:
    """A running bot on Google Chat, served over HTTP; `driver` plays the people, `sim` is Chat."""

    def __init__(self, tmp_path, policy: Policy, clock: FixedClock, audience: str = AUDIENCE):
        self.sim = SimChat(users=NAMES, spaces={OFFICE_SPACE: "Visits office", SAFEGUARDING_SPACE: "Safeguarding", ELT_SPACE: "ELT confidential"}).start()
        self.audience = audience
        self.settings = Settings(
            google_chat_audience=audience,
            google_chat_certs_url=self.sim.certs_url,
            google_chat_api_url=self.sim.base_url,
            google_application_credentials=self.sim.write_service_account(),
            visitsafe_db=tmp_path / "visitsafe.db",
            visitsafe_config=tmp_path / "visitsafe.yml",
        )
        (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(chat_policy_data()))
        self.clock = clock
        self.runtime = Runtime(self.settings, policy, clock)
        self.server = Server(self.runtime.wsgi).start()
        self.url = f"http://127.0.0.1:{self.server.port}/gchat/events"
        self.driver = SettlingDriver(self.url, self.sim, audience, self.runtime.settle)

    def dms(self, user: str) -> list:
        """Messages the app has sent `user` in their DM, as they look now."""
        return self.sim.messages(user)

    def channel(self, space: str) -> list:
        return self.sim.messages(space)

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()
        self.sim.stop()
