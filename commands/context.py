"""What every command handler needs: the store, the policy and the clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from commands.direct import DirectSends
from flows.messages import Button
from flows.policy import Policy
from storage.store import Store


# What an alert says for a mobile no lookup has answered (slow or failing profile API).
NUMBER_UNKNOWN = "number unknown (lookup failed)"


class CommandError(Exception):
    """A command that cannot be done; the message tells the user what to do instead."""


class CannotOpen(Exception):
    """The platform did not open a private conversation; the message is its error code (no personal data)."""


def _no_private_conversations(users: list[str]) -> str:
    raise CannotOpen("not_supported")


@dataclass(frozen=True)
class Reply:
    """What the person who acted sees straight away (ephemeral)."""

    text: str
    buttons: tuple[Button, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class Ctx:
    """Shared by all commands; `wake` nudges the outbox dispatcher after a commit."""

    store: Store
    policy: Policy
    clock: Callable[[], datetime]
    wake: Callable[[], None] = field(default=lambda: None)
    # A chat-profile phone cache: answers at once (the number, None for none on file, or
    # NUMBER_UNKNOWN) and never calls the platform itself, so it is safe inside a transaction.
    lookup_phone: Callable[[str], str | None] = field(default=lambda user: None)
    # Alerts sent straight through the Messenger while the database cannot be written.
    direct: DirectSends = field(default_factory=DirectSends)
    # Opens a private conversation of these people and the bot; returns its id (a remote call:
    # never inside a transaction). Slack: a group DM; Google Chat: a space of the people and the app.
    open_private_conversation: Callable[[list[str]], str] = field(default=_no_private_conversations)

    def now(self) -> datetime:
        """The injected current time."""
        return self.clock()

    def phone(self, user: str) -> str | None:
        """A member of staff's mobile as an alert shows it, without waiting: the policy's staff
        directory first, then the profile cache (None: no mobile on file; or NUMBER_UNKNOWN)."""
        entry = self.policy.staff.get(user)
        if entry is not None and entry.mobile:
            return entry.mobile
        return self.lookup_phone(user)

    def warm_phones(self, users: tuple[str, ...] | list[str]) -> None:
        """Have these people's mobiles looked up now (in the background), before any alert needs them."""
        for user in users:
            self.phone(user)
