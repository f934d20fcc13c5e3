"""The private-conversation port on Slack: a group DM of the people and the bot (conversations.open)."""
from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from commands.context import CannotOpen
from commands.logsafe import log_failure
from flows.policy import Policy

log = logging.getLogger("visitsafe.slack")


class SlackConversations:
    """Opens a group DM of several people and the bot; called outside any transaction."""

    def __init__(self, client: WebClient):
        self.client = client

    def __call__(self, members: list[str]) -> str:
        """The id of the group DM of `members` and the bot (Slack returns the same one for the same people)."""
        try:
            # A bot token's group DM includes the bot itself (mpim:write).
            response = self.client.conversations_open(users=",".join(members))
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            raise CannotOpen(str(error or f"http_{exc.response.status_code}")) from None
        except (SlackClientError, OSError) as exc:
            raise CannotOpen(type(exc).__name__) from None
        return str(response["channel"]["id"])


def names(client: WebClient, policy: Policy, users: tuple[str, ...]) -> list[tuple[str, str]]:
    """(user id, name) for a picker: the policy's staff directory first, else the Slack profile, else the id."""
    named = []
    for user in users:
        entry = policy.staff.get(user)
        name = entry.name if entry is not None and entry.name else None
        if name is None:
            try:
                name = client.users_info(user=user)["user"].get("real_name") or None
            except Exception as exc:  # noqa: BLE001 - the picker still works, showing the id
                log_failure(log, f"name lookup for {user}", exc)
        named.append((user, name or user))
    return named
