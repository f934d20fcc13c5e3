"""`visitsafe doctor` on Google Chat: can everyone the policy must reach be sent a direct message?"""
from __future__ import annotations

from bot.doctor import dm_roles
from bot.gchat.messenger import ChatMessenger
from flows.policy import Policy


def chat_problems(messenger: ChatMessenger, policy: Policy) -> list[str]:
    """One line per person an approval or alert must reach who has not added the app (or could not be checked)."""
    problems = []
    for role in dm_roles(policy):
        for user in policy.roles.holders(role):
            try:
                space = messenger.direct_message_space(user)
            except Exception as exc:  # noqa: BLE001 - one line per person, never a traceback
                problems.append(f"roles.{role.value}: {user} could not be checked ({type(exc).__name__}): run `visitsafe doctor` again.")
                continue
            if space is None:
                problems.append(
                    f"roles.{role.value}: {user} has not added VisitSafe in Google Chat, so approvals and alerts cannot reach them"
                    " directly (they fall back to the safeguarding space): ask them to open Google Chat, find VisitSafe under"
                    " Apps and start a chat with it."
                )
    return list(dict.fromkeys(problems))
