"""Delivers queued messages through a Messenger, with retries, in order, once each."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Protocol

from commands.logsafe import log_failure
from flows.messages import Message
from storage.store import Delivery, Store, Tx

log = logging.getLogger("visitsafe.outbox")

# An alert held back by a minute of exponential backoff after Slack recovers is a late alert.
MAX_BACKOFF = timedelta(seconds=4)
# Alerts retry sooner, and a Retry-After of an hour holds an alert back only this long.
ALERT_MAX_WAIT = timedelta(seconds=2)
# Clocks differ a little: look in Slack's history from a minute before the first attempt.
LOOKUP_MARGIN = timedelta(seconds=60)


class TryLater(Exception):
    """A passing failure (rate limit, server error, network, a refused token); `retry_after` in seconds if known.

    `maybe_sent`: the message may have been stored anyway (a timeout, a 5xx). `refused`: Slack said no to the
    token, not to the message; an alert's fallback copies go at once.
    """

    def __init__(self, reason: str, retry_after: float | None = None, *, maybe_sent: bool = False, refused: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        self.refused = refused


class Undeliverable(Exception):
    """The platform will never accept this message as addressed (unknown channel, bad blocks)."""


class Gone(Exception):
    """The message an update would rewrite no longer exists (a person deleted it): not a failure."""


class Messenger(Protocol):
    """The only way out of the bot: post a message, replace one already posted, find one posted before."""

    def post(self, message: Message, outbox_key: str | None = None) -> tuple[str, str]:
        """Post; return (channel id, message ts). `outbox_key` travels with the message so find() can see it."""

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """Replace a posted message's content."""

    def find(self, to: str, outbox_key: str, since: datetime) -> tuple[str, str] | None:
        """(channel id, ts) of a message posted to `to` since `since` with `outbox_key`, or None."""


def backoff(attempts: int, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """0.5 s, 1 s, 2 s, then the cap."""
    return min(timedelta(seconds=0.5 * (2 ** min(attempts, 16))), cap)


def wait_after(exc: TryLater, attempts: int, alert: bool) -> timedelta:
    """How long to wait before the next attempt: Retry-After if given, else backoff; an alert's wait is capped."""
    cap = ALERT_MAX_WAIT if alert else MAX_BACKOFF
    if exc.retry_after is None:
        return backoff(attempts, cap)
    wait = timedelta(seconds=max(exc.retry_after, 0.0))
    return min(wait, ALERT_MAX_WAIT) if alert else wait


class Dispatcher:
    """Sends what the outbox holds; one per process, on its own thread (or drained by tests).

    An alert is never terminal: it is retried until delivered, or dropped as superseded once its visit is over.
    An alert is posted at most once, even across a SIGKILL: it is marked in flight before the post, carries
    its outbox key in the message's metadata, and a row found in flight is looked for in Slack first.
    """

    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        clock: Callable[[], datetime],
        may_send: Callable[[], bool] = lambda: True,
        on_sent: Callable[[Tx, Delivery], None] | None = None,
    ):
        self.store = store
        # Run in the transaction that marks a message sent (e.g. an SMS gone: the chat copies waiting say so).
        self.on_sent = on_sent
        # Called after an alert is refused outright: its fallbacks and SMS should go now, not at the next tick.
        self.on_refused: Callable[[], None] = lambda: None
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
                self._supersede()
                batch = self.store.read().deliveries_due(self.clock())
                if not batch:
                    return delivered
                # destination -> whether an alert to it failed (a failed non-alert does not hold back alerts)
                blocked: dict[str, bool] = {}
                progress = False
                for due in batch:
                    # Keep each destination's messages in order: after a failure, the rest wait.
                    if due.message.to in blocked and (blocked[due.message.to] or not due.alert):
                        continue
                    if self._deliver(due):
                        delivered += 1
                        progress = True
                    else:
                        blocked[due.message.to] = blocked.get(due.message.to, False) or due.alert
                if not progress:
                    return delivered

    def _supersede(self) -> None:
        # Checked on a read first: every drain passes here, and the write lock is only worth taking to drop something.
        if not self.store.read().finished_alerts():
            return
        with self.store.transaction() as tx:
            dropped = tx.supersede_finished(self.clock())
        for row_id, visit_id in dropped:
            log.warning("outbox %s: alert about visit %s superseded (the visit is over) before it could be delivered", row_id, visit_id)

    def _deliver(self, due: Delivery) -> bool:
        message, alert = due.message, due.alert
        posting = False
        try:
            where = self.store.read().message_ref(message.replaces) if message.replaces else None
            if where is not None:
                self.messenger.update(where[0], where[1], message)
                channel, message_ts = where
            elif message.replaces and self.store.read().superseded(message.replaces):
                # The alert it rewrites was never delivered and never will be: nothing to rewrite.
                with self.store.transaction() as tx:
                    tx.drop_update_of_superseded(due.id, self.clock(), due.visit_id)
                log.info("outbox %s: update of a superseded alert dropped", due.id)
                return True
            else:
                # An update whose original never arrived posts the up-to-date version instead.
                found = self._find(due) if due.in_flight and message.key else None
                if found is not None:
                    channel, message_ts = found
                    log.warning("outbox %s: found where it was sent after an interrupted send; not sent again", due.id)
                else:
                    if alert:
                        # Its own short transaction before the post: after a crash we look before posting again.
                        with self.store.transaction() as tx:
                            tx.mark_in_flight(due.id, self.clock())
                    posting = True
                    channel, message_ts = self.messenger.post(
                        replace(message, replaces=None), outbox_key=message.key if alert else None
                    )
        except Gone as exc:
            with self.store.transaction() as tx:
                tx.mark_gone(due.id, str(exc))
            log.warning("outbox %s: the message to update was deleted in Slack (%s); nothing to deliver", due.id, exc)
            return True
        except TryLater as exc:
            wait = wait_after(exc, due.attempts, alert)
            in_flight = alert and (exc.maybe_sent if posting else due.in_flight)
            with self.store.transaction() as tx:
                tx.defer(due.id, self.clock() + wait, str(exc), in_flight=in_flight, refused=exc.refused)
            log.warning("outbox %s: delivery deferred %.1fs (%s)", due.id, wait.total_seconds(), exc)
            if exc.refused and alert:
                self.on_refused()
            return False
        except Undeliverable as exc:
            if not alert:
                with self.store.transaction() as tx:
                    tx.mark_failed(due.id, str(exc))
                log.error("outbox %s: undeliverable (%s)", due.id, exc)
                return True
            # An alert is never given up: its fallback copies go now, and it is tried again until it arrives.
            wait = backoff(due.attempts, ALERT_MAX_WAIT)
            with self.store.transaction() as tx:
                tx.defer(due.id, self.clock() + wait, str(exc), in_flight=due.in_flight and not posting, refused=True)
            log.error("outbox %s: alert refused by Slack (%s); retrying in %.1fs", due.id, exc, wait.total_seconds())
            self.on_refused()
            return False
        except Exception as exc:  # noqa: BLE001 - an unknown failure is retried, never dropped
            with self.store.transaction() as tx:
                tx.defer(due.id, self.clock() + backoff(due.attempts, ALERT_MAX_WAIT if alert else MAX_BACKOFF),
                         type(exc).__name__, in_flight=alert and (posting or due.in_flight))
            log_failure(log, f"outbox {due.id} delivery", exc)
            return False
        # Marked sent in its own short transaction right after the API answers.
        with self.store.transaction() as tx:
            tx.mark_sent(due.id, self.clock(), message.ref, channel, message_ts)
            if self.on_sent is not None:
                self.on_sent(tx, due)
        if alert:
            # Ids only: an alert's text carries names, addresses and numbers.
            log.info("outbox %s: alert about visit %s delivered to %s", due.id, due.visit_id, message.to)
        return True

    def _find(self, due: Delivery) -> tuple[str, str] | None:
        since = (due.first_attempt_at or self.clock()) - LOOKUP_MARGIN
        return self.messenger.find(due.message.to, due.message.key or "", since)

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
