"""The safety net's commands and buttons: /checkin, /extend, /sos, duress words, and acting on alerts."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from commands import aftervisit, texts
from commands.context import CommandError, Ctx, Reply
from commands.direct import mark_sent_directly
from flows import alerts, duress, notices, watch
from flows.watch import as_the_team_sees
from flows.durations import BadDuration, parse_clock, parse_duration, resolve_return
from flows.messages import Message
from flows.visit import NotAllowed, TooLong, Visit, check_within_limit
from storage.store import NotWritable, Tx


def _live(tx: Tx, user: str, doing: str) -> Visit:
    visit = tx.live_visit_of(user)
    if visit is None:
        raise CommandError(f"You are not out on a visit, so there is nothing to {doing}.")
    return visit


def _load(tx: Tx, visit_id: int) -> Visit:
    visit = tx.visit(visit_id)
    if visit is None:
        raise CommandError("That visit no longer exists.")
    return visit


def contact_updates(ctx: Ctx, tx: Tx, visit: Visit, now: datetime, tag: str) -> list[Message]:
    """Every alert already sent about a visit, rewritten to say what just happened."""
    return alerts.alert_updates(visit, tx.alert_refs(visit.id or 0), now, ctx.policy, tag)


def _emergency(ctx: Ctx, tx: Tx, visit: Visit, user: str, kind: str, note: str | None, now: datetime) -> Visit:
    visit = watch.raise_emergency(visit, user, kind, note, now)
    tx.save_visit(visit, now)
    # The audit records that a duress alarm was raised, never the word.
    tx.audit(user, f"emergency_{kind}", now, visit.id)
    messages = alerts.emergency_messages(visit, now, ctx.policy, ctx.phone)
    tx.send(messages, now, visit.id)
    # By SMS too if chat does not deliver it in time, or nobody acknowledges it within sms_after.
    texts.stand_by_emergency(ctx, tx, visit, messages, now)
    return visit


def sign_in_during_emergency(ctx: Ctx, tx: Tx, visit: Visit, user: str, now: datetime, home: bool, notify: bool = True) -> Visit:
    """/back during an SOS or duress alarm: recorded and told to the responders; the alarm and its repeats go on."""
    try:
        visit = watch.sign_in_during_emergency(visit, user, now, home)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    tx.save_visit(visit, now)
    tx.audit(user, "back_during_emergency", now, visit.id, home=home)
    if notify:
        tag = f"back{int(now.timestamp())}"
        tx.send([*alerts.emergency_sign_in(visit, now, ctx.policy), *contact_updates(ctx, tx, visit, now, tag)], now, visit.id)
    return as_the_team_sees(visit)


def is_duress(tx: Tx, user: str, text: str) -> bool:
    """Whether `text` is this user's duress word."""
    return duress.matches(text, tx.duress_of(user))


Action = Callable[[Tx, datetime], Reply]


AfterAlarm = Callable[[Tx, Visit, datetime], object]


def duress_aware(
    ctx: Ctx, user: str, text: str, action: Action, not_duress: Action | None = None, after_alarm: AfterAlarm | None = None
) -> Reply:
    """Run `action` (the normal /back or check-in). If `text` is the user's duress word, the visitor
    sees exactly what `action` would have shown (reply or refusal), nothing they could see changes,
    and a silent alarm goes to the safeguarding channel and the DSLs; `after_alarm` then records what
    the visitor believes happened (e.g. signed in). Other text runs `not_duress` (default: `action`)."""
    now = ctx.now()
    outcome: Reply | CommandError
    # The scrypt comparison takes tens of ms: do it before taking the write lock, not while holding it.
    under_duress = bool(text.strip()) and is_duress(ctx.store.read(), user, text)
    with ctx.store.transaction() as tx:
        if not text.strip():
            outcome = action(tx, now)
        elif not under_duress:
            outcome = (not_duress or action)(tx, now)
        else:
            # Work out the normal outcome, then undo it: only the alarm is kept.
            with ctx.store.savepoint(tx, keep=False):
                try:
                    outcome = action(tx, now)
                except CommandError as exc:
                    outcome = exc
            visit = tx.live_visit_of(user)
            # The audit records that a duress alarm was raised, never the word.
            if visit is None:
                tx.audit(user, "emergency_duress_no_visit", now)
                tx.send(alerts.sos_without_visit(user, None, now, ctx.policy, ctx.phone(user), silent=True), now)
            else:
                visit = _emergency(ctx, tx, visit, user, "duress", None, now)
                if after_alarm is not None and not isinstance(outcome, CommandError):
                    after_alarm(tx, visit, now)
    ctx.wake()
    if isinstance(outcome, CommandError):
        raise outcome
    return outcome


def checkin_reply(visit: Visit, now: datetime, ctx: Ctx) -> Reply:
    """The visitor's reply to a check-in."""
    nxt = visit.watch.next_checkin_at
    then = f" Next check-in at {notices.clock(nxt, ctx.policy)}." if nxt else ""
    return Reply(f"Thanks, checked in at {notices.clock(now, ctx.policy)}.{then}")


def checkin(ctx: Ctx, user: str, text: str = "") -> Reply:
    """I'm OK (the button, `/checkin`, or a typed reply); a duress word raises a silent alarm."""

    def normal(tx: Tx, now: datetime) -> Reply:
        visit = _live(tx, user, "check in to")
        try:
            answered_visit = watch.checkin(visit, user, now, ctx.policy)
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        tx.save_visit(answered_visit, now)
        tx.audit(user, "checkin", now, visit.id)
        ref = f"checkin:{visit.id}:{visit.watch.checkins_sent}"
        answered = [
            Message(to=user, text=f"Checked in at {notices.clock(now, ctx.policy)}. Thank you.", key=f"answered:{ref}", replaces=ref)
        ] if visit.watch.checkin_deadline else []
        tx.send([*answered, *contact_updates(ctx, tx, answered_visit, now, f"checkin{int(now.timestamp())}")], now, visit.id)
        return checkin_reply(answered_visit, now, ctx)

    return duress_aware(ctx, user, text, normal)


USAGE = Reply("Use `/visit`, `/out`, `/checkin`, `/extend 20m`, `/back` or `/sos`. `/visitsafe help` says more.")


def typed(ctx: Ctx, user: str, text: str) -> Reply:
    """Something typed in the DM: an answer to a pending check-in counts as I'm OK; otherwise the usage
    reply. Either way the duress word raises the silent alarm behind the reply the visitor expects."""
    live = ctx.store.read().live_visit_of(user)
    if live is not None and live.watch.checkin_deadline is not None:
        return checkin(ctx, user, text)
    return duress_aware(ctx, user, text, lambda tx, now: USAGE)


def extend(ctx: Ctx, user: str, text: str) -> Reply:
    """Running late: a new expected return (a duration from now or from the old time, or a clock time)."""
    text = text.strip()
    if not text:
        raise CommandError("Say how much longer you need: `/extend 20m`, `/extend 1h` or `/extend 11:30`.")
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = _live(tx, user, "extend")
        assert visit.expected_return is not None
        try:
            if parse_clock(text) is not None:
                new_return = resolve_return(text, now, ctx.policy.tz)
            else:
                added = parse_duration(text)
                if added.total_seconds() <= 0:
                    raise BadDuration("the extra time must be more than zero")
                new_return = max(now, visit.expected_return) + added
        except BadDuration as exc:
            problem = str(exc) if "zero" in str(exc) or "passed" in str(exc) else f"'{text}' is not a duration or a time"
            raise CommandError(f"{problem}: use `/extend 20m`, `/extend 1h` or `/extend 11:30`.") from None
        try:
            check_within_limit(new_return, now, ctx.policy)
            visit = watch.extend(visit, user, new_return, now, ctx.policy)
        except TooLong as exc:
            raise CommandError(
                f"You can extend to at most {exc.limit} from now (back by {exc.latest}), the longest visit the policy allows."
                " Give an earlier time, and `/extend` again later if you need to. If you are not safe, use `/sos`."
            ) from None
        except NotAllowed as exc:
            raise CommandError(str(exc)) from None
        tx.save_visit(visit, now)
        tx.audit(user, "extended", now, visit.id, expected_return=new_return.isoformat())
        tx.send(
            [*alerts.board_extended(visit, now, ctx.policy), *contact_updates(ctx, tx, visit, now, f"extend{int(now.timestamp())}")],
            now,
            visit.id,
        )
    ctx.wake()
    return Reply(f"Now due back at *{notices.due(new_return, now, ctx.policy)}*. The office board shows it.")


def sos(ctx: Ctx, user: str, note: str = "", kind: str = "sos") -> Reply:
    """Immediate alert to the safeguarding channel, the DSL and the office, with the safety log."""
    now = ctx.now()
    note = note.strip() or None  # type: ignore[assignment]
    try:
        with ctx.store.transaction() as tx:
            visit = tx.live_visit_of(user)
            if visit is None:
                tx.audit(user, "sos_no_visit", now)
                tx.send(alerts.sos_without_visit(user, note, now, ctx.policy, ctx.phone(user)), now)
            else:
                _emergency(ctx, tx, visit, user, kind, note, now)
    except NotWritable:
        return _sos_directly(ctx, user, kind, note, now)
    ctx.wake()
    return Reply(
        ":sos: Alert sent to the safeguarding team, the DSL and the office. Help is being arranged."
        " *Call 999 if you or a child are in immediate danger.* Get to a safe place if you can."
    )


def _sos_directly(ctx: Ctx, user: str, kind: str, note: str | None, now: datetime) -> Reply:
    """The database cannot be written: the alert goes straight to the responders, and the visitor is told to phone."""
    visit = ctx.store.read().live_visit_of(user)
    if visit is None:
        messages = alerts.sos_without_visit(user, note, now, ctx.policy, ctx.phone(user))
    else:
        messages = alerts.emergency_messages(watch.raise_emergency(visit, user, kind, note, now), now, ctx.policy, ctx.phone)
        ctx.direct.remember(("sos", user, kind, note, now))
    if ctx.direct.send(messages):
        return Reply(
            ":sos: Our system could not record your alert, so it was sent straight to the safeguarding team, the DSL"
            " and the office. *Phone 999 if you or a child are in immediate danger*, then phone the DSL."
        )
    return Reply(
        ":x: Your alert could not be sent. *Phone 999 if you or a child are in immediate danger*, then phone the DSL."
    )


def record_direct_sos(ctx: Ctx) -> int:
    """SOSs sent directly while the database was read-only become open emergencies (their repeats run)."""
    recorded = 0
    events = ctx.direct.take()
    for index, (_, user, kind, note, at) in enumerate(events):
        try:
            with ctx.store.transaction() as tx:
                visit = tx.live_visit_of(user)
                if visit is not None:
                    visit = _emergency(ctx, tx, visit, user, kind, note, at)
                    mark_sent_directly(ctx.direct, tx, alerts.emergency_messages(visit, at, ctx.policy, ctx.phone), at)
                    recorded += 1
        except NotWritable:
            for event in events[index:]:
                ctx.direct.remember(event)
            break
    return recorded


def set_duress_word(ctx: Ctx, user: str, word: str) -> None:
    """Store a personal duress word (salted hash only); raise CommandError if it is unsuitable."""
    problem = duress.check_new_word(word)
    if problem:
        raise CommandError(problem)
    salt, digest = duress.hash_word(word)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        tx.set_duress(user, salt, digest, now)
        tx.audit(user, "duress_word_set", now)


def _act(ctx: Ctx, user: str, visit_id: int, action: str, change, note: str | None = None) -> Visit:  # type: ignore[no-untyped-def]
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = _load(tx, visit_id)
        try:
            visit = change(visit, now)
        except NotAllowed as exc:
            tx.audit(user, f"{action}_refused", now, visit_id, why=str(exc))
            raise CommandError(str(exc)) from None
        tx.save_visit(visit, now)
        tx.audit(user, action, now, visit.id)
        messages = contact_updates(ctx, tx, visit, now, f"{action}{int(now.timestamp())}")
        if action == "confirmed_safe" and visit.watch.emergency == "duress":
            # The office board never heard of a silent alarm: it shows an ordinary sign-in.
            messages += notices.office_board_back(as_the_team_sees(visit), ctx.policy)
        elif action == "confirmed_safe":
            messages += alerts.board_safe(visit, now, ctx.policy)
        if action == "confirmed_safe":
            messages += texts.tell_texted_it_is_over(ctx, tx, visit, now)
            if not visit.drill:
                # Over for its team too, as after /back: the same outcome question (nothing of an alarm), timers from now.
                aftervisit.signed_in(ctx, tx, as_the_team_sees(visit), now)
        tx.send(messages, now, visit.id)
    ctx.wake()
    return visit


def acknowledge(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """I'm handling this: first click wins; the next tier waits for `ack_pause`."""
    visit = _act(ctx, user, visit_id, "acknowledged", lambda v, now: watch.acknowledge(v, user, now, ctx.policy))
    assert visit.watch.paused_until is not None
    return Reply(
        f"You are handling visit #{visit.id}. The next step waits until {notices.clock(visit.watch.paused_until, ctx.policy)};"
        " click *Reached, safe* once you have spoken to them."
    )


def no_answer(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """Tried, no answer: escalate to the next tier now."""
    _act(ctx, user, visit_id, "no_answer", lambda v, now: watch.no_answer(v, user, now, ctx.policy))
    return Reply("Recorded. The next people on the ladder are being alerted now.")


def confirm_safe(ctx: Ctx, user: str, visit_id: int, note: str) -> Reply:
    """Reached, safe: ends the alert everywhere."""
    _act(ctx, user, visit_id, "confirmed_safe", lambda v, now: watch.confirm_safe(v, user, note, now, ctx.policy))
    return Reply("Thank you. The alert is closed everywhere and the visit is signed in.")


def check_responder(ctx: Ctx, user: str, visit_id: int) -> None:
    """Before opening the 'safe' note form: could this user confirm safety now?"""
    visit = _load(ctx.store.read(), visit_id)
    try:
        watch.confirm_safe(visit, user, "check", ctx.now(), ctx.policy)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
