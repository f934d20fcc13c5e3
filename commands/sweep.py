"""The scheduler's one job: find what has fallen due in the database and act on it, idempotently."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from commands.context import Ctx
from commands.logsafe import log_failure
from commands.request import purge_drafts
from flows import alerts, notices, watch
from flows.messages import Message, esc, mention
from flows.retention import purge
from flows.visit import expire
from storage.store import Tx

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
    sent = 0
    handled: set[int] = set()
    # A burst of more than one batch is handled in the same tick, not one batch per tick.
    while due := [item for item in ctx.store.read().due(now, BATCH + len(handled)) if item[0] not in handled]:
        sent += _escalate_batch(ctx, due[:BATCH], now)
        handled.update(visit_id for visit_id, _ in due[:BATCH])
    return sent


BATCH = 500


def _escalate_batch(ctx: Ctx, due: list[tuple[int, tuple[str, ...]]], now: datetime) -> int:
    # Phone numbers may need a chat API call: look them up before taking the write lock.
    phones = {user: ctx.phone(user) for _, team in due for user in team}
    sent = 0
    # One transaction for the batch, one savepoint per visit: a visit that fails is undone alone
    # (and tried again next tick) while every other alert of the batch is committed.
    with ctx.store.transaction() as tx:
        for visit_id, _ in due:
            try:
                with ctx.store.savepoint(tx):
                    sent += _escalate_one(ctx, tx, visit_id, now, phones)
            except Exception as exc:  # noqa: BLE001 - one bad visit must not hold back the others' alerts
                log_failure(log, f"escalating visit {visit_id}", exc)
    return sent


def _escalate_one(ctx: Ctx, tx: Tx, visit_id: int, now: datetime, phones: dict[str, str | None]) -> int:
    """Advance one due visit: send what has fallen due, save its new timers; return messages queued."""
    visit = tx.visit(visit_id)  # re-read inside the transaction: the state may have changed
    if visit is None:
        return 0
    visit, alarms = watch.advance(visit, now, ctx.policy)
    # advance() changes only the state and the safety-net timers.
    if not alarms:
        tx.save_watch(visit, now)  # re-times next_due_at (e.g. a missed check-in with no tier yet)
        return 0
    messages: list[Message] = []
    for alarm in alarms:
        if alarm.kind == "checkin":
            messages += alerts.checkin_prompt(visit, alarm.number, now, ctx.policy)
        elif alarm.kind == "tier":
            messages += alerts.tier_messages(visit, alarm, now, ctx.policy, phones.get)
        else:
            messages += alerts.repeat_messages(visit, alarm, now, ctx.policy, phones.get)
        tx.audit("visitsafe", f"{alarm.kind}_sent", now, visit.id, tier=alarm.tier, number=alarm.number, episode=visit.watch.episode)
    tx.save_watch(visit, now)
    return tx.send(messages, now, visit.id)


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


def purge_expired(ctx: Ctx) -> int:
    """Personal details of visits finished longer ago than the policy's retention are removed."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        due = tx.to_purge(now - ctx.policy.retention)
        for visit in due:
            tx.save_purged(purge(visit), now)
            tx.audit("visitsafe", "purged", now, visit.id)
    return len(due)


def sweep(ctx: Ctx, holder: str = "local") -> dict[str, int]:
    """One tick, if this process holds the lease: everything due is handled; safe to run any number of times."""
    if not holds_lease(ctx, holder):
        return {"skipped": 1}
    done = {"expired": expire_requests(ctx), "alerts": escalate(ctx), "fallbacks": fall_back(ctx), "purged": purge_expired(ctx)}
    done["drafts"] = purge_drafts(ctx)
    with ctx.store.transaction() as tx:
        tx.beat("sweep", ctx.now())
    if any(done.values()):
        ctx.wake()
    return done
