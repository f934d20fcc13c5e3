"""The ladder's SMS and email (through GOV.UK Notify): who gets one, and words that are safe on an open channel.

An SMS is not private: it names the staff, says since when they are overdue, gives their mobiles and what to do;
never a child's name or pupil reference, an address, the visit's contact number or a note.
Text messages go to `sms:<user id>` / `email:<user id>`; the number or address is looked up only when sent.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from flows.alerts import Phones, overdue_minutes
from flows.drill import ACK_LABEL
from flows.messages import Message, mention
from flows.notices import clock
from flows.policy import Policy, Role, text_audience
from flows.visit import Visit
from flows.watch import Alarm

SMS, EMAIL = "sms:", "email:"
# An alert's chat audiences and the people behind them, when it must also go by SMS.
CHANNEL_PEOPLE = {"office": Role.office, "safeguarding": Role.dsl}


def is_text(destination: str) -> bool:
    """Whether a destination is an SMS or email (through Notify) rather than a chat channel or person."""
    return destination.startswith((SMS, EMAIL))


def person_of(destination: str) -> str:
    """The user id an `sms:`/`email:` destination is for."""
    return destination.partition(":")[2]


def name(user: str, policy: Policy) -> str:
    """A person as an SMS names them: the staff directory's name, else their chat id."""
    entry = policy.staff.get(user)
    return entry.name if entry is not None and entry.name else f"staff member {user}"


def _has(user: str, kind: str, policy: Policy) -> bool:
    entry = policy.staff.get(user)
    return entry is not None and bool(entry.mobile if kind == "sms" else entry.email)


def tier_people(visit: Visit, tier_index: int, policy: Policy) -> list[str]:
    """The people behind a tier's audiences (a channel's by its role: office staff, the DSLs), never the visiting team."""
    people: list[str] = []
    for audience in visit.ladder[tier_index].notify:
        texted = text_audience(audience)
        role = texted[1] if texted else CHANNEL_PEOPLE.get(audience) or (Role(audience) if audience in Role._value2member_map_ else None)
        if role is not None:
            people += policy.roles.holders(role)
    return [u for u in dict.fromkeys(people) if u not in visit.team]


def people_behind(destination: str, policy: Policy) -> list[str]:
    """The people a chat destination reaches: a channel's by its role (office staff, the DSLs), a DM's person."""
    channels = {policy.channels.office: Role.office, policy.channels.safeguarding: Role.dsl}
    role = channels.get(destination)
    return policy.roles.holders(role) if role is not None else [destination]


def _seniors(visit: Visit, policy: Policy) -> list[str]:
    return [u for u in dict.fromkeys((*policy.roles.dsl, *policy.roles.head)) if u not in visit.team]


def drill_text(visit: Visit, tier: int | None, policy: Policy) -> str:
    """The words of every SMS and email about a drill: DRILL first, nobody in danger, nothing to do but press the drill
    button; never a name of the team, a mobile, a contact number or an address (a drill has none, and must not read as real)."""
    which = ""
    if tier is not None and 0 <= tier < len(visit.ladder):
        which = f", tier {tier + 1} of {len(visit.ladder)}"
    return (
        f"VisitSafe DRILL: this is a test of the alert ladder (drill #{visit.id}{which}, started by {name(visit.requester, policy)}"
        f" at {policy.school}). Nobody is in danger and no action is needed except pressing \"{ACK_LABEL}\" on the drill"
        " message in VisitSafe, as fast as you would for real. Do not phone anyone about it."
    )


def sms_text(visit: Visit, alarm: Alarm, now: datetime, policy: Policy, phones: Phones) -> str:
    """The words of a tier's SMS: who, since when, their mobiles, what to do (nothing about the child or the address)."""
    if visit.drill:
        return drill_text(visit, alarm.tier, policy)
    assert visit.expected_return is not None
    last = alarm.tier == len(visit.ladder) - 1 and len(visit.ladder) > 1
    staff = " and ".join(name(u, policy) for u in visit.team)
    since = clock(visit.watch.anchor or visit.expected_return, policy)
    missed = (visit.watch.anchor or now) < visit.expected_return
    why = f"missed the check-in due at {since}" if missed else f"{'were' if len(visit.team) > 1 else 'was'} due back at {since}"
    mobiles = _mobiles(visit, policy, phones)
    if last:
        what = "Nobody has confirmed they are safe: contact the police now (999 if in immediate danger)."
    else:
        what = "Phone them now. If they do not answer, follow the school's plan; 999 if anyone is in immediate danger."
    return (
        f"VisitSafe {policy.school}: {'CONTACT THE POLICE' if last else 'OVERDUE'}. {staff} {why} from home visit #{visit.id}"
        f" ({overdue_minutes(visit, now)} min ago). Mobile: {mobiles}. {what}" + OPEN_VISITSAFE
    )


def _mobiles(visit: Visit, policy: Policy, phones: Phones) -> str:
    return "; ".join(f"{name(u, policy)} {phones(u) or 'no mobile on file'}" for u in visit.team)


OPEN_VISITSAFE = " Open VisitSafe for the safety log, and press Reached, safe or I'm handling this there."
SILENT = "Someone may be watching their screen: do not message them and do not say how you know."


def emergency_sms_text(visit: Visit, now: datetime, policy: Policy, phones: Phones) -> str:
    """The words of an SOS's SMS (or a duress alarm's, which says it is silent): who, when, their mobiles, what to do;
    never the note, the child or the address."""
    if visit.drill:
        return drill_text(visit, None, policy)
    w = visit.watch
    raiser = w.emergency_by or visit.requester
    whose = f" ({name(visit.requester, policy)}'s visit)" if raiser != visit.requester else ""
    where = f"at {clock(now, policy)} on home visit #{visit.id}{whose}"
    mobiles = _mobiles(visit, policy, phones)
    if w.emergency == "duress":
        return (
            f"VisitSafe {policy.school}: SILENT ALARM. {name(raiser, policy)} used their duress word {where}. {SILENT}"
            f" Mobile: {mobiles}. Call 999 if anyone is in immediate danger." + OPEN_VISITSAFE
        )
    raised = "asked for help" if w.emergency == "help" else "raised an SOS"
    return (
        f"VisitSafe {policy.school}: SOS. {name(raiser, policy)} {raised} {where}. Mobile: {mobiles}."
        " Phone them now; call 999 if anyone is in immediate danger." + OPEN_VISITSAFE
    )


def repeat_sms_text(visit: Visit, alarm: Alarm, now: datetime, policy: Policy, phones: Phones) -> str:
    """The words of a reminder's SMS once the ladder is exhausted (or an emergency is open) and nobody confirmed safety."""
    if visit.drill:
        return drill_text(visit, None, policy)
    emergency = visit.watch.emergency
    what = "OVERDUE" if not emergency else "SILENT ALARM" if emergency == "duress" else "SOS"
    staff = " and ".join(name(u, policy) for u in visit.team)
    quiet = f" {SILENT}" if emergency == "duress" else ""
    return (
        f"VisitSafe {policy.school}: STILL NOT CONFIRMED SAFE ({what}, reminder {alarm.number}). {staff}, home visit #{visit.id},"
        f" due back {clock(visit.expected_return or now, policy)}.{quiet} Mobile: {_mobiles(visit, policy, phones)}."
        " Nobody has confirmed they are safe: contact the police now (999 if in immediate danger)." + OPEN_VISITSAFE
    )


def standby_for(visit: Visit, chat: list[Message], text: str, policy: Policy) -> list[Message]:
    """An SMS on standby for each person the chat alerts of one alarm reach (with a mobile, never the visiting team),
    keyed like those alerts so arm_texts() finds them together."""
    if policy.notify is None or not chat:
        return []
    first = chat[0]
    assert first.key is not None and first.key.endswith(first.to)
    prefix = first.key[: len(first.key) - len(first.to)]
    reached = [u for m in chat for u in people_behind(m.to, policy)]
    people = [u for u in dict.fromkeys(reached) if u not in visit.team and _has(u, "sms", policy)]
    return [
        Message(to=f"sms:{user}", text=text, key=f"{prefix}sms:{user}", fallback=_fallback(user, people, visit, policy, "sms"))
        for user in people
    ]


def all_clear(visit: Visit, texted: list[str], now: datetime, policy: Policy) -> list[Message]:
    """To each person texted about a visit, once: it is over (no note, no child, no address)."""
    staff = " and ".join(name(u, policy) for u in visit.team)
    verb = "are" if len(visit.team) > 1 else "is"
    text = f"VisitSafe: {staff} {verb} confirmed safe at {clock(now, policy)}. No action needed."
    if visit.drill:
        text = (f"VisitSafe DRILL: drill #{visit.id} at {policy.school} is over at {clock(now, policy)}. It was a test of the"
                " alert ladder: nobody was in danger and no action is needed.")
    destinations = [f"{SMS}{user}" for user in dict.fromkeys(texted) if user not in visit.team]
    return [Message(to=to, text=text, key=f"allclear:{visit.id}:{to}") for to in destinations]


def _key(visit: Visit, alarm: Alarm, destination: str) -> str:
    # The same prefix as the tier's chat alerts: the outbox finds a tier's chat and texts together by it.
    return f"alert:{visit.id}:e{visit.watch.episode}:t{alarm.tier}:{destination}"


def _fallback(user: str, recipients: list[str], visit: Visit, policy: Policy, kind: str) -> tuple[str, ...]:
    """The next person to text when this one's number fails: the first senior not already being texted."""
    nxt = [u for u in _seniors(visit, policy) if u != user and u not in recipients and _has(u, kind, policy)]
    return (f"{kind}:{nxt[0]}",) if nxt else ()


def tier_texts(visit: Visit, alarm: Alarm, now: datetime, policy: Policy, phones: Phones) -> tuple[list[Message], list[Message]]:
    """(sent now: the tier's `sms:`/`email:` audiences; on standby: an SMS to each of the tier's people, for when
    chat has not delivered or nobody has acknowledged). Nothing without a notify: section."""
    if policy.notify is None or alarm.kind != "tier":
        return [], []
    text = sms_text(visit, alarm, now, policy, phones)
    now_: list[Message] = []
    for audience in visit.ladder[alarm.tier].notify:
        texted = text_audience(audience)
        if texted is None:
            continue
        kind, role = texted
        people = [u for u in policy.roles.holders(role) if u not in visit.team]
        for user in people:
            now_.append(Message(to=f"{kind}:{user}", text=text, key=_key(visit, alarm, f"{kind}:{user}"),
                                fallback=_fallback(user, people, visit, policy, kind)))
    people = [u for u in tier_people(visit, alarm.tier, policy) if _has(u, "sms", policy)]
    standby = [
        Message(to=f"sms:{user}", text=text, key=_key(visit, alarm, f"sms:{user}"), fallback=_fallback(user, people, visit, policy, "sms"))
        for user in people
    ]
    return now_, standby


def fallback_copies(message: Message, policy: Policy) -> list[Message]:
    """A text that could not reach its person goes to the next person, saying whose number failed."""
    failed = name(person_of(message.to), policy)
    return [
        Message(
            to=destination,
            text=f"{message.text} (Sent to you because it could not reach {failed}.)",
            key=f"{message.key}:fallback:{destination}",
        )
        for destination in message.fallback
    ]


def sent_note(message: Message, now: datetime, policy: Policy) -> str:
    """What every chat copy of a visit's alerts still waiting says once a text has gone: it is already being handled there."""
    how = "SMS" if message.to.startswith(SMS) else "email"
    note = f":iphone: Already sent by {how} to {mention(person_of(message.to))} at {clock(now, policy)}"
    key = message.key or ""
    if ":fallback:" in key:
        failed = key.partition(":fallback:")[0].rpartition(":")[2]
        note += f", because the {how} to {mention(failed)} failed"
    return note + "."


Texts = Callable[[Visit, Alarm, datetime, Policy, Phones], tuple[list[Message], list[Message]]]
