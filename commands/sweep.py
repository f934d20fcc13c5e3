"""The scheduler's one job: find what has fallen due in the database and act on it, idempotently."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, time, timedelta

from commands import aftervisit, drill
from commands.context import Ctx
from commands.direct import mark_sent_directly
from commands.logsafe import log_failure
from commands.request import purge_drafts
from commands.safeguarding import send_follow_ups
from commands.texts import arm_texts, queue_texts
from flows import alerts, notices, textalerts, watch
from flows.messages import Message, esc, where
from flows.drill import relabel
from flows.retention import purge
from flows.visit import NotAllowed, Visit, expire, expire_unstarted
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
    return expired + expire_unstarted_visits(ctx)


def expire_unstarted_visits(ctx: Ctx) -> int:
    """Approved visits nobody signed out for by the end of their day become expired; the requester is told."""
    now = ctx.now()
    today = datetime.combine(now.astimezone(ctx.policy.tz).date(), time(0), tzinfo=ctx.policy.tz)
    expired = 0
    with ctx.store.transaction() as tx:
        for visit in tx.unstarted_before(today):
            try:
                visit = expire_unstarted(visit, now, ctx.policy)
            except NotAllowed:
                continue
            tx.save_visit(visit, now)
            tx.audit("visitsafe", "expired", now, visit.id, was="approved")
            text = (
                f"Your approved visit for *{esc(visit.details.pupil_ref)}* on {notices.when(visit.start_at, ctx.policy)}"
                " was not started that day and has expired. Use `/visit` to ask again."
            )
            tx.send([Message(to=visit.requester, text=text, key=f"expired:{visit.id}")], now, visit.id)
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
    # From the directory or the cache, never a remote call: a missing number is looked up in the
    # background and this tick's alerts say it is unknown rather than wait for it.
    phones = {user: ctx.phone(user) for _, team in due for user in team}
    sent = 0
    # One transaction for the batch, one savepoint per visit: a visit that fails is undone alone
    # (and tried again next tick) while every other alert of the batch is committed.
    with ctx.store.transaction() as tx:
        # Read inside the transaction (the state may have changed), the whole batch at once.
        visits = tx.visits_by_id([visit_id for visit_id, _ in due])
        offset = tx.clock_offset()
        for visit_id, _ in due:
            try:
                with ctx.store.savepoint(tx):
                    sent += _escalate_one(ctx, tx, visits.get(visit_id), now, phones, offset)
            except Exception as exc:  # noqa: BLE001 - one bad visit must not hold back the others' alerts
                log_failure(log, f"escalating visit {visit_id}", exc)
    return sent


def _escalate_one(
    ctx: Ctx, tx: Tx, visit: Visit | None, now: datetime, phones: dict[str, str | None], offset: tuple[float, datetime] | None
) -> int:
    """Advance one due visit: send what has fallen due, save its new timers; return messages queued."""
    if visit is None:
        return 0
    was = visit.state
    visit, alarms = watch.advance(visit, now, ctx.policy)
    # advance() changes only the state and the safety-net timers.
    if not alarms:
        tx.save_watch(visit, now, was)  # re-times next_due_at (e.g. a missed check-in with no tier yet)
        return 0
    messages: list[Message] = []
    for alarm in alarms:
        made = _alarm_messages(ctx, visit, alarm, now, phones.get)
        # The one place a drill's alerts are queued: every one labelled DRILL, with its own answer button.
        messages += drill.dress(tx, visit, alarm, made, now) if visit.drill else made
        tx.audit("visitsafe", f"{alarm.kind}_sent", now, visit.id, tier=alarm.tier, number=alarm.number, episode=visit.watch.episode)
    tx.save_watch(visit, now, was)
    if offset is not None:
        note = watch.clock_ahead_note(timedelta(seconds=offset[0]), offset[1], ctx.policy)
        messages = [replace(message, notes=(*message.notes, note)) for message in messages]
    queued = tx.send(messages, now, visit.id)
    queued += queue_texts(ctx, tx, visit, alarms, now, phones.get)
    # Alerts sent straight to Slack while the database was read-only are marked sent, not sent again.
    mark_sent_directly(ctx.direct, tx, messages, now)
    return queued


def _due_messages(ctx: Ctx, visit_id: int, now: datetime) -> list[Message]:
    """What the sweep would send for one due visit now, worked out without writing anything."""
    visit = ctx.store.read().visit(visit_id)
    # A drill waits for the database: only real alerts take the direct path.
    if visit is None or visit.drill:
        return []
    visit, alarms = watch.advance(visit, now, ctx.policy)
    return [m for alarm in alarms for m in _alarm_messages(ctx, visit, alarm, now, ctx.phone)]


def _alarm_messages(ctx: Ctx, visit: Visit, alarm: watch.Alarm, now: datetime, phones: alerts.Phones) -> list[Message]:
    """The messages of one alarm the sweep raises."""
    if alarm.kind == "checkin":
        return alerts.checkin_prompt(visit, alarm.number, now, ctx.policy)
    if alarm.kind == "tier":
        return alerts.tier_messages(visit, alarm, now, ctx.policy, phones)
    return alerts.repeat_messages(visit, alarm, now, ctx.policy, phones)


def escalate_directly(ctx: Ctx, holder: str) -> int:
    """The database cannot be written: send what has fallen due straight through the Messenger (each key once)."""
    now = ctx.now()
    tx = ctx.store.read()
    # Without writes there is no lease to renew: only the last holder (or nobody) sends, so two processes do not.
    if tx.lease_holder(LEASE) not in (None, holder):
        return 0
    messages = [m for visit_id, _ in tx.due(now) for m in _due_messages(ctx, visit_id, now)]
    return ctx.direct.send(messages) if messages else 0


def fall_back(ctx: Ctx) -> int:
    """Alerts that could not be delivered in time are sent to their other audiences as well."""
    now = ctx.now()
    limit = ctx.policy.delivery_fallback_after
    queued = 0
    with ctx.store.transaction() as tx:
        for row_id, visit_id, message in tx.undelivered_alerts(now - limit):
            copies = textalerts.fallback_copies(message, ctx.policy) if textalerts.is_text(message.to) else [
                Message(
                    to=destination,
                    text=relabel(
                        f":warning: This alert could not be delivered to {where(message.to)} for {int(limit / timedelta(seconds=1))} s,"
                        f" so it comes to you too.\n{message.text}"
                    ),
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
            log.error("alert %s refused, or not delivered within %ss; copies queued for %d other destinations", row_id, int(limit.total_seconds()), len(copies))
    return queued


def purge_expired(ctx: Ctx) -> int:
    """Personal details of visits finished, and of messages sent, longer ago than the policy's retention are removed."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        due = tx.to_purge(now - ctx.policy.retention)
        for visit in due:
            tx.save_purged(purge(visit), now)
            tx.audit("visitsafe", "purged", now, visit.id)
        # An SOS raised with no visit out is tied to no visit: its note and mobile go on the same clock.
        messages = tx.purge_unlinked_messages(now - ctx.policy.retention)
        # That a confidential conversation existed goes with its visit, or after the retention period.
        conversations = tx.purge_confidential(now - ctx.policy.retention)
        # Concern, incident, referral, sharing and cleared register text (issue 14): the counts stay for the report.
        after_visit = tx.purge_after_visit_text(now - ctx.policy.retention, now)
        if after_visit:
            tx.audit("visitsafe", "purged_after_visit", now, **after_visit)
    return len(due) + messages + conversations + sum(after_visit.values())


def sweep(ctx: Ctx, holder: str = "local") -> dict[str, int]:
    """One tick, if this process holds the lease: everything due is handled; safe to run any number of times."""
    if not holds_lease(ctx, holder):
        return {"skipped": 1}
    done = {"expired": expire_requests(ctx), "alerts": escalate(ctx), "fallbacks": fall_back(ctx), "texts": arm_texts(ctx), "purged": purge_expired(ctx)}
    done["drafts"] = purge_drafts(ctx)
    done["drills"] = drill.end_drills(ctx)
    done["follow_ups"] = send_follow_ups(ctx)
    done["outcomes"] = aftervisit.sweep(ctx)
    with ctx.store.transaction() as tx:
        tx.beat("sweep", ctx.now())
    if any(done.values()):
        ctx.wake()
    return done
