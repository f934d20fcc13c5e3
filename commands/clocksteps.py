"""What a wall-clock step does to the stored timers: recorded, and put right where a step back allows."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from commands.context import Ctx
from commands.sweep import LEASE, lease_seconds
from flows import watch

log = logging.getLogger("visitsafe.clock")

# A forward offset put right to within this is closed.
SETTLED = timedelta(seconds=2)


def clock_stepped(ctx: Ctx, holder: str, size: timedelta, previous: datetime, max_retry_wait: timedelta) -> int:
    """The wall clock stepped by `size` since the last tick (at `previous`); returns visits re-timed.

    Any process records the step and brings back retry and lease times no write could have set
    by the corrected clock; only the sweep's lease holder re-times the visits (so once).
    """
    now = ctx.now()
    with ctx.store.transaction() as tx:
        tx.add_clock_step(now - size, now, holder)
        tx.audit("visitsafe", "clock_step", now, seconds=size.total_seconds(), wall_before=now - size, wall_after=now, holder=holder)
        if size < timedelta(0):
            tx.clamp_after_backward_step(now, -size.total_seconds(), max_retry_wait.total_seconds(), lease_seconds(ctx))
        if not tx.acquire_lease(LEASE, holder, now, lease_seconds(ctx)):
            return 0
        offset = tx.clock_offset()
        ahead_by = timedelta(seconds=offset[0]) if offset else timedelta(0)
        ahead_since = offset[1] if offset else None
        if size > timedelta(0):
            # Never silencing wins: what is due by the new clock fires; remember since when times may be ahead.
            tx.set_clock_offset((ahead_by + size).total_seconds(), ahead_since or previous + size)
            return 0
        step = watch.BackwardStep(back=-size, ahead_since=ahead_since, ahead_by=ahead_by)
        left = ahead_by + size
        tx.set_clock_offset(left.total_seconds() if left > SETTLED else None, ahead_since)
        retimed = 0
        for visit in tx.visits_where("state IN ('out', 'overdue', 'emergency')", [], order="id"):
            moved = watch.after_backward_step(visit, now, step, ctx.policy)
            if moved == visit:
                continue
            tx.save_visit(moved, now)
            rearmed = visit.watch.tier_sent - moved.watch.tier_sent
            tx.audit("visitsafe", "clock_retimed", now, visit.id, seconds=size.total_seconds(), tiers_rearmed=rearmed, episode=moved.watch.episode)
            retimed += 1
    return retimed
