"""After the visit: its outcome, the card left when nobody was home, the safeguarding reports an outcome
raises, recording on CPOMS within the policy's record_deadline, and the debrief after an incident.

Pure: every time is a parameter; the words each person receives are written here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flows import actions
from flows.audiences import destinations
from flows.durations import local_time
from flows.messages import Button, Message, esc, mention
from flows.policy import Card, Policy
from flows.visit import Visit

# One hour after /back with no outcome, the visitor is reminded once.
OUTCOME_REMINDER_AFTER = timedelta(hours=1)

# The outcomes in the order the buttons show them (outcomes.outcome; the last four are also concerns.kind).
OUTCOMES: dict[str, str] = {
    "no_concerns": "No concerns",
    "nobody_home": "Nobody home",
    "concern": "Safeguarding concern",
    "incident": "Incident",
    "left_unsafe": "Left: felt unsafe",
    "allegation": "Allegation made",
}
REPORTS = ("concern", "incident", "left_unsafe", "allegation")
BUTTON_OF = {
    "no_concerns": actions.OUTCOME_NO_CONCERNS,
    "nobody_home": actions.OUTCOME_NOBODY_HOME,
    "concern": actions.OUTCOME_CONCERN,
    "incident": actions.OUTCOME_INCIDENT,
    "left_unsafe": actions.OUTCOME_LEFT_UNSAFE,
    "allegation": actions.OUTCOME_ALLEGATION,
}
CARD_WORDS: dict[str, str] = {"contact": "contact card", "appointment": "appointment card", "message": "message card"}

# Who hears of each safeguarding report, at once (Harton 6.3, Hampton, St Patrick's).
REPORT_AUDIENCES: dict[str, tuple[str, ...]] = {
    "concern": ("safeguarding", "dsl"),      # the safeguarding channel and the DSLs only
    "incident": ("safeguarding",),
    "left_unsafe": ("dsl", "head"),           # "DSL and head at once"
    "allegation": ("head", "dsl"),            # "head and DSL only" (St Patrick's)
}
# Outcomes that put the address and family "under review: no new visit until reviewed".
UNDER_REVIEW = ("incident", "left_unsafe")


def _about(visit: Visit, policy: Policy) -> str:
    return f"visit #{visit.id} ({esc(visit.details.pupil_ref)}, {visit.start_at.astimezone(policy.tz).strftime('%a %d %b')})"


def _About(visit: Visit, policy: Policy) -> str:
    about = _about(visit, policy)
    return about[0].upper() + about[1:]


def moment_words(moment: datetime, now: datetime, policy: Policy) -> str:
    """A time as staff read it: the clock time today, else with its date."""
    return local_time(moment, now, policy.tz)


def outcome_buttons(visit_id: int) -> tuple[Button, ...]:
    """The six outcome buttons of a visit."""
    return tuple(Button(label, BUTTON_OF[kind], str(visit_id)) for kind, label in OUTCOMES.items())


def outcome_prompt(visit: Visit, to: str, policy: Policy) -> Message:
    """Asked of the visitor as they sign back in."""
    return Message(
        to=to,
        text=f"How did {_about(visit, policy)} go? Choose the outcome; a concern, an incident, leaving because you felt"
        " unsafe or an allegation goes to the right people at once.",
        buttons=outcome_buttons(visit.id),  # type: ignore[arg-type]
        key=f"outcome-ask:{visit.id}",
        ref=f"outcome:{visit.id}",
    )


def outcome_reminder(visit: Visit, to: str, policy: Policy) -> Message:
    """The one reminder, an hour after /back with no outcome."""
    return Message(
        to=to,
        text=f":bell: Reminder: {_about(visit, policy)} has no outcome yet. Choose one now, please.",
        buttons=outcome_buttons(visit.id),  # type: ignore[arg-type]
        key=f"outcome-reminder:{visit.id}",
        ref=f"outcome-reminder:{visit.id}",
    )


def outcome_words(outcome: str, card: str | None) -> str:
    """An outcome as a person reads it."""
    return OUTCOMES[outcome] + (f" ({CARD_WORDS[card]} left)" if card else "")


def outcome_given(visit: Visit, outcome: str, card: str | None, by: str, now: datetime, refs: list[tuple[str, str]], policy: Policy) -> list[Message]:
    """The outcome prompt (and its reminder, if it was sent) rewritten to show the answer, buttons gone."""
    text = f"{_About(visit, policy)}: outcome *{outcome_words(outcome, card)}*, given by {mention(by)} at {moment_words(now, now, policy)}."
    return [Message(to=to, text=text, key=f"outcome-given:{ref}", replaces=ref) for ref, to in refs]


# ----- nobody home: the card sequence and the referral -----


@dataclass(frozen=True)
class NoAnswer:
    """What the policy says for this no-answer: the card to leave, which no-answer in a row it is, and whether to refer."""

    card: Card
    number: int
    refer: bool


def no_answer(visit: Visit, earlier: list[bool], policy: Policy) -> NoAnswer:
    """The card for this visit's no-answer, given the planned flags of the family's earlier no-answers in a row."""
    rule = policy.nobody_home
    planned = visit.details.planned
    sequence = rule.planned_cards if planned else rule.unplanned_cards
    same_kind = sum(1 for was_planned in earlier if was_planned == planned)
    number = len(earlier) + 1
    return NoAnswer(sequence[min(same_kind, len(sequence) - 1)], number, number >= rule.refer_after)


def card_choices(policy: Policy) -> dict[str, str]:
    """Every card the policy's sequences use, in the order contact, appointment, message."""
    used = {*policy.nobody_home.planned_cards, *policy.nobody_home.unplanned_cards}
    return {card: CARD_WORDS[card].capitalize() for card in CARD_WORDS if card in used}


def nobody_home_intro(visit: Visit, advice: NoAnswer, policy: Policy) -> str:
    """What the Nobody home form says: the card the policy asks for, and whether the case is referred."""
    nth = {1: "first", 2: "second", 3: "third"}.get(advice.number, f"{advice.number}th")
    kind = "planned" if visit.details.planned else "unplanned"
    refer = " The case will be referred as the policy asks." if advice.refer else ""
    return f"This is the family's {nth} no-answer in a row ({kind} visit): the policy asks for {'an' if advice.card == 'appointment' else 'a'} *{CARD_WORDS[advice.card]}*.{refer}"


def follow_up(advice: NoAnswer, card: str) -> str:
    """The visitor's prompt to plan what comes next."""
    referred = " The case has been referred to the team leader or head, as the policy asks." if advice.refer else ""
    return f"Recorded: nobody home, {CARD_WORDS[card]} left. Plan the follow-up: arrange a planned visit (`/visit`).{referred}"


def referral(visit: Visit, advice: NoAnswer, card: str, by: str, now: datetime, policy: Policy) -> list[Message]:
    """The second (or later) no-answer in a row for a family goes to the team leader or head (the policy's refer_to)."""
    text = (
        f":door: No answer again: {_about(visit, policy)} by {mention(by)} is the family's no-answer number {advice.number} in a row"
        f" ({CARD_WORDS[card]} left). The policy refers the case to you: please decide the next step."
    )
    return [
        Message(to=to, text=text, fields=(("Pupil / family", visit.details.pupil_ref), ("Address", visit.details.address)),
                key=f"no-answer-referral:{visit.id}:{to}")
        for audience in policy.nobody_home.refer_to
        for to in destinations(audience, visit, policy)
    ]


# ----- safeguarding reports behind an outcome -----

REPORT_HEADS = {
    "concern": ":large_orange_circle: *Safeguarding concern*",
    "incident": ":red_circle: *Incident on a home visit*",
    "left_unsafe": ":red_circle: *Left a visit: felt unsafe*",
    "allegation": ":red_circle: *Allegation made*",
}
ANSWER_LABELS = {
    "what": "What happened", "injuries": "Injuries", "abuse": "Abusive or threatening behaviour", "police": "Police involved",
    "child_seen": "Child seen", "why": "Why you left", "about": "Against or about",
}
YES_NO = {"yes": "Yes", "no": "No"}


def report_fields(answers: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A report's answers as labelled fields, in the form's order (raw text: the renderer escapes it)."""
    return tuple((ANSWER_LABELS.get(k, k), YES_NO.get(v, v)) for k, v in answers.items() if isinstance(v, str) and v)


def report(kind: str, visit: Visit, answers: dict[str, Any], by: str, now: datetime, policy: Policy) -> list[Message]:
    """A safeguarding report sent at once to the people its kind goes to, and no one else."""
    flagged = "\nThe address and family are now *under review*: no new visit until it is reviewed." if kind in UNDER_REVIEW else ""
    text = f"{REPORT_HEADS[kind]} from {mention(by)} after {_about(visit, policy)}, at {moment_words(now, now, policy)}.{flagged}"
    fields = (("Pupil / family", visit.details.pupil_ref), ("Address", visit.details.address), *report_fields(answers))
    return [
        Message(to=to, text=text, fields=fields, key=f"report:{kind}:{visit.id}:{to}")
        for audience in REPORT_AUDIENCES[kind]
        for to in destinations(audience, visit, policy)
    ]


def under_review_reason(kind: str, visit: Visit) -> str:
    """Why the register flags an address and family after an outcome (no personal details beyond the visit id)."""
    return f"{OUTCOMES[kind]} on visit #{visit.id}: no new visit until reviewed"


def debrief_offer(visit: Visit, to: str, policy: Policy) -> Message:
    """After an incident the visitor is offered a debrief with the DSL."""
    return Message(
        to=to,
        text=f"After the incident on {_about(visit, policy)}: would you like a debrief with the DSL?",
        buttons=(Button("Yes, please", actions.DEBRIEF_YES, str(visit.id), "primary"), Button("No, thank you", actions.DEBRIEF_NO, str(visit.id))),
        key=f"debrief-offer:{visit.id}",
        ref=f"debrief:{visit.id}",
    )


def debrief_answered(visit: Visit, wanted: bool, by: str, now: datetime, policy: Policy) -> list[Message]:
    """The offer shows the answer; a yes goes to the DSLs to arrange it."""
    answer = "yes" if wanted else "no"
    messages = [Message(
        to=by,
        text=f"Debrief after the incident on {_about(visit, policy)}: you answered *{answer}* at {moment_words(now, now, policy)}.",
        key=f"debrief-answered:{visit.id}",
        replaces=f"debrief:{visit.id}",
    )]
    if wanted:
        messages += [
            Message(to=to, text=f"{mention(by)} would like a debrief with the DSL after the incident on {_about(visit, policy)}.",
                    key=f"debrief-wanted:{visit.id}:{to}")
            for to in destinations("dsl", visit, policy)
        ]
    return messages


# ----- recording on CPOMS -----


@dataclass(frozen=True)
class RecordTimers:
    """When a visit must be recorded by, and when its owner is reminded."""

    remind_at: datetime
    due_at: datetime


def record_timers(returned_at: datetime, policy: Policy) -> RecordTimers:
    """Reminder at half of record_deadline after the return; the DSL is told at the deadline."""
    return RecordTimers(returned_at + policy.record_deadline / 2, returned_at + policy.record_deadline)


def _recorded_button(visit_id: int) -> tuple[Button, ...]:
    return (Button("Recorded", actions.RECORDED, str(visit_id), "primary"),)


def record_prompt(visit: Visit, owner: str, due_at: datetime, now: datetime, policy: Policy) -> Message:
    """After the outcome: record the visit on CPOMS, then press Recorded."""
    return Message(
        to=owner,
        text=f":memo: Record {_about(visit, policy)} on CPOMS by *{moment_words(due_at, now, policy)}*, then press *Recorded*.",
        buttons=_recorded_button(visit.id),
        key=f"record-ask:{visit.id}",
        ref=f"record:{visit.id}",
    )


def record_reminder(visit: Visit, owner: str, due_at: datetime, now: datetime, policy: Policy) -> Message:
    """Half of record_deadline has passed and the visit is not recorded."""
    return Message(
        to=owner,
        text=f":bell: Reminder: {_about(visit, policy)} is not recorded on CPOMS yet. It must be by *{moment_words(due_at, now, policy)}*;"
        " the DSL is told if it is not.",
        buttons=_recorded_button(visit.id),
        key=f"record-reminder:{visit.id}",
        ref=f"record-reminder:{visit.id}",
    )


def record_overdue(visit: Visit, owner: str, due_at: datetime, now: datetime, policy: Policy) -> list[Message]:
    """The deadline passed unrecorded: each DSL is told, with the visit and who should have recorded it."""
    text = (
        f":warning: {_About(visit, policy)} was not recorded on CPOMS by its deadline"
        f" ({moment_words(due_at, now, policy)}). {mention(owner)} should have recorded it."
    )
    return [Message(to=to, text=text, key=f"record-overdue:{visit.id}:{to}") for to in policy.roles.holders("dsl")]


def recorded(visit: Visit, by: str, now: datetime, refs: list[tuple[str, str]], policy: Policy) -> list[Message]:
    """Each record prompt already sent shows who recorded the visit, and when; its button is gone."""
    text = f":white_check_mark: {_About(visit, policy)} recorded on CPOMS by {mention(by)} at {moment_words(now, now, policy)}."
    return [Message(to=to, text=text, key=f"recorded:{ref}", replaces=ref) for ref, to in refs]
