"""`visitsafe doctor`: can this bot, with this token and this policy, reach everyone it must alert?"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.settings import BOT_PREFIX
from bot.slack.messenger import TOKEN
from flows.policy import ROLE_AUDIENCES, Policy, Role

log = logging.getLogger("visitsafe.doctor")

MANIFEST = Path(__file__).resolve().parent.parent / "app_manifest.yml"
# The manifest's bot scopes, for an installation that does not ship app_manifest.yml.
MANIFEST_SCOPES = (
    "commands", "chat:write", "im:write", "mpim:write", "users:read", "im:history", "groups:history",
    "channels:history", "groups:read", "channels:read", "files:write",
)
# The token itself is wrong, revoked or of the wrong kind: every call will fail the same way.
UNAUTHORIZED = TOKEN - {"missing_scope", "no_permission"}
OK, UNREACHABLE, REFUSED = "ok", "unreachable", "unauthorized"
REINSTALL = "api.slack.com/apps > your app > OAuth & Permissions"
COPY_ID = "in Slack open their profile, ⋮ > Copy member ID"


def needed_scopes(manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The bot scopes app_manifest.yml asks for."""
    try:
        return tuple(yaml.safe_load(manifest.read_text())["oauth_config"]["scopes"]["bot"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return MANIFEST_SCOPES


def slack_state(exc: BaseException) -> str:
    """What a failed Web API call says about Slack: unreachable, or refusing the token (or 'ok': it answered)."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if error in UNAUTHORIZED:
            return REFUSED
        return UNREACHABLE if exc.response.status_code >= 500 or not error else OK
    return UNREACHABLE if isinstance(exc, (SlackClientError, OSError)) else OK


def _error(exc: Exception) -> str:
    """Slack's error code, or the kind of failure: never the message (it may carry what was sent)."""
    if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    if isinstance(exc, SlackApiError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def dm_roles(policy: Policy) -> list[Role]:
    """Roles the bot must be able to DM: approvers, ladder and board audiences, and the DSLs and head (every SOS)."""
    rules = [policy.approvals, policy.approvals.senior_leader_own_visit, policy.approvals.emergency]
    wanted: list[str] = [Role.dsl.value, Role.head.value]
    wanted += [role.value for rule in rules if rule for slot in rule.slots() for role in slot]
    wanted += [a for tier in policy.escalation for a in tier.notify if a in ROLE_AUDIENCES]
    wanted += [a for a in policy.board if a in ROLE_AUDIENCES]
    return [Role(r) for r in dict.fromkeys(wanted)]


class _Stop(Exception):
    """Slack stopped answering, or refused the token, during a check."""

    def __init__(self, state: str, exc: Exception):
        super().__init__(state)
        self.state, self.exc = state, exc


@dataclass
class Diagnosis:
    """What the doctor found: Slack's state and one line (with its fix) per problem."""

    slack: str = OK
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.slack == OK and not self.problems


class Doctor:
    """Runs the checks with one Web API client; every call is outside any transaction."""

    def __init__(self, client: WebClient, policy: Policy, scopes: tuple[str, ...] | None = None):
        self.client, self.policy = client, policy
        self.scopes = needed_scopes() if scopes is None else scopes

    def run(self) -> Diagnosis:
        """Every check, in the order a person would fix them; stops early if Slack or the token fails."""
        found = Diagnosis()
        if not self.client.token:
            found.slack = REFUSED
            found.problems.append(f"SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token from {REINSTALL}.")
            return found
        try:
            answer = self.client.auth_test()
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            found.slack = slack_state(exc) if slack_state(exc) != OK else UNREACHABLE
            found.problems.append(self._token_problem(exc, found.slack))
            return found
        try:
            found.problems += self._scopes(answer.headers)
            found.problems += self._channels()
            found.problems += self._people()
        except _Stop as stop:  # the token or the network failed midway: the rest cannot be known
            found.slack = stop.state
            found.problems = [self._token_problem(stop.exc, stop.state)]
        return found

    @staticmethod
    def _ask(method: Callable[..., Any], **kwargs: Any) -> tuple[Any, str | None]:
        """One Web API call: (answer, None) or (None, Slack's error); a refused token or an unreachable Slack stops the check."""
        try:
            return method(**kwargs), None
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            if slack_state(exc) != OK:
                raise _Stop(slack_state(exc), exc) from None
            return None, _error(exc)

    def _token_problem(self, exc: Exception, state: str) -> str:
        if state == UNREACHABLE:
            return (f"Slack could not be reached at {self.client.base_url} ({_error(exc)}): check this machine's"
                    " internet access (and proxy), or Slack's status page, then run `visitsafe doctor` again.")
        return (f"Slack refused SLACK_BOT_TOKEN ({_error(exc)}): copy the Bot User OAuth Token (it starts {BOT_PREFIX})"
                f" again from {REINSTALL}, reinstalling the app if it was removed.")

    def _scopes(self, headers: Any) -> list[str]:
        granted_header = next((v for k, v in dict(headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
        if granted_header is None:
            return ["Slack did not say which scopes the token has (no x-oauth-scopes header): check them by hand"
                    f" under {REINSTALL} > Scopes against app_manifest.yml."]
        granted = {s.strip() for s in str(granted_header).split(",")}
        missing = [s for s in self.scopes if s not in granted]
        if not missing:
            return []
        return [f"The app lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}: add {'them' if len(missing) > 1 else 'it'}"
                f" under {REINSTALL} > Bot Token Scopes (or recreate the app from app_manifest.yml), then reinstall the app."]

    def _channels(self) -> list[str]:
        problems = []
        for name in ("office", "safeguarding"):
            channel = getattr(self.policy.channels, name)
            where = f"The {name} channel {channel} (channels.{name})"
            answer, error = self._ask(self.client.conversations_info, channel=channel)
            if error == "channel_not_found":
                problems.append(f"{where} cannot be seen by the bot: in Slack open the channel and type /invite @VisitSafe;"
                                " if it still fails, copy the channel's id (channel name > About > Channel ID) into visitsafe.yml.")
                continue
            if error:
                problems.append(f"{where} could not be checked ({error}): run `visitsafe doctor` again.")
                continue
            info = answer["channel"]
            if not info.get("is_member"):
                problems.append(f"{where}: the bot is not a member, so alerts cannot be posted: in Slack open the channel and type /invite @VisitSafe.")
            if not info.get("is_private"):
                problems.append(f"{where} is public: alerts name staff and pupils, so make it private"
                                " (channel name > Settings > Change to a private channel) or use a private channel.")
        return problems

    def _people(self) -> list[str]:
        problems, dm = [], {u for role in dm_roles(self.policy) for u in self.policy.roles.holders(role)}
        for role in Role:
            for user in self.policy.roles.holders(role):
                if user[:1] not in ("U", "W"):
                    continue  # a user group or a malformed id: check-config speaks to those
                problem = self._person(user, f"roles.{role.value}", user in dm)
                if problem:
                    problems.append(problem)
        return list(dict.fromkeys(problems))

    def _person(self, user: str, where: str, must_dm: bool) -> str | None:
        answer, error = self._ask(self.client.users_info, user=user)
        if error == "user_not_found":
            return f"{where}: {user} is not a person in this workspace: {COPY_ID}, and put that id in visitsafe.yml."
        if error:
            return f"{where}: {user} could not be checked ({error}): run `visitsafe doctor` again."
        person = answer["user"]
        if person.get("deleted"):
            return f"{where}: {user} is deactivated in Slack and would never see an alert: put who now holds the role in visitsafe.yml."
        if person.get("is_bot"):
            return f"{where}: {user} is a bot, not a person: {COPY_ID}, and put that id in visitsafe.yml."
        error = self._ask(self.client.conversations_open, users=user)[1] if must_dm else None
        if error:
            return (f"{where}: {user} cannot be sent a direct message ({error}), so approvals and alerts would not reach them:"
                    " check they are a full member of the workspace (not a guest) and that VisitSafe's Messages tab is on"
                    " (api.slack.com/apps > your app > App Home > Show Tabs).")
        return None


class SlackWatch:
    """Slack's state as last seen: by the start-up check, then by every Web API answer since."""

    RECHECK_AFTER_S = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: str | None = None
        self.problems: list[str] = []
        self._checking = False
        self._checked_at = float("-inf")
        self._stopped_early = False  # the last check could not get past the token or the network

    def saw(self, state: str) -> None:
        """One Web API answer (or failure to get one)."""
        with self._lock:
            self.state = state
            if state == OK and self._stopped_early:
                # Its one line is no longer true; the checks it could not run are due at the next tick.
                self.problems, self._stopped_early, self._checked_at = [], False, float("-inf")

    def checked(self, found: Diagnosis) -> None:
        """A whole doctor's check."""
        with self._lock:
            self.state, self.problems, self._checking = found.slack, list(found.problems), False
            self._stopped_early = found.slack != OK

    def claim_check(self, first: bool = False) -> bool:
        """Whether a check should start now: none under way, and (`first`) none ran yet, or the last was bad and old."""
        with self._lock:
            never = self._checked_at == float("-inf")
            due = (first and never) or (time.monotonic() - self._checked_at >= self.RECHECK_AFTER_S and (self.problems or self.state != OK))
            if self._checking or not due:
                return False
            self._checking, self._checked_at = True, time.monotonic()
            return True

    @property
    def healthy(self) -> bool:
        with self._lock:
            return self.state == OK and not self.problems


class WatchedClient(WebClient):
    """A WebClient that tells a SlackWatch how each call went."""

    def __init__(self, *args: Any, watch: SlackWatch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.watch = watch

    def api_call(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            answer = super().api_call(*args, **kwargs)
        except Exception as exc:
            self.watch.saw(slack_state(exc))
            raise
        self.watch.saw(OK)
        return answer


def run_and_log(client: WebClient, policy: Policy, report: Callable[[Diagnosis], None]) -> Diagnosis:
    """The start-up check: run it, log one line per problem (ids and codes only), hand the result on."""
    try:
        found = Doctor(client, policy).run()
    except Exception as exc:  # noqa: BLE001 - a bug here must not stop the bot
        log.error("start-up check failed: %s", type(exc).__name__)
        found = Diagnosis(slack=slack_state(exc), problems=[f"the start-up check failed ({type(exc).__name__})"])
    for problem in found.problems:
        log.warning("set-up problem: %s", problem)
    if found.ok:
        log.info("start-up check: Slack ok, both channels private with the bot in them, everyone in a role reachable")
    report(found)
    return found
