"""After the visit, the DSL's side (issue 14 items 2, 4, 5, 6): concerns raised during a visit, the register,
referrals and information shared, and the Vulnerable Children's Meeting list.

Harton 6.3 and St Patrick's: a concern about a child goes to the DSL and the safeguarding team straight away.
Tees Valley 4.1 and 4.3: a referral to another agency and any passing of information to another member of
staff are logged; 4.4: incidents are discussed at the Vulnerable Children's Meeting.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from flows.aftervisit import OUTCOMES
from flows.messages import Message, esc, mention
from flows.notices import when
from flows.policy import Policy, Role
from flows.request import FieldErrors
from flows.risk import Flag
from flows.visit import Visit

# Only these may read or change the register and the meeting list.
REGISTER_ROLES = frozenset({Role.dsl, Role.head})
REGISTER_REFUSED = "Only the DSL and the headteacher can see or change the register."
RECORD_REFUSED = "Only the DSL, the headteacher and the staff who went on visit #{visit_id} can see its record."
FLAG_WORDS = {
    Flag.dont_visit_alone: "don't visit alone",
    Flag.meet_on_premises: "meet on premises only",
    Flag.under_review: "under review: no new visit until reviewed",
}
# Concern kinds as the record and the meeting list name them (concerns.kind).
KIND_WORDS = {"concern": "Safeguarding concern", "incident": "Incident", "left_unsafe": "Left: felt unsafe", "allegation": "Allegation"}
OUTCOME_WORDS = OUTCOMES
MAX_TEXT = 2000
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def may_use_register(policy: Policy, user: str) -> bool:
    """The DSL and the head, nobody else."""
    return bool(policy.roles.of(user) & REGISTER_ROLES)


def may_see_record(policy: Policy, user: str, visit: Visit) -> bool:
    """The DSL, the head, and the visiting team (St Patrick's: nobody not involved)."""
    return may_use_register(policy, user) or user in visit.team


def sees_concern(policy: Policy, user: str, kind: str, raised_by: str) -> bool:
    """The DSL and head see every report; the team only what they raised themselves, never an allegation."""
    return may_use_register(policy, user) or (raised_by == user and kind != "allegation")


# ----- input -----


def _text(answers: dict[str, object], name: str, label: str, errors: dict[str, str], required: bool = True) -> str | None:
    value = answers.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            errors[name] = f"Write the {label}: it cannot be empty."
        return None
    if len(text) > MAX_TEXT:
        errors[name] = f"Keep the {label} under {MAX_TEXT} characters (it has {len(text)})."
    return text


def _day(answers: dict[str, object], name: str, errors: dict[str, str], required: bool = True) -> date | None:
    value = answers.get(name)
    if value in (None, ""):
        if required:
            errors[name] = "Choose the date."
        return None
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        errors[name] = f"'{str(value)[:30]}' is not a date I can read: write it like 2026-11-30 (year-month-day)."
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = f"'{value[:30]}' is not a real date: write it like 2026-11-30 (year-month-day)."
        return None


@dataclass(frozen=True)
class NewFlag:
    """A register flag as the form asked for it."""

    flag: Flag
    address: str | None
    pupil_ref: str | None
    reason: str

    @property
    def label(self) -> str:
        """What the flag is on, as people read it."""
        return " · ".join(part for part in (self.pupil_ref, self.address) if part)


def validate_flag(answers: dict[str, object]) -> NewFlag:
    """The add-a-flag form: an address or a family (or both), a flag, a reason; FieldErrors names each problem."""
    errors: dict[str, str] = {}
    address = _text(answers, "address", "address", errors, required=False)
    pupil_ref = _text(answers, "pupil_ref", "family reference", errors, required=False)
    if address is None and pupil_ref is None and "address" not in errors:
        errors["address"] = "Give the address, the family reference, or both: the flag must be on something."
    flag_value = answers.get("flag")
    if flag_value not in {f.value for f in Flag}:
        errors["flag"] = "Choose the flag."
    reason = _text(answers, "reason", "reason", errors)
    if errors:
        raise FieldErrors(errors)
    return NewFlag(Flag(str(flag_value)), address, pupil_ref, reason or "")


def _required(answers: dict[str, object], field: str, what: str) -> str:
    """The text of one required field, or FieldErrors saying it is missing."""
    errors: dict[str, str] = {}
    text = _text(answers, field, what, errors)
    if errors:
        raise FieldErrors(errors)
    return text or ""


def validate_concern(answers: dict[str, object]) -> str:
    """A concern cannot be empty."""
    return _required(answers, "concern", "concern")


def validate_note(answers: dict[str, object]) -> str:
    """Clearing a flag needs a note of why (kept in its history)."""
    return _required(answers, "note", "note of why the flag is cleared")


@dataclass(frozen=True)
class NewReferral:
    """A referral to another agency as the form asked for it."""

    agency: str
    referred_on: date
    consent: bool
    follow_up_on: date | None
    notes: str | None


def validate_referral(answers: dict[str, object], today: date) -> NewReferral:
    """The referral form: which agency, when (not in the future), family consent, an optional follow-up day
    (today or later, not before the referral) and notes."""
    errors: dict[str, str] = {}
    agency = _text(answers, "agency", "agency referred to", errors)
    referred_on = _day(answers, "referred_on", errors)
    consent = answers.get("consent")
    if consent not in ("yes", "no"):
        errors["consent"] = "Say whether the family consented: yes or no."
    follow_up_on = _day(answers, "follow_up_on", errors, required=False)
    notes = _text(answers, "notes", "notes", errors, required=False)
    if referred_on is not None and referred_on > today:
        errors["referred_on"] = f"The referral date {referred_on:%d %b %Y} is in the future: log a referral once it is made."
    if follow_up_on is not None and follow_up_on < today:
        errors["follow_up_on"] = f"The follow-up date {follow_up_on:%d %b %Y} has passed: choose today or a later day."
    elif follow_up_on is not None and referred_on is not None and follow_up_on < referred_on:
        errors["follow_up_on"] = "The follow-up date is before the referral: choose a later day."
    if errors:
        raise FieldErrors(errors)
    return NewReferral(agency or "", referred_on, consent == "yes", follow_up_on, notes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NewShare:
    """Information passed to another member of staff, as the form asked for it."""

    shared_with: str
    shared_on: date
    why: str


def validate_share(answers: dict[str, object], today: date, user: str) -> NewShare:
    """The sharing form: to whom (one colleague, not oneself), when (not in the future), why."""
    errors: dict[str, str] = {}
    people = answers.get("shared_with")
    chosen = [p for p in people if isinstance(p, str) and p] if isinstance(people, (list, tuple)) else []
    if len(chosen) != 1:
        errors["shared_with"] = "Choose the one colleague you passed the information to (log each person separately)."
    elif chosen[0] == user:
        errors["shared_with"] = "Choose the colleague you passed it to, not yourself."
    shared_on = _day(answers, "shared_on", errors)
    why = _text(answers, "why", "reason it was shared", errors)
    if shared_on is not None and shared_on > today:
        errors["shared_on"] = f"The date {shared_on:%d %b %Y} is in the future: log a sharing once it has happened."
    if errors:
        raise FieldErrors(errors)
    return NewShare(chosen[0], shared_on, why or "")  # type: ignore[arg-type]


# ----- messages -----


def concern_messages(visit: Visit, concern_id: int, raised_by: str, text: str, now: datetime, policy: Policy) -> list[Message]:
    """A concern raised during a visit: to the safeguarding channel and every DSL at once, nowhere else."""
    body = (
        f":warning: *Safeguarding concern* raised by {mention(raised_by)} during visit #{visit.id}"
        f" ({when(now, policy)}). Not an emergency: the visitor is still out.\n"
        f"Family: *{esc(visit.details.pupil_ref)}* · Address: {esc(visit.details.address)}"
    )
    fields = (("Concern", text),)
    notes = (f"Part of visit #{visit.id}'s record: `/visits record {visit.id}`",)
    targets = [policy.channels.safeguarding, *policy.roles.holders(Role.dsl)]
    return [Message(to=t, text=body, fields=fields, notes=notes, key=f"concern:{concern_id}:{t}") for t in dict.fromkeys(targets)]


def follow_up_message(referral_id: int, visit_id: int | None, agency: str, referred_on: datetime, to: str, policy: Policy) -> Message:
    """The day a referral is to be followed up: a reminder to the person who made it."""
    about = f" after visit #{visit_id}" if visit_id is not None else ""
    return Message(
        to=to,
        text=(
            f":alarm_clock: *Follow up your referral today*: to {esc(agency)}{about}, made on {referred_on.astimezone(policy.tz):%a %d %b}."
            + (f" Its record: `/visits record {visit_id}`." if visit_id is not None else "")
        ),
        key=f"referral-follow-up:{referral_id}",
    )
