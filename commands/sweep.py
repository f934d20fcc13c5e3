"""The scheduler's one job: find what has fallen due in the database and act on it, idempotently."""
from __future__ import annotations

import logging
from datetime import timedelta

from commands.context import Ctx
from flows import alerts, notices, watch
from flows.messages import Message, esc, mention
from flows.visit import expire

log = logging.getLogger("visitsafe.sweep")
LEASE = "sweep"


def lease_seconds(ctx: Ctx) -> float:
    """A crashed sweeper's lease runs out after about three ticks, so another process takes over in seconds."""
    return max(3 * ctx.policy.sweep_interval.total_seconds(), 3.0)


def holds_lease(ctx: Ctx, holder: str) -> bool:
    """Take or renew the sweep lease; only its holder sweeps and sends."""
    with ctx.store.transaction() as tx:
        return tx.acquire_lease(LEASE, holder, ctx.now(), lease_seconds(ctx))


def expire_requests(ctx: Ctx) -> int:
    """Undecided requests whose start time has passed become expired; the requester is told."""
    now = ctx.now()
    expired = 0
    with ctx.store.transaction() as tx:
        for visit in tx.visits_where("state = 'requested' AND start_at <= ?", [now.timestamp()]):
            visit = expire(visit, now)
            tx.save_visit(visit, now)
            tx.audit("visitsafe", "expired", now, visit.id)
            text = (
                f"Your visit request for *{esc(visit.details.pupil_ref)}* at {notices.when(visit.start_at, ctx.policy)}"
                " was not decided before its start time and has expired. Use `/visit` to ask again."
            )
            # The approvers' buttons go too: an expired request cannot be approved.
            messages = [Message(to=visit.requester, text=text, key=f"expired:{visit.id}"), *notices.approval_updates(visit, ctx.policy)]
            tx.send(messages, now, visit.id)
            expired += 1
    return expired


def escalate(ctx: Ctx) -> int:
    """Every live visit whose check-in, tier or repeat is due: one transaction each, state re-checked."""
    now = ctx.now()
    due = ctx.store.read().due_visits(now)
    # Phone numbers may need a chat API call: look them up before taking the write lock.
    phones = {user: ctx.phone(user) for visit in due for user in visit.team}
    sent = 0
    for stale in due:
        with ctx.store.transaction() as tx:
            visit = tx.visit(stale.id or 0)
            if visit is None:
                continue
            visit, alarms = watch.advance(visit, now, ctx.policy)
            if not alarms:
                tx.save_visit(visit, now)  # re-times next_due_at (e.g. a missed check-in with no tier yet)
                continue
            messages: list[Message] = []
            for alarm in alarms:
                if alarm.kind == "checkin":
                    messages += alerts.checkin_prompt(visit, alarm.number, now, ctx.policy)
                elif alarm.kind == "tier":
                    messages += alerts.tier_messages(visit, alarm, now, ctx.policy, phones.get)
                else:
                    messages += alerts.repeat_messages(visit, alarm, now, ctx.policy, phones.get)
                tx.audit("visitsafe", f"{alarm.kind}_sent", now, visit.id, tier=alarm.tier, number=alarm.number, episode=visit.watch.episode)
            tx.save_visit(visit, now)
            sent += tx.send(messages, now, visit.id)
    return sent


def fall_back(ctx: Ctx) -> int:
    """Alerts that could not be delivered in time are sent to their other audiences as well."""
    now = ctx.now()
    limit = ctx.policy.delivery_fallback_after
    queued = 0
    with ctx.store.transaction() as tx:
        for row_id, visit_id, message in tx.undelivered_alerts(now - limit):
            where = mention(message.to) if message.to.startswith(("U", "W")) else f"<#{message.to}>"
            copies = [
                Message(
                    to=destination,
                    text=f":warning: This alert could not be delivered to {where} for {int(limit / timedelta(seconds=1))} s,"
                    f" so it comes to you too.\n{message.text}",
                    fields=message.fields,
                    notes=message.notes,
                    buttons=message.buttons,
                    key=f"{message.key}:fallback:{destination}",
                    ref=f"{message.ref}:fallback:{destination}",
                )
                for destination in message.fallback
            ]
            queued += tx.send(copies, now, visit_id)
            tx.mark_fell_back(row_id)
            tx.audit("visitsafe", "alert_fell_back", now, visit_id, outbox=row_id, to=list(message.fallback))
            log.error("alert %s undeliverable for %ss; sent to %d other destinations", row_id, int(limit.total_seconds()), len(copies))
    return queued


def sweep(ctx: Ctx, holder: str = "local") -> dict[str, int]:
    """One tick, if this process holds the lease: everything due is handled; safe to run any number of times."""
    if not holds_lease(ctx, holder):
        return {"skipped": 1}
    done = {"expired": expire_requests(ctx), "alerts": escalate(ctx), "fallbacks": fall_back(ctx)}
    with ctx.store.transaction() as tx:
        tx.beat("sweep", ctx.now())
    if any(done.values()):
        ctx.wake()
    return done
