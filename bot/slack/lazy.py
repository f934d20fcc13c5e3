"""Bolt's pool for lazy listeners, which knows when the work handed to it is done."""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class LazyWork(ThreadPoolExecutor):
    """A thread pool that counts the work under way, so tests and the demo can wait for Slack calls made
    after the ack (a form opened, an ephemeral note posted) before looking at what people saw."""

    def __init__(self, max_workers: int = 10):
        super().__init__(max_workers=max_workers, thread_name_prefix="visitsafe-lazy")
        self._under_way = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        """Run `fn` on the pool, counted until it ends."""
        with self._idle:
            self._under_way += 1

        def counted() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._idle:
                    self._under_way -= 1
                    self._idle.notify_all()

        return super().submit(counted)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no work is under way (at most `timeout` seconds); True if none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._under_way == 0, timeout)
