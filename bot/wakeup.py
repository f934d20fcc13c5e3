"""The wake-up: run the sweep at the moment the next timer falls due, not at the next periodic tick."""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Callable

log = logging.getLogger("visitsafe.wakeup")

Wait = Callable[[threading.Condition, "float | None"], object]


def _wait(cond: threading.Condition, timeout: float | None) -> object:
    """Sleep on the condition (its lock held) until notified or `timeout` seconds pass."""
    return cond.wait(timeout)


class WakeUp:
    """Sleeps until the next due moment the database knows of (measured on the monotonic clock), then ticks.

    `plan(after)` returns the earliest due moment later than `after` (the wall-clock start of the
    last tick, which saw everything due by then), or None when there is nothing to wake for (or this
    process does not hold the sweep lease). `poke()` makes it plan again at once: every command that
    changes a timer, and every tick, pokes it. The periodic tick stays the safety net.
    """

    def __init__(
        self,
        plan: Callable[[datetime | None], datetime | None],
        tick: Callable[[], None],
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        wait: Wait = _wait,
    ):
        self._plan, self._tick, self._clock, self._monotonic = plan, tick, clock, monotonic
        self.wait = wait  # the waiting primitive: a test injects one that moves its clock instead of sleeping
        self._cond = threading.Condition()
        self._poked = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.after: datetime | None = None  # the wall-clock start of the last tick
        self.due_at: datetime | None = None  # the moment planned for (wall clock, for /healthz and tests)
        self.deadline: float | None = None  # the same moment on the monotonic clock
        self.planned = False  # has planned at least once: from then on, the periodic tick counts what it missed
        self.woke = 0
        self.missed = 0

    def poke(self) -> None:
        """A timer may have changed: plan again now."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def ticked(self, started: datetime) -> None:
        """A tick that began at `started` has run: everything due by then was seen; plan again."""
        self.after = started
        self.poke()

    def replan(self) -> datetime | None:
        """Ask the database for the next due moment and turn it into a monotonic deadline."""
        try:
            due = self._plan(self.after)
        except Exception as exc:  # noqa: BLE001 - the periodic tick still runs; try again at the next poke
            log.warning("could not plan the wake-up (%s); the periodic sweep covers until the next tick", type(exc).__name__)
            due = None
        self.due_at = due
        self.deadline = None if due is None else self._monotonic() + (due - self._clock()).total_seconds()
        self.planned = True
        return due

    def run_once(self) -> bool:
        """Plan, wait for the moment (or a poke), and tick if the moment has come; True if it ticked."""
        with self._cond:
            self._poked = False
        self.replan()
        with self._cond:
            if self._stopped or self._poked:
                return False
            if self.deadline is None or self.deadline > self._monotonic():
                self.wait(self._cond, None if self.deadline is None else self.deadline - self._monotonic())
            if self._stopped or self.deadline is None or self.deadline > self._monotonic():
                return False  # poked (plan again) or woken early
        self.woke += 1
        self._tick()
        return True

    def start(self) -> None:
        """Run in a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._run, name="visitsafe-wakeup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the wake-up must outlive a failed tick; the periodic tick is the net
                log.warning("wake-up failed (%s); planning again", type(exc).__name__)
                with self._cond:
                    self.wait(self._cond, 1.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (a tick under way finishes first)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
