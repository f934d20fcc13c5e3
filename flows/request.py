"""The two steps of a visit request and their validation, field by field."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta  # noqa: F401 - `date` is a field type pydantic resolves by name
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from flows.durations import BadDuration, format_duration, parse_duration
from flows.policy import Policy

REASONS: dict[str, str] = {
    "attendance": "Attendance concerns",
    "refusing": "Refusing to attend school",
    "welfare": "Welfare check / child not seen",
    "medical": "Medical absence",
    "education_at_home": "Education at home",
    "parent_cannot_come": "Parent cannot come in",
    "transition": "New starter / transition visit",
    "work": "Drop off or collect work",
    "transport": "Transport to or from home",
    "holiday": "Holiday suspicion",
    "other": "Other",
}
VISIT_TYPES = {"home": "Home visit (enter the home)", "doorstep": "Doorstep visit (eyes on the child)"}
TRAVEL_MODES = {"car": "Car", "taxi": "Taxi", "foot": "On foot", "other": "Other"}
TRAVEL_DETAIL_HINT = {
    "car": "registration, make and model",
    "taxi": "taxi company (and registration if known)",
    "foot": "the planned route",
    "other": "how you are travelling",
}
MAX_DURATION = timedelta(hours=8)
# A request typed a little after setting off (an urgent welfare check) is still accepted.
PAST_START_GRACE = timedelta(minutes=30)
_PHONE_CHARS = re.compile(r"^[0-9 +()\-.]+$")
# What retention leaves in place of personal details (flows.retention).
PURGED = "(purged)"


class FieldErrors(Exception):
    """Validation failed; `errors` maps each form field to the message shown beside it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class VisitDetails(BaseModel):
    """Step 1: the visit itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pupil_ref: str = Field(min_length=1, max_length=40)
    address: str = Field(min_length=5, max_length=300)
    contact_phone: str
    reason: Literal[tuple(REASONS)]  # type: ignore[valid-type]
    reason_other: str | None = Field(default=None, max_length=300)
    visit_type: Literal[tuple(VISIT_TYPES)]  # type: ignore[valid-type]
    planned: bool
    date: date
    start_time: time
    duration: timedelta
    travel_mode: Literal[tuple(TRAVEL_MODES)]  # type: ignore[valid-type]
    travel_details: str = Field(min_length=2, max_length=300)
    parents_informed: bool
    parents_not_informed_reason: str | None = Field(default=None, max_length=300)
    commute: bool = False

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if value == PURGED:
            return value
        digits = re.sub(r"\D", "", value)
        if not _PHONE_CHARS.match(value.strip()) or not 7 <= len(digits) <= 15:
            raise ValueError("enter a phone number of 7 to 15 digits, like 01632 960123")
        return value.strip()

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except BadDuration:
            raise ValueError("enter how long, like 45m or 1h30m") from None

    @field_validator("duration")
    @classmethod
    def _sensible(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("the visit must last more than zero minutes")
        if value > MAX_DURATION:
            raise ValueError("a visit can last at most 8h; split a longer day into visits")
        return value

    @field_serializer("duration")
    def _typed(self, value: timedelta) -> str:
        return format_duration(value)

    def start_at(self, policy: Policy) -> datetime:
        """The planned start as an aware datetime in the school's time zone."""
        return datetime.combine(self.date, self.start_time, tzinfo=policy.tz)


class RiskAnswers(BaseModel):
    """Step 2: the risk assessment, and who goes with the visitor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    violence_known: bool = False
    violent_person_present: bool = False
    family_new: bool = False
    animals: bool = False
    interpreter: bool = False
    other_agencies: str | None = Field(default=None, max_length=300)
    special_needs: bool = False
    allergies_checked: bool = True
    other_concerns: str | None = Field(default=None, max_length=1000)
    companions: tuple[str, ...] = ()


def _collect(model: type[BaseModel], raw: dict[str, Any]) -> tuple[BaseModel | None, dict[str, str]]:
    try:
        return model.model_validate(raw), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            if error["type"] == "missing" or raw.get(name) in (None, ""):
                message = "this is required"
            elif error["type"] == "literal_error":
                message = "choose one of the options"
            else:
                message = error["msg"].removeprefix("Value error, ")
            errors.setdefault(name, message)
        return None, errors


def validate_details(raw: dict[str, Any], now: datetime, policy: Policy) -> VisitDetails:
    """Validate step 1 against the policy and the clock; raise FieldErrors per field."""
    details, errors = _collect(VisitDetails, raw)
    if details is None:
        raise FieldErrors(errors)
    assert isinstance(details, VisitDetails)
    errors = {}
    if details.reason == "other" and not (details.reason_other or "").strip():
        errors["reason_other"] = "say what the visit is for"
    if not details.parents_informed and details.planned and not (details.parents_not_informed_reason or "").strip():
        errors["parents_not_informed_reason"] = "say why parents were not told in advance"
    today = now.astimezone(policy.tz).date()
    if details.date < today:
        errors["date"] = "that date has passed"
    if details.commute and policy.commute_visits == "refuse":
        errors["commute"] = "this school's policy does not allow visits on the way to or from work"
    if policy.outside_hours == "refuse" and outside_hours(details, policy):
        hours = policy.visiting_hours
        errors["start_time"] = (
            f"visits must start after {hours.start:%H:%M} and be over by {hours.end:%H:%M}"
            " (school policy: no evening visits)"
        )
    elif "date" not in errors and details.start_at(policy) < now - PAST_START_GRACE:
        errors["start_time"] = "that time has already passed today: give the time you will actually set off"
    if errors:
        raise FieldErrors(errors)
    return details


def outside_hours(details: VisitDetails, policy: Policy) -> bool:
    """Whether the visit starts before or runs past the policy's visiting window."""
    start = datetime.combine(details.date, details.start_time)
    end = start + details.duration
    window_start = datetime.combine(details.date, policy.visiting_hours.start)
    window_end = datetime.combine(details.date, policy.visiting_hours.end)
    return start < window_start or end > window_end


def validate_risk(raw: dict[str, Any]) -> RiskAnswers:
    """Validate step 2's types; the policy's risk rules run in flows.risk."""
    answers, errors = _collect(RiskAnswers, raw)
    if answers is None:
        raise FieldErrors(errors)
    assert isinstance(answers, RiskAnswers)
    return answers
