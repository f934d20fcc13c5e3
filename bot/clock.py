"""Clocks: the real one, and a settable one for tests and the demo."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def system_clock() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class FixedClock:
    """A clock that only moves when told to: a wall clock and a monotonic clock side by side.

    `advance()` and `set()` are time passing (both clocks move); `step()` is the wall clock
    being put wrong or right (an NTP step, a restored VM): only the wall clock moves.
    """

    def __init__(self, start: datetime):
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds of time passed, as time.monotonic() counts them: unmoved by a clock step."""
        with self._lock:
            return self._mono

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward and return the new now."""
        with self._lock:
            self._now += delta
            self._mono += delta.total_seconds()
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to a moment (time passing, not a clock step)."""
        with self._lock:
            self._mono += (moment - self._now).total_seconds()
            self._now = moment

    def step(self, delta: timedelta) -> datetime:
        """Step the wall clock alone by `delta` (either way) and return the new now."""
        with self._lock:
            self._now += delta
            return self._now
