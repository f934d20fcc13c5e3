"""Logging failures without personal data: exception messages can carry what a user typed."""
from __future__ import annotations

import logging
import traceback


def log_failure(log: logging.Logger, where: str, exc: BaseException) -> None:
    """Log a failure by exception type and code location only, never its message."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    place = " < ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" for frame in reversed(frames[-3:])) or "?"
    log.error("%s failed: %s at %s", where, type(exc).__name__, place)
