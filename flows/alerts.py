"""The words of the safety net: check-ins, each ladder tier, SOS and duress, and their updates.

Each audience gets what it needs to act, and no more: the office gets mobiles, travel and the
visit's contact number; the safeguarding channel, the DSL and the head get the whole safety log.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from flows import actions, cover
from flows.audiences import destinations
from flows.messages import Button, Message, esc, mention
from flows.notices import board, clock, due, people
from flows.policy import Policy, text_audience
from flows.request import TRAVEL_MODES
from flows.visit import Visit
from flows.watch import Alarm, as_the_team_sees, overdue_minutes, signed_in_during_emergency

Phones = Callable[[str], "str | None"]

CALL_999 = "Call 999 if a child or a member of staff is in immediate danger."
POLICE_ASK = (
    "The police will ask for: the staff's names, descriptions and mobiles; the address visited and"
    " the route; the vehicle (registration, make, model); when they left and were due back; when"
    " anyone last heard from them; who has tried to reach them, how and when."
)


def _handling_buttons(visit: Visit, acknowledged: bool = False) -> tuple[Button, ...]:
    vid = str(visit.id)
    # Once someone is handling it, their claim is shown instead of the button (first click wins).
    claim = () if acknowledged else (Button("I'm handling this", actions.ALERT_ACK, vid),)
    return (
        *claim,
        Button("Reached, safe", actions.ALERT_SAFE, vid, "primary"),
        Button("No answer", actions.ALERT_NO_ANSWER, vid, "danger"),
    )


def _visitor_buttons(visit: Visit) -> tuple[Button, ...]:
    vid = str(visit.id)
    return (
        Button("I'm back", actions.VISITOR_BACK, vid, "primary"),
        Button("Extend", actions.CHECKIN_EXTEND, vid),
        Button("Need help", actions.CHECKIN_HELP, vid, "danger"),
    )


def mobiles(visit: Visit, phones: Phones) -> str:
    """Each member of the visiting team with their mobile."""
    return "; ".join(f"{mention(u)}: {phones(u) or 'no mobile on file'}" for u in visit.team)


def mobile_fields(visit: Visit, phones: Phones) -> tuple[tuple[str, str], ...]:
    """One field per member of the team, so whoever phones knows whose number it is (the label, not the value, may mention)."""
    return tuple((f"{mention(u)}'s mobile", phones(u) or "no mobile on file") for u in visit.team)


def office_fields(visit: Visit, phones: Phones, policy: Policy) -> tuple[tuple[str, str], ...]:
    """What the office needs to try to reach the visitor (no address)."""
    d = visit.details
    return (
        *mobile_fields(visit, phones),
        ("Travel", f"{TRAVEL_MODES[d.travel_mode]}: {d.travel_details}"),
        ("Visit's contact number", d.contact_phone),
    )


def safety_log(visit: Visit, phones: Phones, policy: Policy) -> tuple[tuple[str, str], ...]:
    """The whole Home Visiting Safety Log for this visit (private audiences only)."""
    d, w = visit.details, visit.watch
    assert visit.departed_at is not None and visit.expected_return is not None
    return (
        *mobile_fields(visit, phones),
        ("Travel", f"{TRAVEL_MODES[d.travel_mode]}: {d.travel_details}"),
        ("Pupil / family", d.pupil_ref),
        ("Address", d.address),
        ("Visit's contact number", d.contact_phone),
        ("Left / due back", f"{clock(visit.departed_at, policy)} / {clock(visit.expected_return, policy)}"),
        ("Last contact", clock(w.last_contact_at, policy) if w.last_contact_at else "none since leaving"),
    )


def _staff(visit: Visit) -> str:
    return people(visit.team)


def fallback_for(destination: str, visit: Visit, policy: Policy) -> tuple[str, ...]:
    """Where to try if a destination cannot be reached in time: a channel → the DSLs and head; a DM → safeguarding."""
    if destination in (policy.channels.office, policy.channels.safeguarding):
        people_ = [u for u in (*policy.roles.dsl, *policy.roles.head) if u not in visit.team]
        return tuple(dict.fromkeys(people_))
    return (policy.channels.safeguarding,)


def senior_responders(visit: Visit, policy: Policy) -> list[str]:
    """Every DSL and the head: who a never-ending alert goes to."""
    return [u for u in dict.fromkeys((*policy.roles.dsl, *policy.roles.head)) if u not in visit.team]


def _alert(visit: Visit, to: str, key: str, text: str, fields, notes, buttons, policy: Policy) -> Message:  # type: ignore[no-untyped-def]
    return Message(
        to=to, text=text, fields=fields, notes=notes, buttons=buttons, key=key, ref=key,
        fallback=fallback_for(to, visit, policy),
    )


def checkin_prompt(visit: Visit, number: int, now: datetime, policy: Policy) -> list[Message]:
    """'Still OK?' to the visitor."""
    deadline = visit.watch.checkin_deadline or now
    return [
        Message(
            to=visit.requester,
            text=f"Still OK? Visit #{visit.id}. Please answer by {clock(deadline, policy)}.",
            buttons=(
                Button("I'm OK", actions.CHECKIN_OK, str(visit.id), "primary"),
                Button("Extend", actions.CHECKIN_EXTEND, str(visit.id)),
                Button("Need help", actions.CHECKIN_HELP, str(visit.id), "danger"),
            ),
            notes=("Or reply `/checkin`.",),
            key=f"checkin:{visit.id}:{number}",
            ref=f"checkin:{visit.id}:{number}",
        )
    ]


def tier_messages(visit: Visit, alarm: Alarm, now: datetime, policy: Policy, phones: Phones) -> list[Message]:
    """One ladder tier, to each of its audiences, with what each needs to act."""
    tier = visit.ladder[alarm.tier]
    last = alarm.tier == len(visit.ladder) - 1 and len(visit.ladder) > 1
    late = overdue_minutes(visit, now)
    assert visit.expected_return is not None
    # The ladder is anchored before the expected return only when a check-in was missed.
    missed = (visit.watch.anchor or now) < visit.expected_return

    def why(plural: bool) -> str:
        if missed:
            return f"did not answer the check-in due at {clock(visit.watch.anchor or now, policy)}"
        return f"{'were' if plural else 'was'} due back at {clock(visit.expected_return, policy)}"  # type: ignore[arg-type]

    team_why = why(len(visit.team) > 1)
    messages: list[Message] = []
    # Out of the office's hours its tier goes to the cover as well, with the office's message and the reason.
    closed = cover.closed_note(visit, now, policy)
    for audience, covering in cover.audiences(tier.notify, now, policy):
        if text_audience(audience):
            continue  # SMS and email: flows/textalerts.py
        for to in destinations(audience, visit, policy):
            key = f"alert:{visit.id}:e{visit.watch.episode}:t{alarm.tier}:{to}"
            if audience in ("visitor", "companions"):
                text = f":alarm_clock: Visit #{visit.id}: you {why(True)}. Are you OK?"
                messages.append(Message(to=to, text=text, buttons=_visitor_buttons(visit), key=key, ref=key))
            elif audience == "office" or covering:
                text = (
                    f":warning: *OVERDUE* {_staff(visit)} {team_why} from visit #{visit.id} ({late} min ago)."
                    " Please try their mobiles, then the visit's contact number."
                )
                notes = (closed,) if closed and (covering or policy.off_duty(audience, now)) else ()
                messages.append(_alert(visit, to, key, text, office_fields(visit, phones, policy), notes, _handling_buttons(visit), policy))
            else:
                if last:
                    text = (
                        f":rotating_light: *CONTACT THE POLICE* {_staff(visit)} {team_why} from visit #{visit.id}"
                        f" ({late} min ago) and nobody has confirmed they are safe."
                    )
                    notes = (CALL_999, POLICE_ASK)
                else:
                    text = (
                        f":rotating_light: *NOT RETURNED, NOT REACHED* {_staff(visit)} {team_why} from visit #{visit.id}"
                        f" ({late} min ago). Try the visit's location and the staff's mobiles."
                    )
                    notes = (CALL_999,)
                if visit.watch.ack_by:
                    notes = (f"{mention(visit.watch.ack_by)} was handling this since {clock(visit.watch.ack_at or now, policy)}.", *notes)
                messages.append(_alert(visit, to, key, text, safety_log(visit, phones, policy), notes, _handling_buttons(visit), policy))
    return messages


def repeat_messages(visit: Visit, alarm: Alarm, now: datetime, policy: Policy, phones: Phones) -> list[Message]:
    """The ladder is exhausted (or an SOS is open) and nobody has confirmed safety: every DSL and the head again."""
    what = "SOS" if visit.watch.emergency else "OVERDUE"
    text = (
        f":rotating_light: *STILL NOT CONFIRMED SAFE* ({what}, reminder {alarm.number}): {_staff(visit)}, visit #{visit.id},"
        f" due back {clock(visit.expected_return or now, policy)}. This repeats every"
        f" {int(policy.repeat_interval.total_seconds() // 60)} min until someone confirms they are safe."
    )
    return [
        _alert(visit, to, f"alert:{visit.id}:e{visit.watch.episode}:r{alarm.number}:{to}", text, safety_log(visit, phones, policy), (CALL_999, POLICE_ASK), _handling_buttons(visit), policy)
        for to in senior_responders(visit, policy)
    ]


def emergency_messages(visit: Visit, now: datetime, policy: Policy, phones: Phones) -> list[Message]:
    """SOS / Need help to safeguarding, the DSLs and the office; a duress word silently, to safeguarding and the DSLs."""
    w = visit.watch
    stamp = int(now.timestamp())
    note = f"\nTheir note: {esc(w.emergency_note)}" if w.emergency_note else ""
    raiser = w.emergency_by or visit.requester
    # A companion's alarm names them, and still says whose visit it is.
    whose = f" ({mention(visit.requester)}'s visit)" if raiser != visit.requester else ""
    if w.emergency == "duress":
        text = (
            f":rotating_light: *SILENT ALARM* {mention(raiser)} used their duress word at {clock(now, policy)}"
            f" on visit #{visit.id}{whose}. Someone may be watching their screen: do not message them and do not"
            " say how you know. Their screen showed the normal reply."
        )
        targets = [policy.channels.safeguarding, *[u for u in policy.roles.dsl if u not in visit.team]]
    else:
        label = "asked for help" if w.emergency == "help" else "raised an SOS"
        text = f":sos: *SOS* {mention(raiser)} {label} at {clock(now, policy)} on visit #{visit.id}{whose}.{note}"
        targets = [policy.channels.safeguarding, *[u for u in policy.roles.dsl if u not in visit.team], policy.channels.office]
    fields = safety_log(visit, phones, policy)
    return [
        _alert(visit, to, f"alert:{visit.id}:sos{stamp}:{to}", text,
               office_fields(visit, phones, policy) if to == policy.channels.office else fields,
               (CALL_999,), _handling_buttons(visit), policy)
        for to in dict.fromkeys(targets)
    ]


def sos_without_visit(user: str, note: str | None, now: datetime, policy: Policy, phone: str | None, silent: bool = False) -> list[Message]:
    """An SOS (or a duress word) from someone with no visit out: still everyone who can help, at once."""
    if silent:
        text = (
            f":rotating_light: *SILENT ALARM* {mention(user)} used their duress word at {clock(now, policy)}."
            " They are not on a recorded visit. Someone may be watching their screen: do not message them."
            f" Mobile: {phone or 'no mobile on file'}."
        )
    else:
        text = (
            f":sos: *SOS* {mention(user)} raised an SOS at {clock(now, policy)}. They are not on a recorded visit."
            f" Mobile: {phone or 'no mobile on file'}." + (f"\nTheir note: {esc(note)}" if note else "")
        )
    stamp = int(now.timestamp())
    targets = [policy.channels.safeguarding, *[u for u in policy.roles.dsl if u != user]]
    if not silent:
        targets.append(policy.channels.office)
    return [
        Message(to=to, text=text, notes=(CALL_999,), key=f"sos:{user}:{stamp}:{to}", ref=f"sos:{user}:{stamp}:{to}")
        for to in dict.fromkeys(targets)
    ]


def status_line(visit: Visit, now: datetime, policy: Policy) -> str:
    """How an alert message reads once something has happened to it."""
    w = visit.watch
    if w.safe_by:
        return f":white_check_mark: *Confirmed safe* by {mention(w.safe_by)} at {clock(now, policy)}: {esc(w.safe_note or '')}"
    if visit.returned_at is not None:
        where = "gone home" if visit.returned_home else "back"
        return f":white_check_mark: *{_staff(visit)} signed in ({where})* at {clock(visit.returned_at, policy)}. The alert is over."
    if signed_in_during_emergency(visit):
        assert w.signed_in_at is not None
        typed = "/back home" if w.signed_in_home else "/back"
        line = (
            f":rotating_light: {mention(w.signed_in_by or visit.requester)} typed {typed} at {clock(w.signed_in_at, policy)};"
            " the alarm stays open until someone confirms them safe."
        )
        return line + (" Silent alarm: do not message them." if w.emergency == "duress" else "")
    if w.ack_by and w.paused_until and w.paused_until > now:
        return (
            f":eyes: {mention(w.ack_by)} is handling this since {clock(w.ack_at or now, policy)}; the next step waits until"
            f" {clock(w.paused_until, policy)} unless someone confirms they are safe."
        )
    assert visit.expected_return is not None
    return f":arrows_counterclockwise: {_staff(visit)} made contact at {clock(w.last_contact_at or now, policy)}; now due back {clock(visit.expected_return, policy)}."


def alert_updates(visit: Visit, refs: list[tuple[str, str]], now: datetime, policy: Policy, tag: str) -> list[Message]:
    """Rewrite every alert message of a visit to show what happened (one call per event, `tag` makes keys unique)."""
    updates = []
    for ref, to in refs:
        is_team = to in visit.team
        # The visiting team sees a /back during an emergency as a normal sign-in; responders see the alarm open.
        seen = as_the_team_sees(visit) if is_team else visit
        over = seen.returned_at is not None
        text = f"Visit #{visit.id} alert: {status_line(seen, now, policy)}"
        if is_team and not over and visit.watch.ack_by:
            text = f"Visit #{visit.id}: {mention(visit.watch.ack_by)} is trying to reach you. Answer your phone, or use the buttons."
        handling = _handling_buttons(visit, acknowledged=bool(visit.watch.ack_by and visit.watch.paused_until and visit.watch.paused_until > now))
        updates.append(
            Message(
                to=to,
                text=text,
                buttons=() if over else (_visitor_buttons(visit) if is_team else handling),
                key=f"update:{ref}:{tag}",
                replaces=ref,
            )
        )
    return updates


def emergency_sign_in(visit: Visit, now: datetime, policy: Policy) -> list[Message]:
    """/back during an SOS or duress alarm: the safeguarding channel and the DSLs hear the alarm stays open."""
    text = f"Visit #{visit.id} alert: {status_line(visit, now, policy)}"
    targets = [policy.channels.safeguarding, *[u for u in policy.roles.dsl if u not in visit.team]]
    stamp = int(now.timestamp())
    return [
        # No safety log: the alarm itself carried it, and a phone lookup has no place inside the transaction.
        _alert(visit, to, f"alert:{visit.id}:back{stamp}:{to}", text, (), (CALL_999,), _handling_buttons(visit), policy)
        for to in dict.fromkeys(targets)
    ]


def board_extended(visit: Visit, now: datetime, policy: Policy) -> list[Message]:
    """The office board after /extend."""
    assert visit.expected_return is not None
    return board(
        visit,
        f":hourglass_flowing_sand: {_staff(visit)} extended visit #{visit.id} at {clock(now, policy)}: now due back *{due(visit.expected_return, now, policy)}*.",
        f"board-extend:{visit.id}:{int(now.timestamp())}",
        policy,
    )


def board_safe(visit: Visit, now: datetime, policy: Policy) -> list[Message]:
    """The office board when someone confirms the visitor safe."""
    return board(
        visit,
        f":white_check_mark: {_staff(visit)} confirmed safe by {mention(visit.watch.safe_by or '')} at {clock(now, policy)} (visit #{visit.id}).",
        f"board-safe:{visit.id}",
        policy,
    )
