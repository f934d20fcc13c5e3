"""Staff mobiles from Slack profiles, looked up on a thread of their own so that no alert and no
command ever waits for the profile API: callers read the cache, the refresher fills it."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable

from slack_sdk import WebClient

from commands.context import NUMBER_UNKNOWN
from commands.logsafe import log_failure

log = logging.getLogger("visitsafe.phones")


class ProfilePhones:
    """A cache of profile mobiles with a background refresher; reading it never blocks.

    Called with a user id it answers at once: the number, None when the profile has no mobile,
    or NUMBER_UNKNOWN when no lookup has answered yet (that user is then looked up).
    """

    TIMEOUT_S = 2.0   # per lookup: a hanging profile API costs the refresher seconds, never an alert
    TTL_S = 3600.0    # a good answer is refreshed after this, and kept if the refresh fails
    RETRY_S = 60.0    # a failed lookup is tried again when next asked for, after this

    def __init__(self, base_url: str, token: str | None, monotonic: Callable[[], float] = time.monotonic):
        # A client of its own: a short timeout and no retries (the next ask is the retry).
        self.client = WebClient(token=token, base_url=base_url, timeout=self.TIMEOUT_S, retry_handlers=[])
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, str | None]] = {}  # user -> (when looked up, mobile or None)
        self._failed: dict[str, float] = {}                     # user -> when the last lookup failed
        self._wanted: deque[str] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def __call__(self, user: str) -> str | None:
        """The cached mobile, None (no mobile on file) or NUMBER_UNKNOWN; asks for a lookup if missing or old."""
        with self._cond:
            known = self._known.get(user)
            if known is None or self._monotonic() - known[0] > self.TTL_S:
                self._want(user)
        return NUMBER_UNKNOWN if known is None else known[1]

    def want(self, users: Iterable[str]) -> None:
        """Look these people up in the background unless their answer is fresh."""
        with self._cond:
            for user in users:
                known = self._known.get(user)
                if known is None or self._monotonic() - known[0] > self.TTL_S:
                    self._want(user)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no lookup is queued or running (tests and the demo); True if idle."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._wanted, timeout)

    def stop(self) -> None:
        """Stop the refresher; a lookup in flight ends within its timeout, on a daemon thread."""
        with self._cond:
            self._stopped = True
            self._wanted.clear()
            self._cond.notify_all()

    def _want(self, user: str) -> None:
        # Only people (U…/W…) have profiles; anything else, or a queued user, needs nothing more.
        if self._stopped or not user.startswith(("U", "W")) or user in self._wanted:
            return
        failed = self._failed.get(user)
        if failed is not None and self._monotonic() - failed < self.RETRY_S:
            return
        self._wanted.append(user)
        self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="visitsafe-phones", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted or self._stopped)
                if self._stopped:
                    return
                user = self._wanted[0]  # stays queued while in flight, so wait_idle waits for it
            answer = self._lookup(user)
            with self._cond:
                if answer is not None:
                    self._known[user] = (self._monotonic(), answer[0])
                    self._failed.pop(user, None)
                else:
                    self._failed[user] = self._monotonic()
                if self._wanted and self._wanted[0] == user:
                    self._wanted.popleft()
                self._cond.notify_all()

    def _lookup(self, user: str) -> tuple[str | None] | None:
        """(mobile or None,) from the profile, or None if the lookup failed."""
        try:
            profile = self.client.users_info(user=user)["user"].get("profile", {})
        except Exception as exc:  # noqa: BLE001 - a failed lookup is cached as such; alerts say the number is unknown
            log_failure(log, f"profile lookup for {user}", exc)
            return None
        return (profile.get("phone") or None,)
