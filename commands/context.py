"""What every command handler needs: the store, the policy and the clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from commands.direct import DirectSends
from flows.messages import Button
from flows.policy import Policy
from storage.store import Store


class CommandError(Exception):
    """A command that cannot be done; the message tells the user what to do instead."""


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
    # A chat-profile phone lookup (may be slow or fail: returns None then).
    lookup_phone: Callable[[str], str | None] = field(default=lambda user: None)
    # Alerts sent straight through the Messenger while the database cannot be written.
    direct: DirectSends = field(default_factory=DirectSends)

    def now(self) -> datetime:
        """The injected current time."""
        return self.clock()

    def phone(self, user: str) -> str | None:
        """A member of staff's mobile: the policy's staff directory first, then their chat profile."""
        entry = self.policy.staff.get(user)
        if entry is not None and entry.mobile:
            return entry.mobile
        return self.lookup_phone(user)
