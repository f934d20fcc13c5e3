"""Alerts sent straight through the Messenger when the database cannot be written (the outbox needs writes)."""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Callable

from commands.logsafe import log_failure
from flows.messages import Message
from storage.store import Tx

log = logging.getLogger("visitsafe.direct")

Post = Callable[[Message], "tuple[str, str]"]


def _no_messenger(message: Message) -> tuple[str, str]:
    raise RuntimeError("no messenger wired")


class DirectSends:
    """Best-effort delivery that bypasses the outbox, remembering in this process each key it sent, so
    the sweep marks those sent (never sends them again) once the database can be written."""

    def __init__(self, post: Post = _no_messenger):
        self.post = post
        self._sent: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._unrecorded: list[Any] = []

    def send(self, messages: list[Message]) -> int:
        """Post each message not sent directly before; return how many were delivered."""
        delivered = 0
        with self._lock:  # one direct send at a time: a key is never in flight twice
            for message in messages:
                if message.key in self._sent:
                    continue
                try:
                    self._sent[message.key] = self.post(message)
                    delivered += 1
                except Exception as exc:  # noqa: BLE001 - best effort: the others must still go
                    log_failure(log, "direct alert", exc)
        # Counts only: destinations and texts may name people and places.
        log.error("database not writable: %d of %d alerts sent directly, bypassing the outbox", delivered, len(messages))
        return delivered

    def sent(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message this process sent directly, if it did."""
        with self._lock:
            return self._sent.get(key)

    def remember(self, event: Any) -> None:
        """An event (e.g. an SOS) to record in the database once it can be written, so its repeats run."""
        with self._lock:
            self._unrecorded.append(event)

    def take(self) -> list[Any]:
        """The events still to record, oldest first (the caller remembers again any it cannot record)."""
        with self._lock:
            events, self._unrecorded = self._unrecorded, []
            return events


def mark_sent_directly(direct: DirectSends, tx: Tx, messages: list[Message], now: datetime) -> None:
    """Queued messages this process already sent directly are marked sent, so they are never sent again."""
    for message in messages:
        where = direct.sent(message.key)
        if where is not None:
            tx.mark_sent_key(message.key, now, message.ref, *where)
