"""The safety net while a visit is out: check-ins, the overdue ladder, acknowledgements, SOS.

Everything here is a pure function of (visit, now, policy): the database holds the timers and
the sweep calls `advance` for each visit whose `next_due` has come.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

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
    if w.last_alarm_at is None:
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
            w, emergency=kind, emergency_note=note, last_alarm_at=now, ack_by=None, paused_until=None,
            next_checkin_at=None, checkin_deadline=None,
        ),
    )


def overdue_minutes(visit: Visit, now: datetime) -> int:
    """Whole minutes past the anchor of the ladder (0 if not yet)."""
    anchor = visit.watch.anchor or visit.expected_return
    if anchor is None or now <= anchor:
        return 0
    return int((now - anchor) / timedelta(minutes=1))
