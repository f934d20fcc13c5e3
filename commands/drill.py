"""`/visitsafe drill [factor | stop]`, the drill button, and the end of a drill with its report (DSL and head only)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from commands.context import CommandError, Ctx, Reply
from commands.texts import tell_texted_it_is_over
from flows import drill
from flows.messages import Message, mention
from flows.notices import clock
from flows.visit import LIVE, NotAllowed, Visit
from flows.watch import RESPONDERS, Alarm
from storage import drills
from storage.store import Tx

USAGE = "`/visitsafe drill [speed-up]` runs a ladder drill (e.g. `/visitsafe drill 60`: a minute of the ladder takes a second); `/visitsafe drill stop` ends it with its report."


def command(ctx: Ctx, user: str, text: str) -> Reply:
    """`/visitsafe drill …`: start a drill, or stop the one running."""
    words = text.split()
    if words[:1] == ["stop"] and len(words) == 1:
        return stop(ctx, user)
    if words[:1] in (["help"], ["stop"]):
        return Reply(USAGE)
    return start(ctx, user, text)


def _refused(run: Callable[[], None]) -> None:
    try:
        run()
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None


def start(ctx: Ctx, user: str, text: str) -> Reply:
    """A marked test visit, due back now, through the real ladder and channels with its times compressed."""
    policy = ctx.policy
    _refused(lambda: drill.check_runner(user, policy))
    try:
        factor = drill.parse_factor(text, policy)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    now = ctx.now()
    wait = drill.window(policy, factor)
    with ctx.store.transaction() as tx:
        for running in drills.running(tx):
            raise CommandError(
                f"Drill #{running.visit_id} is already running (started by {mention(running.started_by)} at"
                f" {clock(running.started_at, policy)}): wait for its report, or end it with `/visitsafe drill stop`."
            )
        visit = tx.add_visit(drill.drill_visit(user, now, factor, policy), now)
        drills.add(tx, visit.id, user, now, factor, wait)  # type: ignore[arg-type]
        tx.audit(user, "drill_started", now, visit.id, factor=factor)
    last = visit.ladder[-1].after
    ctx.wake()
    return Reply(
        f"*DRILL* #{visit.id} started: the real ladder, {factor} times faster than real, through the real channels."
        f" Its last tier goes out about {drill.seconds(last)} from now; answers are awaited {drill.seconds(wait)} more,"
        " then you get the report. Every message is labelled DRILL. End it sooner with `/visitsafe drill stop`."
    )


def stop(ctx: Ctx, user: str) -> Reply:
    """End the running drill now; its report goes to whoever started it and to whoever stopped it."""
    _refused(lambda: drill.check_runner(user, ctx.policy))
    now = ctx.now()
    with ctx.store.transaction() as tx:
        running = drills.running(tx)
        if not running:
            raise CommandError("No drill is running. Start one with `/visitsafe drill`.")
        visit = tx.visit(running[0].visit_id)
        assert visit is not None
        _finish(ctx, tx, visit, now, stopped_by=user)
    ctx.wake()
    return Reply(f"*DRILL* #{visit.id} stopped. The report is on its way to you.")


def dress(tx: Tx, visit: Visit, alarm: Alarm, messages: list[Message], now: datetime) -> list[Message]:
    """A drill tier's messages as they are queued: each labelled DRILL with its own answer button, and recorded for the report."""
    out = []
    for message in messages:
        key = message.key or f"drill:{visit.id}:{alarm.tier}:{message.to}"
        out.append(drill.dressed(message, drills.add_message(tx, visit.id, alarm.tier, message.to, key, now)))  # type: ignore[arg-type]
    return out


def acknowledge(ctx: Ctx, user: str, message_id: int) -> Reply:
    """The drill button: the answer is timed from when its tier went out."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        found = drills.message(tx, message_id)
        if found is None:
            raise CommandError("That drill message is not known: nothing was recorded.")
        visit_id, sent = found
        # As on a real alert: the person it was sent to, or a responder (a channel's members, a fallback's readers).
        if user != sent.target and not ctx.policy.roles.of(user) & RESPONDERS:
            raise CommandError("This drill message was not for you: nothing was recorded.")
        run = drills.run(tx, visit_id)
        assert run is not None
        if run.ended_at is not None:
            return Reply(f"*DRILL*: drill #{visit_id} ended at {clock(run.ended_at, ctx.policy)}, so this answer was too late to count.")
        before = drills.answer(tx, message_id, user, now)
        if before is not None:
            return Reply(f"*DRILL*: you already answered this one, after {drill.seconds(before - sent.queued_at)}.")
        tx.audit(user, "drill_answered", now, visit_id, message=message_id, tier=sent.tier)
    took = now - sent.queued_at
    return Reply(
        f"*DRILL*: thank you. You answered {drill.seconds(took)} after tier {sent.tier + 1} went out"
        f" ({drill.at_real_speed(took, run.factor)} at real speed). Nothing else to do: it was a test."
    )


def end_drills(ctx: Ctx) -> int:
    """Drills whose every tier has gone out and whose wait for answers is over: ended, and reported to the DSL."""
    now = ctx.now()
    ended = 0
    with ctx.store.transaction() as tx:
        for running in drills.running(tx):
            visit = tx.visit(running.visit_id)
            # Also a drill visit ended some other way (e.g. a forged "Reached, safe"): it must not block the next drill.
            if visit is not None and (visit.state not in LIVE or drill.finished(visit, now, running.wait)):
                _finish(ctx, tx, visit, now, stopped_by=None)
                ended += 1
    return ended


def _finish(ctx: Ctx, tx: Tx, visit: Visit, now: datetime, stopped_by: str | None) -> None:
    """End a drill in this transaction: the visit is over, every drill message says so, and the report is queued."""
    visit = drill.ended(visit, now)
    tx.save_visit(visit, now)
    run = drills.end(tx, visit.id, now, stopped_by)  # type: ignore[arg-type]
    tx.audit(stopped_by or "visitsafe", "drill_ended", now, visit.id, stopped=stopped_by is not None)
    over = [
        drill.labelled(Message(to=to, text=f"Drill #{visit.id} is over. Thank you.", key=f"update:{ref}:drill-end", replaces=ref))
        for ref, to in tx.alert_refs(visit.id)  # type: ignore[arg-type]
    ]
    text = drill.report(run, visit, drills.sent(tx, visit.id), drills.answers(tx, visit.id), ctx.policy)  # type: ignore[arg-type]
    readers = dict.fromkeys(r for r in (run.started_by, stopped_by) if r)
    reports = [Message(to=to, text=text, key=f"drill-report:{visit.id}:{to}") for to in readers]
    # Everyone the drill texted hears it is over, by SMS too, labelled DRILL.
    tx.send([*over, *reports, *tell_texted_it_is_over(ctx, tx, visit, now)], now, visit.id)
