"""The scheduler's one job: find what has fallen due in the database and act on it, idempotently."""
from __future__ import annotations

from commands.context import Ctx
from flows import notices
from flows.messages import Message, esc
from flows.visit import expire


def expire_requests(ctx: Ctx) -> int:
    """Undecided requests whose start time has passed become expired; the requester is told."""
    now = ctx.now()
    expired = 0
    with ctx.store.transaction() as tx:
        for visit in tx.visits_where("state = 'requested' AND start_at <= ?", [now.timestamp()]):
            visit = expire(visit, now)
            tx.save_visit(visit, now)
            tx.audit("visitsafe", "expired", now, visit.id)
            tx.send(
                [
                    Message(
                        to=visit.requester,
                        text=f"Your visit request for *{esc(visit.details.pupil_ref)}* at"
                        f" {notices.when(visit.start_at, ctx.policy)} was not decided before its start time"
                        " and has expired. Use `/visit` to ask again.",
                        key=f"expired:{visit.id}",
                    )
                ],
                now,
                visit.id,
            )
            expired += 1
    return expired


def sweep(ctx: Ctx) -> dict[str, int]:
    """One tick: everything due is handled; safe to run any number of times."""
    done = {"expired": expire_requests(ctx)}
    with ctx.store.transaction() as tx:
        tx.beat("sweep", ctx.now())
    if any(done.values()):
        ctx.wake()
    return done


