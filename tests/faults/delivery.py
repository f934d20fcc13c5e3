"""A workspace whose clock runs in real time from a settable moment, for measuring delivery after a fault."""
from __future__ import annotations

import json
from collections import Counter
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from bot.clock import FixedClock
from tests.conftest import MONDAY_9AM, Workspace
from tests.faults.alerts import delivered_alerts


class RunningClock(FixedClock):
    """Real seconds pass from whatever moment it was last set to, so the real dispatcher thread's retries fall due."""

    def __init__(self, start: datetime = MONDAY_9AM):
        super().__init__(start)
        self._since = time.monotonic()

    def __call__(self) -> datetime:
        return super().__call__() + timedelta(seconds=time.monotonic() - self._since)

    def set(self, moment: datetime) -> None:
        """Jump to a moment; real time runs on from there."""
        super().set(moment)
        self._since = time.monotonic()

    def advance(self, delta: timedelta) -> datetime:
        """Jump forward by `delta`; real time runs on from there."""
        self.set(self() + delta)
        return self()


def healthz(ws: Workspace) -> tuple[int, dict]:
    """GET /healthz over HTTP: (status code, JSON body)."""
    url = f"http://127.0.0.1:{ws.server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def seconds_until_delivered(ws: Workspace, expected: dict[str, int], limit: float = 30.0) -> float:
    """Run the real dispatcher thread; the real seconds until Slack holds `expected` alerts per destination."""
    started = time.monotonic()
    ws.runtime.dispatcher.start()
    while True:
        got = Counter(to for to, _ in delivered_alerts(ws.sim))
        if all(got[to] >= n for to, n in expected.items()):
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise AssertionError(f"after {limit:.0f} s only {dict(got)} of {expected} alerts were delivered")
        time.sleep(0.01)
