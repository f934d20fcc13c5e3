"""The visit lifecycle: states, and the only transitions between them."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import Enum

from flows.durations import format_duration, local_time
from flows.policy import Policy, Role, Tier
from flows.request import RiskAnswers, VisitDetails
from flows.risk import RiskAssessment


class State(str, Enum):
    """Where a visit is in its life: requested, approved, out, overdue, back and the rest."""

    requested = "requested"
    approved = "approved"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"
    out = "out"
    overdue = "overdue"
    emergency = "emergency"
    returned = "returned"
    closed = "closed"


LIVE = frozenset({State.out, State.overdue, State.emergency})
FINISHED = frozenset({State.declined, State.cancelled, State.expired, State.returned, State.closed})


class NotAllowed(Exception):
    """An action the rules do not allow now; the message is said to the user as is."""


class TooLong(NotAllowed):
    """An expected return further off than the policy's `max_visit_length` (the message suits /out)."""

    def __init__(self, limit: str, latest: str):
        super().__init__(
            f"That return is more than {limit} from now, the longest visit the policy allows: be back by {latest}."
            " Give an earlier time, like `/out 1h30m`, and use `/extend` while you are out if you need longer."
        )
        self.limit, self.latest = limit, latest


def check_within_limit(expected_return: datetime, now: datetime, policy: Policy) -> None:
    """Raise TooLong if `expected_return` is more than the policy's `max_visit_length` after now."""
    if expected_return - now > policy.max_visit_length:
        latest = now + policy.max_visit_length
        raise TooLong(format_duration(policy.max_visit_length), local_time(latest, now, policy.tz))


@dataclass(frozen=True)
class Slot:
    """One approval the visit needs: from a holder of any of `roles`."""

    name: str
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class Decision:
    """One approver's decision, filling one slot."""

    slot: str
    approver: str
    approved: bool
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class Watch:
    """The safety-net state of one live visit (stored with it)."""

    episode: int = 0                        # a new episode starts when the visitor makes contact again
    anchor: datetime | None = None          # the ladder is measured from here
    tier_sent: int = 0                      # ladder tiers fired in this episode
    fire_now: bool = False                  # "No answer": the next tier is due at once
    ack_by: str | None = None
    ack_at: datetime | None = None
    paused_until: datetime | None = None
    last_alarm_at: datetime | None = None   # last ladder tier or repeat sent
    repeats: int = 0
    next_checkin_at: datetime | None = None
    checkin_deadline: datetime | None = None
    checkins_sent: int = 0
    last_contact_at: datetime | None = None
    emergency: str | None = None            # "sos", "help" or "duress"
    emergency_by: str | None = None         # who raised it: the visitor or a companion
    emergency_note: str | None = None
    # The visitor signed back in during an emergency: only a responder ends it, so the visit stays
    # live for them while the visitor (and anyone watching their screen) sees a normal sign-in.
    signed_in_at: datetime | None = None
    signed_in_by: str | None = None
    signed_in_home: bool = False
    safe_by: str | None = None
    safe_note: str | None = None


@dataclass(frozen=True)
class Visit:
    """One home visit, from request to close."""

    requester: str
    details: VisitDetails
    answers: RiskAnswers
    assessment: RiskAssessment
    slots: tuple[Slot, ...]
    created_at: datetime
    start_at: datetime  # planned start, aware; fixed at request time in the school's zone
    state: State = State.requested
    id: int | None = None
    decisions: tuple[Decision, ...] = ()
    departed_at: datetime | None = None
    expected_return: datetime | None = None
    returned_at: datetime | None = None
    returned_home: bool = False
    # The ladder is frozen onto the visit at /out so an edited policy never changes a running one.
    ladder: tuple[Tier, ...] = field(default=())
    watch: Watch = field(default_factory=lambda: Watch())
    # Harton/Hampton: several visits in one trip, reported on at the end. The lead visit's id, and
    # this visit's place in the round (0 is the first).
    round_lead: int | None = None
    round_pos: int = 0
    # A ladder drill (issue 15): a marked test visit; never a real event, never mistaken for one.
    drill: bool = False

    @property
    def companions(self) -> tuple[str, ...]:
        """Colleagues going on the visit."""
        return self.answers.companions

    @property
    def team(self) -> tuple[str, ...]:
        """Everyone going on the visit: the visitor first."""
        return (self.requester, *self.companions)


def cancel(visit: Visit, actor: str, now: datetime) -> Visit:
    """The requester withdraws a visit that has not started."""
    if actor != visit.requester:
        raise NotAllowed("Only the member of staff who asked for this visit can cancel it.")
    if visit.state not in (State.requested, State.approved):
        raise NotAllowed(f"This visit is {visit.state.value}; only a requested or approved visit can be cancelled.")
    return replace(visit, state=State.cancelled)


def expire(visit: Visit, now: datetime) -> Visit:
    """An undecided request whose start time has passed."""
    if visit.state is not State.requested:
        raise NotAllowed(f"This visit is {visit.state.value}, not waiting for approval.")
    if now < visit.start_at:
        raise NotAllowed("This request's start time has not passed yet.")
    return replace(visit, state=State.expired)


def end_of_day(moment: datetime, policy: Policy) -> datetime:
    """Midnight after `moment`, in the school's time zone."""
    local = moment.astimezone(policy.tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=policy.tz)


def expire_unstarted(visit: Visit, now: datetime, policy: Policy) -> Visit:
    """An approved visit nobody signed out for by the end of its day (school time zone)."""
    if visit.state is not State.approved:
        raise NotAllowed(f"This visit is {visit.state.value}, not approved and waiting to start.")
    if now < end_of_day(visit.start_at, policy):
        raise NotAllowed("This visit's day is not over yet.")
    return replace(visit, state=State.expired)


def go_out(visit: Visit, actor: str, now: datetime, expected_return: datetime, policy: Policy) -> Visit:
    """The visitor signs out: departure recorded, expected return set, ladder frozen."""
    check_can_start(visit, actor, policy)
    if expected_return <= now:
        raise NotAllowed("The expected return must be in the future.")
    check_within_limit(expected_return, now, policy)
    return replace(
        visit,
        state=State.out,
        departed_at=now,
        expected_return=expected_return,
        ladder=tuple(policy.escalation),
        watch=Watch(
            anchor=expected_return,
            last_contact_at=now,
            next_checkin_at=next_checkin(now, expected_return, policy),
        ),
    )


def check_can_start(visit: Visit, actor: str, policy: Policy) -> None:
    """Why this visitor may not start this visit now, if they may not (raises NotAllowed)."""
    if actor != visit.requester:
        raise NotAllowed("Only the member of staff who asked for this visit can sign out for it.")
    if visit.state is State.requested:
        raise NotAllowed("This visit has not been approved yet: you cannot go out until it is.")
    if visit.state in LIVE:
        raise NotAllowed("You are already out on this visit. Use /back when you return.")
    if visit.state is not State.approved:
        raise NotAllowed(f"This visit is {visit.state.value}: it cannot be started.")
    if (visit.assessment.companion_reasons or policy.pairs_required) and not visit.companions:
        raise NotAllowed("A companion is required for this visit and none is recorded: you cannot go alone.")


def next_checkin(now: datetime, expected_return: datetime, policy: Policy) -> datetime | None:
    """When to ask "Still OK?" next; None when check-ins are off or the return comes first."""
    if policy.checkin_interval is None:
        return None
    due = now + policy.checkin_interval
    # A check-in at or after the expected return is the ladder's job.
    return due if due < expected_return else None


def come_back(visit: Visit, actor: str, now: datetime, home: bool = False) -> Visit:
    """The visitor (or a companion) reports the visit over: back at school, or gone home."""
    if actor not in visit.team:
        raise NotAllowed("Only the visitor or a companion can sign back in from this visit.")
    if visit.state not in LIVE:
        raise NotAllowed(f"This visit is {visit.state.value}, not out: there is nothing to sign back in from.")
    return replace(visit, state=State.returned, returned_at=now, returned_home=home)


def planned_return(visit: Visit, now: datetime) -> datetime:
    """The default expected return at /out: now plus the planned duration."""
    return now + visit.details.duration


def overdue_by(visit: Visit, now: datetime) -> timedelta:
    """How long past the expected return a live visit is (zero if not yet)."""
    if visit.expected_return is None or now <= visit.expected_return:
        return timedelta(0)
    return now - visit.expected_return


def start_round(visits: list[Visit], actor: str, now: datetime, expected_return: datetime, policy: Policy) -> list[Visit]:
    """Several approved visits in one trip: the first starts now, the rest follow in order; one
    expected return covers the round."""
    if len(visits) < 2:
        raise NotAllowed("A round needs at least two approved visits.")
    for visit in visits[1:]:
        check_can_start(visit, actor, policy)
    first = go_out(visits[0], actor, now, expected_return, policy)
    lead = first.id
    return [replace(visit, round_lead=lead, round_pos=pos) for pos, visit in enumerate([first, *visits[1:]])]


def move_on(current: Visit, following: Visit, actor: str, now: datetime) -> tuple[Visit, Visit]:
    """The visitor leaves one address of a round for the next: the timers go with them."""
    if actor not in current.team:
        raise NotAllowed("Only the visitor or a companion can move the round on.")
    if current.state is not State.out:
        raise NotAllowed(
            f"This visit is {current.state.value}: use `/extend` or `/back` first, so the people alerted know where you are."
        )
    if following.round_lead != current.round_lead or following.state is not State.approved:
        raise NotAllowed("That visit is not the next one of your round.")
    done = replace(current, state=State.returned, returned_at=now)
    moved = replace(
        following,
        state=State.out,
        departed_at=now,
        expected_return=current.expected_return,
        ladder=current.ladder,
        watch=replace(current.watch, last_contact_at=now),
    )
    return done, moved
