"""The words each person receives at each step of a visit."""
from __future__ import annotations

from datetime import datetime

from flows import actions
from flows.approvals import ROLE_NAMES, everyone, waiting_for
from flows.audiences import destinations
from flows.durations import format_duration, local_time
from flows.messages import Button, Message, esc, mention
from flows.policy import Policy
from flows.request import REASONS, TRAVEL_MODES, VISIT_TYPES
from flows.visit import State, Visit


def when(moment: datetime, policy: Policy) -> str:
    """A time as staff read it, in the school's time zone."""
    return moment.astimezone(policy.tz).strftime("%a %d %b %H:%M")


def clock(moment: datetime, policy: Policy) -> str:
    """Just the clock time, in the school's time zone."""
    return moment.astimezone(policy.tz).strftime("%H:%M")


def due(moment: datetime, now: datetime, policy: Policy) -> str:
    """An expected return as the board shows it: the clock time, with the date when it is not today."""
    return local_time(moment, now, policy.tz)


def _slot_words(name: str) -> str:
    return " or ".join(ROLE_NAMES.get(part, part) for part in name.split(" or "))  # type: ignore[call-overload]


def people(users: tuple[str, ...] | list[str]) -> str:
    """A list of people as mentions, or 'nobody'."""
    return ", ".join(mention(u) for u in users) or "nobody"


def visit_fields(visit: Visit, policy: Policy) -> tuple[tuple[str, str], ...]:
    """The request as approvers see it (private: DMs only)."""
    d = visit.details
    reason = REASONS[d.reason] + (f": {d.reason_other}" if d.reason == "other" and d.reason_other else "")
    parents = "yes" if d.parents_informed else f"no ({d.parents_not_informed_reason or 'not planned'})"
    return (
        ("Pupil / family", d.pupil_ref),
        ("Address", d.address),
        ("Contact number", d.contact_phone),
        ("Reason", reason),
        ("Type", f"{VISIT_TYPES[d.visit_type]}, {'planned' if d.planned else 'unplanned'}"),
        ("When", f"{when(visit.start_at, policy)} for {format_duration(d.duration)}"),
        ("Travel", f"{TRAVEL_MODES[d.travel_mode]}: {d.travel_details}"),
        ("Parents informed", parents),
    )


def _risk_notes(visit: Visit) -> tuple[str, ...]:
    a = visit.assessment
    notes = [f"Risk level: *{a.level}*" + (f" ({', '.join(a.concerns)})" if a.concerns else "")]
    if visit.answers.other_agencies:
        notes.append(f"Other agencies: {esc(visit.answers.other_agencies)}")
    if visit.answers.other_concerns:
        notes.append(f"Other concern: {esc(visit.answers.other_concerns)}")
    notes.extend(a.reminders)
    if a.head_reasons:
        notes.append("Needs the headteacher's approval: " + ", ".join(a.head_reasons) + ".")
    return tuple(notes)


def approval_request(visit: Visit, approver: str, policy: Policy) -> Message:
    """The DM an approver receives, with Approve and Decline."""
    return Message(
        to=approver,
        text=(
            f"{mention(visit.requester)} asks to make a home visit"
            f" with {people(visit.companions)}. Please approve or decline."
        ),
        fields=visit_fields(visit, policy),
        notes=_risk_notes(visit),
        buttons=(
            Button("Approve", actions.APPROVE, str(visit.id), "primary"),
            Button("Decline", actions.DECLINE, str(visit.id), "danger"),
        ),
        key=f"approval-request:{visit.id}:{approver}",
        ref=f"approval:{visit.id}:{approver}",
    )


# A visit's state as a person would say it (the state names are the code's words).
STATE_WORDS = {"requested": "waiting for approval", "out": "out now", "returned": "back"}


def state_words(state: str) -> str:
    """A visit's state in plain words."""
    return STATE_WORDS.get(state, state)


def _decision_lines(visit: Visit, policy: Policy) -> str:
    lines = []
    for d in visit.decisions:
        verb = "Approved" if d.approved else "Declined"
        reason = f": {esc(d.reason)}" if d.reason else ""
        lines.append(f"{verb} by {mention(d.approver)} ({_slot_words(d.slot)}) at {when(d.at, policy)}{reason}")
    if visit.state is State.requested:
        lines.append("Still waiting for: " + ", ".join(_slot_words(s.name) for s in waiting_for(visit)))
    return "\n".join(lines)


def approval_updates(visit: Visit, policy: Policy) -> list[Message]:
    """Each approver's DM rewritten to show who decided what and when (buttons gone once decided)."""
    decided = visit.state is not State.requested
    updates = []
    for approver in everyone(visit, policy):
        mine = any(d.approver == approver for d in visit.decisions)
        buttons = () if decided or mine else (
            Button("Approve", actions.APPROVE, str(visit.id), "primary"),
            Button("Decline", actions.DECLINE, str(visit.id), "danger"),
        )
        updates.append(
            Message(
                to=approver,
                text=f"Home visit request from {mention(visit.requester)}: *{state_words(visit.state.value)}*.\n"
                + _decision_lines(visit, policy),
                fields=visit_fields(visit, policy),
                buttons=buttons,
                # The state is part of the key: a cancel or expiry after one approval has as many decisions as that approval.
                key=f"approval-update:{visit.id}:{approver}:{len(visit.decisions)}:{visit.state.value}",
                replaces=f"approval:{visit.id}:{approver}",
            )
        )
    return updates


def request_sent(visit: Visit, policy: Policy) -> Message:
    """The requester's receipt: who must approve, and the reminders."""
    waiting = ", ".join(_slot_words(s.name) for s in visit.slots)
    return Message(
        to=visit.requester,
        text=f"Your home visit request for *{esc(visit.details.pupil_ref)}* on"
        f" {when(visit.start_at, policy)} is with: {waiting}. I will tell you each decision.",
        notes=_risk_notes(visit),
        buttons=(Button("Cancel this request", actions.CANCEL_VISIT, str(visit.id)),),
        key=f"request-sent:{visit.id}",
        ref=f"request:{visit.id}",
    )


def cancelled(visit: Visit, policy: Policy) -> list[Message]:
    """The requester's receipt loses its button; every approver's DM says the request was withdrawn; each companion is told."""
    receipt = Message(
        to=visit.requester,
        text=f"You cancelled your home visit for *{esc(visit.details.pupil_ref)}* on {when(visit.start_at, policy)}.",
        key=f"cancelled:{visit.id}",
        replaces=f"request:{visit.id}",
    )
    companions = [
        Message(
            to=companion,
            text=f"{mention(visit.requester)} cancelled the home visit for *{esc(visit.details.pupil_ref)}* on"
            f" {when(visit.start_at, policy)} that you were going on.",
            key=f"cancelled:{visit.id}:{companion}",
        )
        for companion in visit.companions
    ]
    return [receipt, *approval_updates(visit, policy), *companions]


def decision_for_requester(visit: Visit, policy: Policy) -> Message:
    """The requester is told every decision."""
    last = visit.decisions[-1]
    if visit.state is State.approved:
        head = f"Your visit for *{esc(visit.details.pupil_ref)}* is approved. Use `/out` when you leave."
    elif visit.state is State.declined:
        head = f"Your visit for *{esc(visit.details.pupil_ref)}* was declined."
    else:
        head = f"Your visit for *{esc(visit.details.pupil_ref)}* has one approval so far."
    return Message(
        to=visit.requester,
        text=head + "\n" + _decision_lines(visit, policy),
        key=f"decision:{visit.id}:{len(visit.decisions)}:{last.approver}",
    )


def emergency_check(visit: Visit, policy: Policy) -> Message:
    """Unplanned welfare check: the safeguarding channel is told at once."""
    return Message(
        to=policy.channels.safeguarding,
        text=f":rotating_light: Unplanned welfare check requested by {mention(visit.requester)}"
        f" with {people(visit.companions)}. It can go on the DSL's approval alone.",
        fields=visit_fields(visit, policy),
        notes=_risk_notes(visit),
        key=f"emergency-check:{visit.id}",
    )


def safety_checklist(policy: Policy) -> str:
    """The personal-safety checklist in the policy's own words."""
    return "\n".join(f"• {item}" for item in policy.safety_checklist)


def board(visit: Visit, text: str, key: str, policy: Policy) -> list[Message]:
    """A line on the office board, for every audience the policy's `board` names (never an address)."""
    return [
        Message(to=to, text=text, key=f"{key}:{to}")
        for audience in policy.board
        for to in destinations(audience, visit, policy)
    ]


def office_board_out(visit: Visit, policy: Policy) -> list[Message]:
    """Who is out and when they are due."""
    assert visit.expected_return is not None
    return board(
        visit,
        f":walking: {people(visit.team)} left for a home visit (visit #{visit.id})"
        f" at {clock(visit.departed_at or visit.expected_return, policy)}; due back *{due(visit.expected_return, visit.departed_at or visit.expected_return, policy)}*.",
        f"board-out:{visit.id}",
        policy,
    )


def office_board_back(visit: Visit, policy: Policy) -> list[Message]:
    """The visit is over."""
    assert visit.returned_at is not None
    plural = len(visit.team) > 1
    where = f"{'are' if plural else 'is'} safe and {'have' if plural else 'has'} gone home" if visit.returned_home else ("are back" if plural else "is back")
    return board(
        visit,
        f":white_check_mark: {people(visit.team)} {where} from visit #{visit.id} at {clock(visit.returned_at, policy)}.",
        f"board-back:{visit.id}",
        policy,
    )


def office_board_round(visits: list[Visit], policy: Policy) -> list[Message]:
    """A round: which visit is current, when the whole trip is due back."""
    first = visits[0]
    assert first.expected_return is not None
    order = " → ".join(f"#{v.id}" for v in visits)
    return board(
        first,
        f":walking: {people(first.team)} left on a round of {len(visits)} home visits ({order}) at"
        f" {clock(first.departed_at or first.expected_return, policy)}; now at #{first.id};"
        f" due back *{due(first.expected_return, first.departed_at or first.expected_return, policy)}*.",
        f"board-round:{first.id}",
        policy,
    )


def office_board_moved_on(done: Visit, current: Visit, left: int, policy: Policy) -> list[Message]:
    """The visitor moves on to the next address of a round."""
    assert current.expected_return is not None and current.departed_at is not None
    return board(
        current,
        f":arrow_right: {people(current.team)} moved on from #{done.id} to #{current.id} at {clock(current.departed_at, policy)}"
        f" ({left} more after this); due back *{due(current.expected_return, current.departed_at, policy)}*.",
        f"board-next:{current.id}",
        policy,
    )
