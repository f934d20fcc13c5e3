"""Every form the app shows, defined once as data; bot/slack and bot/gchat draw them and read the answers back.

A `Form` is a list of `Field`s. Each platform's renderer draws it (a Block Kit modal, a Cards v2 dialog)
and reads a submission back into one neutral answers dict, keyed by field name:
text, multiline, select, radio, date ("YYYY-MM-DD") and time ("HH:MM") give a string or None
(an empty answer is None); checkboxes and users give a list of strings (option values, user ids).
Typed text has no control characters. The interpreting functions below (`details_answers`,
`risk_answers`, `place_errors`) then work the same on every platform.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Callable, Literal, NamedTuple

from flows import actions
from flows.messages import clean
from flows.request import REASONS, TRAVEL_MODES, VISIT_TYPES

Kind = Literal["text", "multiline", "select", "radio", "checkboxes", "date", "time", "users"]
SINGLE: frozenset[str] = frozenset({"text", "multiline", "select", "radio", "date", "time"})
MULTI: frozenset[str] = frozenset({"checkboxes", "users"})
CHOICES: frozenset[str] = frozenset({"select", "radio", "checkboxes"})
TEXTS: frozenset[str] = frozenset({"text", "multiline"})


class Option(NamedTuple):
    """One choice: `value` comes back in the answers, `label` is what the person reads."""

    value: str
    label: str


@dataclass(frozen=True)
class Field:
    """One input. `name` is the Slack block id, the Chat widget name and the key of the answers."""

    name: str
    kind: Kind
    label: str
    options: tuple[Option, ...] = ()
    required: bool = True
    hint: str | None = None
    placeholder: str | None = None
    # The current value, in the answers' shape (a tuple for checkboxes and users).
    value: str | tuple[str, ...] | None = None
    max_length: int | None = None  # text and multiline only

    def __post_init__(self) -> None:
        if self.kind not in SINGLE | MULTI:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")
        if (self.kind in CHOICES) != bool(self.options):
            raise ValueError(f"field {self.name}: options are for select, radio and checkboxes only, and those need some")
        if self.max_length is not None and self.kind not in TEXTS:
            raise ValueError(f"field {self.name}: max_length is for text fields only")
        if self.value is not None and isinstance(self.value, tuple) != (self.kind in MULTI):
            raise ValueError(f"field {self.name}: a {self.kind} field's value must be {'a tuple' if self.kind in MULTI else 'a string'}")


@dataclass(frozen=True)
class Form:
    """A form: what it is called, its fields, and the id its submission is dispatched on."""

    callback_id: str
    title: str
    submit: str
    fields: tuple[Field, ...]
    intro: str | None = None  # neutral markup (flows/messages.py) shown above the fields
    # An id carried back with the submission (a draft or a visit), never the answers themselves.
    state: str = ""

    def field(self, name: str) -> Field:
        """The field called `name`."""
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class Done:
    """What a person sees once a form is accepted, when the form itself should say it."""

    title: str
    text: str
    close: str = "Done"


def _options(choices: dict[str, str]) -> tuple[Option, ...]:
    return tuple(Option(value, label) for value, label in choices.items())


def _text(name: str, label: str, *, multiline: bool = False, max_length: int = 300, **rest: Any) -> Field:
    return Field(name, "multiline" if multiline else "text", label, max_length=max_length, **rest)


def _choice(name: str, label: str, kind: Kind, choices: dict[str, str], **rest: Any) -> Field:
    return Field(name, kind, label, options=_options(choices), **rest)


RISK_CHECKS = {
    "violence_known": "Known violence or aggression at the address or by a household member",
    "violent_person_present": "A person known for violence is likely to be present",
    "family_new": "The family is new to the school or little is known about them",
    "animals": "Animals at the home",
    "interpreter": "An interpreter is needed",
    "special_needs": "Special needs in the family",
}
ALLERGIES = {"none": "I have no allergies", "checked": "I have checked with the home", "not_checked": "Not yet checked"}
# Answers that flows report under their own name but that live in another field: errors go beside that field.
FIELD_OF = {**{name: "risks" for name in RISK_CHECKS}, "allergies_checked": "allergies"}


def visit_details(today: date | None = None) -> Form:
    """/visit step 1: the visit (the date starts at `today`)."""
    return Form(actions.VISIT_FORM, "Home visit: 1 of 2", "Next", (
        _text("pupil_ref", "Pupil or family reference", hint="Initials or MIS id, not a full name.", max_length=40),
        _text("address", "Address", multiline=True),
        _text("contact_phone", "Contact phone number", placeholder="01632 960123", max_length=30),
        _choice("reason", "Reason", "select", REASONS),
        _text("reason_other", "If other, what for", required=False),
        _choice("visit_type", "Type of visit", "radio", VISIT_TYPES),
        _choice("planned", "Planned?", "radio", {"planned": "Planned", "unplanned": "Unplanned (emergency welfare check)"}),
        Field("date", "date", "Date", value=today.isoformat() if today else None),
        Field("start_time", "time", "Start time"),
        _text("duration", "Expected duration", value="45m", hint="Like 45m or 1h30m.", max_length=10),
        _choice("travel_mode", "Travel", "select", TRAVEL_MODES),
        _text("travel_details", "Travel details", hint="Car: registration, make and model. Taxi: company. On foot: route."),
        _choice("parents_informed", "Parents informed in advance?", "radio", {"yes": "Yes", "no": "No"}),
        _text("parents_not_informed_reason", "If not, why not", required=False),
        _choice("commute", "On the way to or from work?", "checkboxes", {"yes": "This visit is on my way to or from work"}, required=False),
    ))


def visit_risk(draft_id: int | None = None) -> Form:
    """/visit step 2: the risk assessment and companions; step 1's answers wait in the database as draft `draft_id`."""
    return Form(actions.RISK_FORM, "Home visit: 2 of 2", "Send for approval", (
        _choice("risks", "Risk assessment: tick all that apply", "checkboxes", RISK_CHECKS, required=False),
        _text("other_agencies", "Other agencies involved (which)", required=False),
        _choice("allergies", "Your allergies", "radio", ALLERGIES),
        _text("other_concerns", "Any other concern", required=False, multiline=True, max_length=1000),
        Field("companions", "users", "Companion(s)", required=False, hint="The colleague(s) going with you.", placeholder="Choose colleagues"),
    ), state=_state(draft_id))  # not the answers: non-Latin text could pass Slack's 3,000-character limit


def _state(record_id: int | None) -> str:
    return "" if record_id is None else str(record_id)


def decline(visit_id: int | None = None) -> Form:
    """Asks the approver why they decline visit `visit_id`."""
    return Form(actions.DECLINE_FORM, "Decline visit", "Decline", (
        _text("reason", "Reason (the requester will see it)", multiline=True, max_length=1000),
    ), state=_state(visit_id))


def extend(visit_id: int | None = None) -> Form:
    """How much longer the visitor on visit `visit_id` needs."""
    return Form(actions.EXTEND_FORM, "Extend visit", "Extend", (
        _text("duration", "How much longer?", hint="Like 20m or 1h, or a time like 11:30.", max_length=10),
    ), state=_state(visit_id))


def confirm_safe(visit_id: int | None = None) -> Form:
    """How the responder knows the visitor on visit `visit_id` is safe ("Reached, safe")."""
    return Form(actions.SAFE_FORM, "Confirm safe", "Confirm safe", (
        _text("note", "How do you know they are safe?", multiline=True, max_length=500,
              placeholder="Spoke to Sam on the phone at 11:05, on the way back"),
    ), state=_state(visit_id))


def duress_word() -> Form:
    """Set a personal duress word (only its salted hash is kept)."""
    return Form(actions.DURESS_FORM, "Your duress word", "Save", (
        _text("word", "Duress word", max_length=40, placeholder="a word you would never type by accident"),
    ), intro=(
        "If someone is watching your screen, type this word after `/back` or `/checkin` (or as your"
        " answer to *Still OK?*). You will see the normal reply, and the safeguarding team and the DSL"
        " are alerted silently. Only a one-way hash of the word is stored."
    ))


def confidential(people: list[tuple[str, str]], visit_id: int | None = None) -> Form:
    """Whom to open a confidential conversation with: (id, name) of the people the policy allows."""
    about = f" about visit #{visit_id}" if visit_id is not None else ""
    return Form(actions.CONFIDENTIAL_FORM, "Confidential chat", "Open", (
        _choice("with", "With", "select", dict(people)),
    ), intro=(
        f"A private conversation{about} between you, the person you choose and VisitSafe. VisitSafe records"
        " only that it exists (who, when, which visit), never what is written in it."
    ), state=_state(visit_id))


DURESS_SAVED = Done("Your duress word", "Saved. Nothing about it is shown anywhere else.")

# Every form by the id its submission carries, drawn without state (enough to read a submission's answers).
BY_CALLBACK: dict[str, Callable[[], Form]] = {
    actions.VISIT_FORM: visit_details,
    actions.RISK_FORM: visit_risk,
    actions.DECLINE_FORM: decline,
    actions.EXTEND_FORM: extend,
    actions.SAFE_FORM: confirm_safe,
    actions.DURESS_FORM: duress_word,
}


def form_for(callback_id: str) -> Form | None:
    """The form a submission with this callback id answers (None for an unknown id)."""
    make = BY_CALLBACK.get(callback_id)
    return make() if make else None


def normalize(kind: str, raw: Any) -> str | list[str] | None:
    """One answer in the neutral shape: typed text cleaned, an empty single answer None, a multiple one a list."""
    if kind in MULTI:
        items = raw if isinstance(raw, (list, tuple)) else ()
        return [clean(item) for item in items if isinstance(item, str)]
    if not isinstance(raw, str) or raw == "":
        return None
    return clean(raw)


def filled(form: Form, answers: dict[str, Any]) -> Form:
    """The same form showing these answers as its current values (fields not answered keep theirs)."""
    def value(field: Field) -> Any:
        if field.name not in answers:
            return field.value
        answer = normalize(field.kind, answers[field.name])
        return tuple(answer) if isinstance(answer, list) else answer

    return replace(form, fields=tuple(replace(f, value=value(f)) for f in form.fields))


def details_answers(values: dict[str, Any]) -> dict[str, Any]:
    """/visit step 1's answers as flows.request expects them (missing answers left out)."""
    raw = {k: v for k, v in values.items() if v not in (None, "")}
    if "planned" in raw:
        raw["planned"] = raw["planned"] == "planned"
    if "parents_informed" in raw:
        raw["parents_informed"] = raw["parents_informed"] == "yes"
    raw["commute"] = "yes" in (raw.get("commute") or [])
    return raw


def risk_answers(values: dict[str, Any]) -> dict[str, Any]:
    """/visit step 2's answers as flows.request expects them."""
    ticked = set(values.get("risks") or [])
    answers: dict[str, Any] = {name: name in ticked for name in RISK_CHECKS}
    if values.get("allergies") is None:
        answers["allergies_checked"] = None  # required: reported beside the field
    else:
        answers["allergies_checked"] = values["allergies"] != "not_checked"
    answers["other_agencies"] = values.get("other_agencies") or None
    answers["other_concerns"] = values.get("other_concerns") or None
    answers["companions"] = tuple(values.get("companions") or ())
    return answers


def place_errors(errors: dict[str, str], fields: list[str]) -> dict[str, str]:
    """Error messages keyed by the field that shows them (`fields`, in order); unknown names go on the first."""
    out: dict[str, str] = {}
    for name, message in errors.items():
        where = FIELD_OF.get(name, name)
        if where not in fields:
            where = fields[0]
        out[where] = (out[where] + " " + message) if where in out else message
    return out


# ----- After the visit, the DSL's side (issue 14 items 2, 4, 5, 6; helper "dslside") -----

FLAG_CHOICES = {"dont_visit_alone": "Don't visit alone", "meet_on_premises": "Meet on premises only", "under_review": "Under review: no new visit until reviewed"}


def concern(visit_id: int | None = None, text: str | None = None) -> Form:
    """/concern during visit `visit_id`: what the visitor is worried about (any text typed after the command kept)."""
    return Form(actions.CONCERN_FORM, "Safeguarding concern", "Send to the DSL", (
        _text("concern", "What are you concerned about?", multiline=True, max_length=2000, value=text or None,
              placeholder="A child alone at home, a disclosure, anything the DSL should know now"),
    ), intro=(
        "If a child is in immediate danger, call 999 first. This goes at once to the DSLs and the safeguarding"
        " team only (never the office), and becomes part of the visit's record."
    ), state=_state(visit_id))


def register_add() -> Form:
    """Add a flag to the register: on an address, a family, or both."""
    return Form(actions.REGISTER_ADD_FORM, "Add to the register", "Add", (
        _text("address", "Address", multiline=True, required=False, hint="With the postcode: addresses match whatever the spelling of the rest."),
        _text("pupil_ref", "Family or pupil reference", required=False, max_length=40, hint="Initials or MIS id, not a full name."),
        _choice("flag", "Flag", "radio", FLAG_CHOICES),
        _text("reason", "Reason", multiline=True, max_length=2000),
    ), intro="Give the address, the family reference, or both. Every `/visit` is checked against the register.")


def register_clear(flag_id: int | None = None) -> Form:
    """Clear flag `flag_id`: the note of why is kept in its history."""
    return Form(actions.REGISTER_CLEAR_FORM, "Clear a flag", "Clear", (
        _text("note", "Why is it cleared?", multiline=True, max_length=2000, placeholder="Reviewed at the meeting of 30 Nov: ..."),
    ), intro=f"Flag #{flag_id}: the flag stays in the register's history with your note." if flag_id else None, state=_state(flag_id))


def referral(visit_id: int | None = None, today: date | None = None) -> Form:
    """Log a referral to another agency after visit `visit_id` (Tees Valley 4.3)."""
    return Form(actions.REFERRAL_FORM, "Log a referral", "Log", (
        _text("agency", "Referred to (agency)", max_length=200, placeholder="Children's social care"),
        Field("referred_on", "date", "Referred on", value=today.isoformat() if today else None),
        _choice("consent", "Did the family consent?", "radio", {"yes": "Yes", "no": "No"}),
        Field("follow_up_on", "date", "Follow up on", required=False, hint="You get a reminder that morning."),
        _text("notes", "Notes", multiline=True, required=False, max_length=2000),
    ), state=_state(visit_id))


def share(visit_id: int | None = None, today: date | None = None) -> Form:
    """Log information about visit `visit_id` passed to another member of staff (Tees Valley 4.1)."""
    return Form(actions.SHARE_FORM, "Log information shared", "Log", (
        Field("shared_with", "users", "Passed to", hint="The colleague you passed it to."),
        Field("shared_on", "date", "When", value=today.isoformat() if today else None),
        _text("why", "Why", multiline=True, max_length=2000),
    ), state=_state(visit_id))


BY_CALLBACK.update({
    actions.CONCERN_FORM: concern,
    actions.REGISTER_ADD_FORM: register_add,
    actions.REGISTER_CLEAR_FORM: register_clear,
    actions.REFERRAL_FORM: referral,
    actions.SHARE_FORM: share,
})

# ----- After the visit (issue 14, helper "outcome"): the forms behind the outcome buttons -----

YES_NO = {"yes": "Yes", "no": "No"}
CARDS = {"contact": "Contact card", "appointment": "Appointment card", "message": "Message card"}


def nobody_home(visit_id: int | None = None, cards: dict[str, str] | None = None, suggested: str | None = None, intro: str | None = None) -> Form:
    """Which card the visitor left when nobody answered (the policy's card preselected)."""
    return Form(actions.NOBODY_HOME_FORM, "Nobody home", "Record", (
        _choice("card", "Which card did you leave?", "radio", cards or CARDS, value=suggested),
    ), intro=intro, state=_state(visit_id))


def concern_report(visit_id: int | None = None) -> Form:
    """A safeguarding concern after a visit: to the safeguarding channel and the DSLs only."""
    return Form(actions.OUTCOME_CONCERN_FORM, "Safeguarding concern", "Send to the DSL", (
        _text("what", "What is the concern?", multiline=True, max_length=2000),
        _choice("child_seen", "Was the child seen?", "radio", YES_NO, required=False),
    ), intro="Goes at once to the safeguarding channel and the DSLs, and nobody else.", state=_state(visit_id))


def incident_report(visit_id: int | None = None) -> Form:
    """An incident on a visit: to the safeguarding channel; the address and family go under review."""
    return Form(actions.INCIDENT_FORM, "Incident", "Report", (
        _text("what", "What happened?", multiline=True, max_length=2000),
        _text("injuries", "Injuries (none if none)", max_length=300),
        _choice("abuse", "Abusive or threatening behaviour?", "radio", YES_NO),
        _choice("police", "Were the police involved?", "radio", YES_NO),
    ), intro="Goes at once to the safeguarding channel. The address and family are flagged *under review*: no new visit until reviewed.",
        state=_state(visit_id))


def left_unsafe_report(visit_id: int | None = None) -> Form:
    """The visitor left because they felt unsafe: to the DSL and the head at once."""
    return Form(actions.LEFT_UNSAFE_FORM, "Left: felt unsafe", "Tell the DSL and head", (
        _text("why", "What made you feel unsafe?", multiline=True, max_length=2000),
    ), intro="Goes at once to the DSL and the head. The address and family are flagged *under review*.", state=_state(visit_id))


def allegation_report(visit_id: int | None = None) -> Form:
    """An allegation against the visitor or about the visit: to the head and the DSL only (St Patrick's)."""
    return Form(actions.ALLEGATION_FORM, "Allegation made", "Tell the head and DSL", (
        _text("about", "Against whom, or about what?", max_length=300),
        _text("what", "What was said?", multiline=True, max_length=2000),
    ), intro="Goes at once to the head and the DSL only.", state=_state(visit_id))


# The outcome each form records.
OUTCOME_FORMS: dict[str, str] = {
    actions.NOBODY_HOME_FORM: "nobody_home",
    actions.OUTCOME_CONCERN_FORM: "concern",
    actions.INCIDENT_FORM: "incident",
    actions.LEFT_UNSAFE_FORM: "left_unsafe",
    actions.ALLEGATION_FORM: "allegation",
}
BY_CALLBACK.update({
    actions.NOBODY_HOME_FORM: nobody_home,
    actions.OUTCOME_CONCERN_FORM: concern_report,
    actions.INCIDENT_FORM: incident_report,
    actions.LEFT_UNSAFE_FORM: left_unsafe_report,
    actions.ALLEGATION_FORM: allegation_report,
})

# The form behind each outcome button that opens one, by outcome.
FORM_OF = {kind: callback for callback, kind in OUTCOME_FORMS.items()}
