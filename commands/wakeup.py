"""When the sweep must next look at the database: the earliest timer it would act on."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from commands.context import Ctx

# Before any tick: every timer counts.
EVER = datetime(1970, 1, 1, tzinfo=timezone.utc)
# How soon after the last tick the wake-up runs another for an alert refused outright.
REFUSED_RETICK = timedelta(seconds=1)


def _day_start(moment: datetime, ctx: Ctx, days: int = 0) -> datetime:
    """Midnight, in the school's time zone, of the day `moment` falls on (plus `days`)."""
    return datetime.combine(moment.astimezone(ctx.policy.tz).date() + timedelta(days=days), time(0), tzinfo=ctx.policy.tz)


def next_due_moment(ctx: Ctx, after: datetime | None) -> datetime | None:
    """The earliest moment later than `after` at which a sweep would act: a check-in, tier or repeat,
    a request or an unstarted visit expiring, an alert waiting long enough to fall back or refused outright, an SMS on
    standby whose time to be armed comes, or an after-the-visit reminder or deadline (None: nothing)."""
    after = after or EVER
    limit = ctx.policy.delivery_fallback_after
    # An approved visit expires at the end of its day (see sweep.expire_unstarted_visits): those of
    # the day `after` falls on or later are the ones whose expiry is still to come.
    first = ctx.store.read().earliest_timers_after(after, _day_start(after, ctx), after - limit)
    moments = [first["visit"], first["request"]]
    if first["approved"] is not None:
        moments.append(_day_start(first["approved"], ctx, days=1))
    if first["alert"] is not None:
        moments.append(first["alert"] + limit)
    moments += _texts_due(ctx, after)
    # After the visit: the outcome reminder, the CPOMS reminder and deadline, a referral's follow-up.
    moments += ctx.store.read().earliest_after_visit_timers_after(after)
    if ctx.store.read().refused_not_fallen_back():
        # Refused outright since the last tick: its fallbacks and SMS go now (at most one such tick a second).
        moments.append(after + REFUSED_RETICK)
    return min((m for m in moments if m is not None), default=None)


def _texts_due(ctx: Ctx, after: datetime) -> list[datetime]:
    """When an SMS on standby could next be armed: its chat waiting delivery_fallback_after, or sms_after unacknowledged."""
    if ctx.policy.notify is None:
        return []
    moments = []
    for wait, chat_waiting in ((ctx.policy.delivery_fallback_after, True), (ctx.policy.sms_after, False)):
        first = ctx.store.read().earliest_standby_after(after - wait, chat_waiting) if wait else None
        if first is not None:
            moments.append(first + wait)
    return moments


def missed_between(ctx: Ctx, after: datetime, before: datetime) -> int:
    """Timers that fell due after `after` and before `before` and no sweep has handled yet."""
    return ctx.store.read().timers_due_between(after, before)
