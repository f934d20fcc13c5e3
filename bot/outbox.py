"""Delivers queued messages through a Messenger, with retries, in order, once each."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Protocol

from commands.logsafe import log_failure
from flows.messages import Message
from storage.store import Store

log = logging.getLogger("visitsafe.outbox")

# An alert held back by a minute of exponential backoff after Slack recovers is a late alert.
MAX_BACKOFF = timedelta(seconds=4)


class TryLater(Exception):
    """A passing failure (rate limit, server error, network); `retry_after` in seconds if known."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Undeliverable(Exception):
    """The platform will never accept this message as addressed (unknown channel, bad blocks)."""


class Messenger(Protocol):
    """The only way out of the bot: post a message or replace one already posted."""

    def post(self, message: Message) -> tuple[str, str]:
        """Post; return (channel id, message ts)."""

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """Replace a posted message's content."""


def backoff(attempts: int) -> timedelta:
    """0.5 s, 1 s, 2 s, then MAX_BACKOFF."""
    return min(timedelta(seconds=0.5 * (2 ** attempts)), MAX_BACKOFF)


class Dispatcher:
    """Sends what the outbox holds; one per process, on its own thread (or drained by tests)."""

    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        clock: Callable[[], datetime],
        may_send: Callable[[], bool] = lambda: True,
    ):
        self.store = store
        # Only the process holding the sweep lease sends, so two instances never send one message twice.
        self.may_send = may_send
        self.messenger = messenger
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def drain(self) -> int:
        """Send every message that is due now; return how many were delivered."""
        with self._lock:  # one drain at a time: a message is never in flight twice from here
            delivered = 0
            if not self.may_send():
                return 0
            while True:
                batch = self.store.read().due_messages(self.clock())
                if not batch:
                    return delivered
                blocked: set[str] = set()
                progress = False
                for row_id, attempts, message in batch:
                    # Keep each destination's messages in order: after a failure, the rest wait.
                    if message.to in blocked:
                        continue
                    if self._deliver(row_id, attempts, message):
                        delivered += 1
                        progress = True
                    else:
                        blocked.add(message.to)
                if not progress:
                    return delivered

    def _deliver(self, row_id: int, attempts: int, message: Message) -> bool:
        try:
            if message.replaces:
                where = self.store.read().message_ref(message.replaces)
                if where is not None:
                    self.messenger.update(where[0], where[1], message)
                    channel, message_ts = where
                else:
                    # The original never arrived: post the up-to-date version instead.
                    channel, message_ts = self.messenger.post(replace(message, replaces=None))
            else:
                channel, message_ts = self.messenger.post(message)
        except TryLater as exc:
            wait = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else backoff(attempts)
            with self.store.transaction() as tx:
                tx.retry_later(row_id, self.clock() + wait, str(exc))
            log.warning("outbox %s: delivery deferred %.1fs (%s)", row_id, wait.total_seconds(), exc)
            return False
        except Undeliverable as exc:
            with self.store.transaction() as tx:
                tx.mark_failed(row_id, str(exc))
            log.error("outbox %s: undeliverable (%s)", row_id, exc)
            return True
        except Exception as exc:  # noqa: BLE001 - an unknown failure is retried, never dropped
            with self.store.transaction() as tx:
                tx.retry_later(row_id, self.clock() + backoff(attempts), type(exc).__name__)
            log_failure(log, f"outbox {row_id} delivery", exc)
            return False
        # Marked sent in its own short transaction right after the API answers.
        with self.store.transaction() as tx:
            tx.mark_sent(row_id, self.clock(), message.ref, channel, message_ts)
        return True

    def wake(self) -> None:
        """Ask the background thread to drain now (called after each commit)."""
        self._wake.set()

    def start(self, poll_seconds: float = 1.0) -> None:
        """Drain in a background thread until stop()."""
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.drain()
                except Exception as exc:  # noqa: BLE001 - the loop must survive a bad moment (e.g. a locked database)
                    log_failure(log, "outbox drain", exc)
                self._wake.wait(poll_seconds)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="visitsafe-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
