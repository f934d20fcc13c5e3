"""The safety net while a visit is out: check-ins, the overdue ladder, acknowledgements, SOS.

Everything here is a pure function of (visit, now, policy): the database holds the timers and
the sweep calls `advance` for each visit whose `next_due` has come.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from flows.durations import format_duration
from flows.policy import Policy, Role
from flows.visit import LIVE, NotAllowed, State, Visit, Watch, next_checkin

# Who may act on an alert: the people the ladder reaches, never the visiting team itself.
RESPONDERS = {Role.office, Role.dsl, Role.head, Role.senior_leader, Role.elt, Role.team_leader}


@dataclass(frozen=True)
class Alarm:
    """One thing the sweep must send now; flows.alerts turns it into messages."""

    kind: str          # "checkin", "tier", "repeat"
    tier: int = -1     # index into the ladder for "tier"
    number: int = 0    # check-in number or repeat number


def tier_due_at(visit: Visit, index: int) -> datetime:
    """When ladder tier `index` falls due in the current episode (pauses and "No answer" included)."""
    w = visit.watch
    assert w.anchor is not None
    due = w.anchor + visit.ladder[index].after
    if w.fire_now and w.last_alarm_at is not None:
        due = min(due, w.last_alarm_at)
    if w.paused_until is not None and w.paused_until > due:
        due = w.paused_until
    return due


def _repeat_due_at(visit: Visit, policy: Policy) -> datetime | None:
    w = visit.watch
    # A drill ends after its last tier (commands.drill reports it): it never repeats.
    if w.last_alarm_at is None or visit.drill:
        return None
    if w.fire_now:
        return w.last_alarm_at
    due = w.last_alarm_at + policy.repeat_interval
    if w.paused_until is not None and w.paused_until > due:
        due = w.paused_until
    return due


def next_due(visit: Visit, policy: Policy) -> datetime | None:
    """The earliest moment the sweep must look at this visit again (None: nothing scheduled)."""
    if visit.state not in LIVE:
        return None
    w = visit.watch
    # No check-ins during an emergency: only the repeats until someone confirms safety.
    checkins = () if visit.state is State.emergency else (w.next_checkin_at, w.checkin_deadline)
    times = [t for t in checkins if t is not None]
    if visit.state is State.emergency or w.tier_sent >= len(visit.ladder):
        repeat = _repeat_due_at(visit, policy)
        if repeat is not None:
            times.append(repeat)
    elif w.anchor is not None:
        times.append(tier_due_at(visit, w.tier_sent))
    return min(times) if times else None


def advance(visit: Visit, now: datetime, policy: Policy) -> tuple[Visit, list[Alarm]]:
    """Everything due at `now`, each once and in order; safe to call again with the result."""
    if visit.state not in LIVE:
        return visit, []
    alarms: list[Alarm] = []
    w = visit.watch
    if w.checkin_deadline is not None and w.checkin_deadline <= now:
        # A missed check-in starts the ladder from the moment the answer was due.
        anchor = w.anchor if w.anchor is not None and w.anchor <= w.checkin_deadline else w.checkin_deadline
        w = replace(w, checkin_deadline=None, next_checkin_at=None, anchor=anchor)
    if w.next_checkin_at is not None and w.next_checkin_at <= now and visit.expected_return is not None and now >= visit.expected_return:
        # A check-in first noticed at or after the expected return (a late sweep) is the ladder's job.
        w = replace(w, next_checkin_at=None)
    if w.next_checkin_at is not None and w.next_checkin_at <= now and visit.state is State.out:
        w = replace(
            w,
            next_checkin_at=None,
            checkin_deadline=now + policy.checkin_grace,
            checkins_sent=w.checkins_sent + 1,
        )
        alarms.append(Alarm("checkin", number=w.checkins_sent))
    if w is not visit.watch:  # a Visit is 20 frozen fields: copy it only when its watch changed
        visit = replace(visit, watch=w)

    if visit.state is not State.emergency:
        while visit.watch.tier_sent < len(visit.ladder) and tier_due_at(visit, visit.watch.tier_sent) <= now:
            index = visit.watch.tier_sent
            visit = replace(
                visit,
                state=State.overdue,
                watch=replace(visit.watch, tier_sent=index + 1, fire_now=False, last_alarm_at=now),
            )
            alarms.append(Alarm("tier", tier=index))
        if visit.watch.tier_sent < len(visit.ladder):
            return visit, alarms
    repeat = _repeat_due_at(visit, policy)
    if repeat is not None and repeat <= now and not any(a.kind == "tier" for a in alarms):
        # The ladder is exhausted (or an SOS is open) and nobody has confirmed safety: say it again.
        number = visit.watch.repeats + 1
        visit = replace(visit, watch=replace(visit.watch, repeats=number, last_alarm_at=now, fire_now=False))
        alarms.append(Alarm("repeat", number=number))
    return visit, alarms


def _live(visit: Visit) -> None:
    if visit.drill:
        # A real alert's buttons never act on a drill (only a forged click could carry a drill's id).
        raise NotAllowed("This is a drill, not a real alert: answer it with its Seen (drill) button.")
    if visit.state not in LIVE:
        raise NotAllowed(f"This visit is {visit.state.value}: the alert is already over.")


def _responder(visit: Visit, user: str, policy: Policy) -> None:
    if user in visit.team:
        raise NotAllowed("You are on this visit: use /back, /checkin or /extend instead.")
    if not policy.roles.of(user) & RESPONDERS:
        raise NotAllowed("Only the office, the DSL, the head or a senior leader can act on this alert.")


def alert_open(visit: Visit) -> bool:
    """Whether anyone beyond the visiting team has been alerted and nobody has confirmed safety yet."""
    if visit.state is State.emergency:
        return True
    if visit.state is not State.overdue:
        return False
    fired = visit.ladder[: visit.watch.tier_sent]
    return visit.watch.repeats > 0 or any(a not in ("visitor", "companions") for tier in fired for a in tier.notify)


def acknowledge(visit: Visit, user: str, now: datetime, policy: Policy) -> Visit:
    """I'm handling this: the first click wins and pauses the next tier for `ack_pause`."""
    _live(visit)
    _responder(visit, user, policy)
    if not alert_open(visit):
        raise NotAllowed("There is no open alert on this visit.")
    w = visit.watch
    if w.ack_by is not None and w.paused_until is not None and w.paused_until > now:
        raise NotAllowed(f"<@{w.ack_by}> is already handling this.")
    return replace(visit, watch=replace(w, ack_by=user, ack_at=now, paused_until=now + policy.ack_pause))


def no_answer(visit: Visit, user: str, now: datetime, policy: Policy) -> Visit:
    """Tried and got no answer: the next tier is due at once, and any pause ends."""
    _live(visit)
    _responder(visit, user, policy)
    if not alert_open(visit):
        raise NotAllowed("There is no open alert on this visit.")
    return replace(visit, watch=replace(visit.watch, fire_now=True, paused_until=None, last_alarm_at=now))


def confirm_safe(visit: Visit, user: str, note: str, now: datetime, policy: Policy) -> Visit:
    """Someone reached the visitor: the alert ends everywhere and the visit is over (only while an alert is open)."""
    _live(visit)
    _responder(visit, user, policy)
    if not alert_open(visit):
        # E.g. the visitor extended after the alert: closing the visit now would stop their check-ins.
        raise NotAllowed("There is no open alert on this visit now (the visitor has been in touch): nothing was changed.")
    if not note.strip():
        raise NotAllowed("Say how you know they are safe (e.g. 'spoke to Sam on the phone, on the way back').")
    return replace(
        visit,
        state=State.returned,
        returned_at=now,
        watch=replace(visit.watch, safe_by=user, safe_note=note.strip(), paused_until=None),
    )


def _in_contact(visit: Visit, now: datetime, expected_return: datetime, policy: Policy) -> Visit:
    """The visitor made contact: a new episode, the ladder re-timed from the expected return."""
    w = visit.watch
    fresh = Watch(
        episode=w.episode + 1,
        anchor=expected_return,
        last_contact_at=now,
        next_checkin_at=next_checkin(now, expected_return, policy),
        checkins_sent=w.checkins_sent,
    )
    state = State.out if visit.state is State.overdue else visit.state
    if visit.state is State.emergency:
        fresh = replace(w, last_contact_at=now, checkin_deadline=None, next_checkin_at=fresh.next_checkin_at)
    return replace(visit, state=state, expected_return=expected_return, watch=fresh)


def checkin(visit: Visit, user: str, now: datetime, policy: Policy) -> Visit:
    """I'm OK: the visitor answers (or pre-empts) a check-in."""
    if user not in visit.team:
        raise NotAllowed("Only the visitor or a companion can check in for this visit.")
    _live(visit)
    assert visit.expected_return is not None
    if visit.state is not State.emergency and now >= visit.expected_return:
        # Past the expected return "I'm OK" is not enough: the ladder goes on until /extend or /back.
        due = visit.expected_return.astimezone(policy.tz).strftime("%H:%M")
        raise NotAllowed(f"You were due back at {due}: use `/extend 20m` to say when you will be back, or `/back`.")
    return _in_contact(visit, now, visit.expected_return, policy)


def extend(visit: Visit, user: str, new_return: datetime, now: datetime, policy: Policy) -> Visit:
    """Running late: a new expected return; the ladder is re-timed from it."""
    if user not in visit.team:
        raise NotAllowed("Only the visitor or a companion can extend this visit.")
    _live(visit)
    if new_return <= now:
        raise NotAllowed("The new return time must be in the future.")
    return _in_contact(visit, now, new_return, policy)


def raise_emergency(visit: Visit, user: str, kind: str, note: str | None, now: datetime) -> Visit:
    """SOS, Need help or a duress word: an emergency that repeats until someone confirms safety."""
    if user not in visit.team:
        raise NotAllowed("Only the visitor or a companion can raise an SOS for this visit.")
    _live(visit)
    w = visit.watch
    return replace(
        visit,
        state=State.emergency,
        watch=replace(
            w, emergency=kind, emergency_by=user, emergency_note=note, last_alarm_at=now, ack_by=None, paused_until=None,
            next_checkin_at=None, checkin_deadline=None,
        ),
    )


def sign_in_during_emergency(visit: Visit, user: str, now: datetime, home: bool) -> Visit:
    """/back during an SOS or duress alarm: recorded, but the alarm stays open until a responder confirms safety."""
    if user not in visit.team:
        raise NotAllowed("Only the visitor or a companion can sign back in from this visit.")
    if visit.state is not State.emergency:
        raise NotAllowed("There is no emergency open on this visit.")
    return replace(visit, watch=replace(visit.watch, signed_in_at=now, signed_in_by=user, signed_in_home=home))


def signed_in_during_emergency(visit: Visit) -> bool:
    """Whether the visiting team signed back in while an emergency stays open."""
    return visit.state is State.emergency and visit.watch.signed_in_at is not None


def as_the_team_sees(visit: Visit) -> Visit:
    """The visit as its own team sees it: signed back in during an emergency reads as returned, and a
    silent alarm confirmed safe reads as an ordinary sign-in."""
    w = visit.watch
    if signed_in_during_emergency(visit):
        return replace(visit, state=State.returned, returned_at=w.signed_in_at, returned_home=w.signed_in_home)
    if w.emergency == "duress" and w.safe_by is not None:
        quiet = replace(w, safe_by=None, safe_note=None)
        return replace(visit, watch=quiet, returned_at=w.signed_in_at or visit.returned_at, returned_home=w.signed_in_home)
    return visit


def overdue_minutes(visit: Visit, now: datetime) -> int:
    """Whole minutes past the anchor of the ladder (0 if not yet)."""
    anchor = visit.watch.anchor or visit.expected_return
    if anchor is None or now <= anchor:
        return 0
    return int((now - anchor) / timedelta(minutes=1))


@dataclass(frozen=True)
class BackwardStep:
    """A backward wall-clock step as it applies to stored times.

    Times written while the clock was ahead (at or after `ahead_since`, when a forward step of
    `ahead_by` is being put right) move back by the whole step; older times move back only by
    what the step takes beyond that offset. With no forward step to put right, every time moves
    back by the step, so each timer still comes at its real (monotonic) moment.
    """

    back: timedelta
    ahead_since: datetime | None = None
    ahead_by: timedelta = timedelta(0)

    def moved(self, moment: datetime | None) -> datetime | None:
        """Where a stored time belongs on the corrected clock."""
        if moment is None:
            return None
        if self.ahead_since is not None and moment >= self.ahead_since:
            return moment - self.back
        return moment - max(self.back - self.ahead_by, timedelta(0))


_WATCH_TIMES = tuple(f.name for f in fields(Watch) if "datetime" in str(f.type))


def after_backward_step(visit: Visit, now: datetime, step: BackwardStep, policy: Policy) -> Visit:
    """A live visit after the clock stepped back: timers re-timed, and every tier (and check-in)
    whose time has not yet come by the corrected clock `now` armed to fire again when it comes."""
    if visit.state not in LIVE:
        return visit
    w = replace(visit.watch, **{name: step.moved(getattr(visit.watch, name)) for name in _WATCH_TIMES})
    visit = replace(visit, watch=w, departed_at=step.moved(visit.departed_at), expected_return=step.moved(visit.expected_return))
    if visit.state is State.emergency or w.anchor is None:
        return visit  # an emergency repeats until someone confirms safety: no ladder to re-arm
    come = sum(1 for tier in visit.ladder if w.anchor + tier.after <= now)
    if come < w.tier_sent:
        # Sent early by a clock that was ahead: a new episode, so the outbox sends them again (new keys).
        w = replace(w, episode=w.episode + 1, tier_sent=come, repeats=0, fire_now=False)
        visit = replace(visit, state=State.overdue if come else State.out, watch=w)
    if visit.state is State.out and w.next_checkin_at is None and w.checkin_deadline is None and visit.expected_return is not None:
        # A check-in the ahead clock skipped (it thought the visit already due back) comes back.
        due = next_checkin(w.last_contact_at or visit.departed_at or now, visit.expected_return, policy)
        if due is not None and due > now:
            visit = replace(visit, watch=replace(w, next_checkin_at=due))
    return visit


def clock_ahead_note(ahead_by: timedelta, since: datetime, policy: Policy) -> str:
    """Said under every alert while a forward clock step is not put right: it may be early, act on it anyway."""
    jumped = (since - ahead_by).astimezone(policy.tz).strftime("%H:%M")
    return (
        f":clock3: The server clock jumped forward by {format_duration(ahead_by)} at {jumped} and has not been put"
        " right, so this may have come early. Act on it all the same."
    )
