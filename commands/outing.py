"""/out and /back: signing out for an approved visit and signing back in."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from commands import aftervisit, confidential, safety
from commands.context import CommandError, Ctx, Reply
from flows import actions, notices
from flows.durations import BadDuration, format_duration, resolve_return
from flows.messages import Button, esc
from flows.visit import NotAllowed, State, Visit, check_within_limit, come_back, go_out, move_on, planned_return
from flows.visit import start_round as start_round_of
from storage.store import Tx


def _expected_return(ctx: Ctx, visit: Visit, text: str, now: datetime) -> datetime:
    if not text.strip():
        expected = planned_return(visit, now)
    else:
        try:
            expected = resolve_return(text, now, ctx.policy.tz)
        except BadDuration as exc:
            raise CommandError(f"{exc}. For example `/out 45m` or `/out 14:30`.") from None
    try:
        check_within_limit(expected, now, ctx.policy)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    return expected


def out(ctx: Ctx, user: str, text: str) -> Reply:
    """Start the user's approved visit (or offer a choice when there are several)."""
    text = text.strip()
    tx = ctx.store.read()
    live = tx.live_visit_of(user)
    if live:
        raise CommandError(f"You are already out on visit #{live.id}. Use `/back` when you return.")
    ready = tx.visits_of(user, {State.approved})
    if not ready:
        waiting = tx.visits_of(user, {State.requested})
        if waiting:
            raise CommandError(
                f"Visit #{waiting[0].id} has not been approved yet: you cannot go out until it is. "
                "You will get a message as soon as it is decided."
            )
        raise CommandError("You have no approved visit to start. Use `/visit` to request one.")
    # Check the argument before offering a choice, so a typo is caught at once.
    _expected_return(ctx, ready[0], text, ctx.now())
    if len(ready) == 1:
        return start(ctx, user, ready[0].id, text)  # type: ignore[arg-type]
    choices = ready[:4]
    buttons = tuple(
        Button(
            f"#{v.id} {v.details.pupil_ref[:20]} {notices.clock(v.start_at, ctx.policy)}",
            actions.START_VISIT,
            f"{v.id}|{text}",
        )
        for v in choices
    )
    whole = Button(f"All {len(choices)} as one round", actions.START_ROUND, ",".join(str(v.id) for v in choices) + f"|{text}", "primary")
    return Reply(
        "You have several approved visits. Which one are you starting? Or make them one round, in this"
        " order, with one expected return for the whole trip (`/next` as you move on).",
        buttons=(*buttons, whole),
    )


def start_round(ctx: Ctx, user: str, visit_ids: list[int], text: str) -> Reply:
    """Several approved visits in one trip (Harton: "at the end of the home visit(s)")."""
    if len(set(visit_ids)) != len(visit_ids):
        # A repeated id would start one visit twice and leave it approved, with no timers.
        raise CommandError("A round cannot hold the same visit twice: nothing was started.")
    now = ctx.now()
    with ctx.store.transaction() as tx:
        if tx.live_visit_of(user):
            raise CommandError("You are already out on a visit. Use `/back` when you return.")
        visits = [tx.visit(visit_id) for visit_id in visit_ids]
        if any(v is None for v in visits):
            raise CommandError("One of those visits no longer exists.")
        ordered: list[Visit] = [v for v in visits if v is not None]
        planned = now + sum((v.details.duration for v in ordered), timedelta(0))
        expected = _expected_return(ctx, ordered[0], text, now) if text.strip() else planned
        try:
            started = start_round_of(ordered, user, now, expected, ctx.policy)
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        for visit in started:
            tx.save_visit(visit, now)
        first = started[0]
        tx.audit(user, "out_round", now, first.id, visits=[v.id for v in started], expected_return=expected.isoformat())
        tx.send(notices.office_board_round(started, ctx.policy), now, first.id)
    ctx.wake()
    ctx.warm_phones(first.team)
    return Reply(
        f"You are out on a round of {len(started)} visits, starting with #{first.id} ({esc(first.details.pupil_ref)});"
        f" due back at *{notices.due(expected, now, ctx.policy)}*. Use `/next` as you move on, `/back` at the end.",
        buttons=(Button("Next visit", actions.NEXT_VISIT, str(first.id)),),
        notes=("Before you knock:\n" + notices.safety_checklist(ctx.policy),),
    )


def next_visit(ctx: Ctx, user: str) -> Reply:
    """Move on to the next address of the round; the office board shows where you are."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        current = tx.live_visit_of(user)
        if current is None:
            raise CommandError("You are not out on a visit.")
        following = tx.rest_of_round(current)
        if not following:
            raise CommandError("That was the last visit of your round: use `/back` (or `/back home`) when you are done.")
        try:
            done, moved = move_on(current, following[0], user, now)
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        tx.save_visit(done, now)
        tx.save_visit(moved, now)
        tx.audit(user, "next_in_round", now, moved.id, previous=done.id)
        tx.send(notices.office_board_moved_on(done, moved, len(following) - 1, ctx.policy), now, moved.id)
        aftervisit.signed_in(ctx, tx, done, now)  # each address of a round has its own outcome and record
    ctx.wake()
    left = len(following) - 1
    return Reply(
        f"Now at visit #{moved.id} ({esc(moved.details.pupil_ref)}), {left} more after this;"
        f" due back at *{notices.due(moved.expected_return or now, now, ctx.policy)}*.",
        buttons=(Button("Next visit", actions.NEXT_VISIT, str(moved.id)),) if left else (),
    )


def start(ctx: Ctx, user: str, visit_id: int, text: str) -> Reply:
    """Sign out for one approved visit: departure, expected return, office board, checklist."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = tx.visit(visit_id)
        if visit is None:
            raise CommandError("That visit no longer exists.")
        if tx.live_visit_of(user):
            raise CommandError("You are already out on a visit. Use `/back` when you return.")
        expected = _expected_return(ctx, visit, text, now)
        try:
            visit = go_out(visit, user, now, expected, ctx.policy)
        except NotAllowed as exc:
            tx.audit(user, "out_refused", now, visit_id, why=str(exc))
            raise CommandError(str(exc)) from None
        tx.save_visit(visit, now)
        tx.audit(user, "out", now, visit.id, expected_return=expected.isoformat())
        tx.send(notices.office_board_out(visit, ctx.policy), now, visit.id)
    ctx.wake()
    ctx.warm_phones(visit.team)  # so an alert about this visit finds the mobiles already cached
    due = notices.due(expected, now, ctx.policy)
    return Reply(
        f"You are out on visit #{visit.id} ({esc(visit.details.pupil_ref)}), due back at *{due}*"
        f" ({format_duration(expected - now)}). Use `/back` when you return, or `/back home` if you go"
        " straight home. Running late? `/extend 20m`.",
        notes=("Before you knock:\n" + notices.safety_checklist(ctx.policy),),
        buttons=confidential.button(ctx, user, visit.id),  # type: ignore[arg-type]
    )


def back(ctx: Ctx, user: str, text: str) -> Reply:
    """Sign back in from the visit the user is on (as visitor or companion); `/back WORD` with a duress word looks the same."""
    words = text.strip().lower().split()
    home = words[:1] == ["home"]

    def normal(tx: Tx, now: datetime) -> Reply:
        live = tx.live_visit_of(user)
        if live is None:
            raise CommandError("You are not out on a visit, so there is nothing to sign back in from.")
        if live.state is State.emergency:
            # Only a responder ends an emergency: the visitor sees a normal sign-in, the alarm stays open.
            visit = safety.sign_in_during_emergency(ctx, tx, live, user, now, home)
        else:
            try:
                visit = come_back(live, user, now, home)
            except NotAllowed as exc:
                raise CommandError(str(exc)) from None
            tx.save_visit(visit, now)
            tx.audit(user, "back_home" if home else "back", now, visit.id)
            tx.send(
                [*notices.office_board_back(visit, ctx.policy), *safety.contact_updates(ctx, tx, visit, now, "back")],
                now,
                visit.id,
            )
        # The outcome is asked, and the CPOMS timers start, whether or not an emergency stays open.
        aftervisit.signed_in(ctx, tx, visit, now)
        # Visits of a round not reached stay approved, each on its own again.
        skipped = tx.rest_of_round(live)
        for rest in skipped:
            tx.save_visit(replace(rest, round_lead=None, round_pos=0), now)
        reply = back_reply(visit, home, now, ctx)
        if skipped:
            ids = ", ".join(f"#{v.id}" for v in skipped)
            reply = replace(reply, text=reply.text + f" Not reached on this round: {ids}; they stay approved for another time.")
        return reply

    def mistaken(tx: Tx, now: datetime) -> Reply:
        raise CommandError("Use `/back` when you are back at school, or `/back home` if you have gone straight home.")

    # Anything but "home" is either the duress word (the visitor sees a normal /back) or a mistake.
    def signed_in(tx: Tx, alarm: Visit, now: datetime) -> None:
        # The alarm itself tells the responders; the visitor is signed in as far as they can see.
        # As after a plain /back: the outcome is asked, so nothing the visitor sees differs.
        aftervisit.signed_in(ctx, tx, safety.sign_in_during_emergency(ctx, tx, alarm, user, now, home, notify=False), now)

    return safety.duress_aware(ctx, user, "" if home else text, normal, not_duress=mistaken, after_alarm=signed_in)


def back_reply(visit: Visit, home: bool, now: datetime, ctx: Ctx) -> Reply:
    """What the visitor sees on signing in: identical whether or not a duress word was used."""
    where = "Safe home" if home else "Welcome back"
    return Reply(
        f"{where}: visit #{visit.id} is signed in at {notices.clock(now, ctx.policy)}. Thank you."
        " Please record the visit on CPOMS while it is fresh."
    )
