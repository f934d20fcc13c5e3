"""A school's home-visit policy as validated configuration (one YAML file per school)."""
from __future__ import annotations

from datetime import time, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.durations import BadDuration, parse_clock, parse_duration


class Role(str, Enum):
    """The roles a policy names; each holds platform user ids."""

    dsl = "dsl"
    head = "head"
    senior_leader = "senior_leader"
    office = "office"
    elt = "elt"
    family_support = "family_support"
    team_leader = "team_leader"


# Who an escalation tier or alert can go to. Channels are private; roles are DM'd one by one.
CHANNEL_AUDIENCES = ("office", "safeguarding")
PERSON_AUDIENCES = ("visitor", "companions")
ROLE_AUDIENCES = tuple(r.value for r in Role if r is not Role.office)
AUDIENCES = CHANNEL_AUDIENCES + PERSON_AUDIENCES + ROLE_AUDIENCES


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"'{value}' is not a duration: write it like 90s, 15m, 1h30m, 24h or 365d")
    try:
        return parse_duration(value)
    except BadDuration as exc:
        raise ValueError(str(exc)) from None


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:30 as the sexagesimal integer 1050.
        value = f"{value // 60:02d}:{value % 60:02d}"
    parsed = parse_clock(str(value))
    if parsed is None:
        raise ValueError(f"'{value}' is not a clock time: write it like \"08:00\"")
    return parsed


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Clock = Annotated[time, BeforeValidator(_clock)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channels(_Strict):
    """The private channels the bot posts to."""

    office: str = Field(min_length=1)
    safeguarding: str = Field(min_length=1)


class Roles(_Strict):
    """Platform user ids (or group ids) holding each role."""

    dsl: list[str] = Field(default_factory=list)
    head: list[str] = Field(default_factory=list)
    senior_leader: list[str] = Field(default_factory=list)
    office: list[str] = Field(default_factory=list)
    elt: list[str] = Field(default_factory=list)
    family_support: list[str] = Field(default_factory=list)
    team_leader: list[str] = Field(default_factory=list)

    def holders(self, role: Role | str) -> list[str]:
        """The user ids holding a role."""
        return list(getattr(self, Role(role).value))

    def of(self, user: str) -> set[Role]:
        """Every role a user holds."""
        return {role for role in Role if user in getattr(self, role.value)}


class ApprovalRule(_Strict):
    """Either every listed role approves (all_of) or any one of them does (any_of)."""

    all_of: list[Role] | None = None
    any_of: list[Role] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ApprovalRule":
        if bool(self.all_of) == bool(self.any_of):
            raise ValueError("give exactly one of all_of or any_of, with at least one role")
        return self

    def slots(self) -> list[tuple[Role, ...]]:
        """Each slot is filled by one approval from a holder of any of its roles."""
        if self.all_of:
            return [(role,) for role in self.all_of]
        return [tuple(self.any_of or ())]


class Approvals(ApprovalRule):
    """Who must approve a visit, with the policies' special cases."""

    # St Patrick's: "home visits conducted by senior leaders must be authorised by the headteacher".
    senior_leader_own_visit: ApprovalRule | None = None
    # An unplanned emergency welfare check may go out on the DSL's word alone (PRODUCT.md section 4).
    emergency: ApprovalRule | None = None


class VisitingHours(_Strict):
    """The window in which visits may start and end (school time zone)."""

    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _ordered(self) -> "VisitingHours":
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class Tier(_Strict):
    """One rung of the overdue ladder: after this long past expected return, tell these people."""

    after: Duration
    notify: list[str] = Field(min_length=1)

    @field_validator("notify")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in AUDIENCES]
        if unknown:
            raise ValueError(f"unknown audience {unknown[0]!r}: use {', '.join(AUDIENCES)}")
        return value


class StaffMember(_Strict):
    """A staff directory entry used when a chat profile has no phone number."""

    name: str | None = None
    mobile: str | None = None


DEFAULT_CHECKLIST = (
    "Phone charged and switched on",
    "ID badge on show",
    "Code word agreed with your colleague",
    "Park facing out, in a well-lit place",
    "Do not go upstairs or into a child's bedroom",
    "Know your exit route",
)


class Policy(_Strict):
    """One school's home-visit policy."""

    school: str = Field(min_length=1)
    timezone: str = "Europe/London"
    channels: Channels
    roles: Roles
    approvals: Approvals
    pairs_required: bool = True
    visiting_hours: VisitingHours = VisitingHours(start=time(8), end=time(17, 30))
    # Botley: "do not schedule visits during the evening"; others may allow with the head's say-so.
    outside_hours: Literal["refuse", "head_approval"] = "refuse"
    # Hampton: visits on the way to or from work need the head of school's prior approval.
    commute_visits: Literal["head_approval", "refuse", "allowed"] = "head_approval"
    checkin_interval: Duration | None = None
    # The latest expected return /out, a round or /extend may set, counted from now: a typo like
    # `/out 9999d` must not switch the safety net off for days.
    max_visit_length: Duration = timedelta(hours=8)
    checkin_grace: Duration = timedelta(minutes=10)
    sweep_interval: Duration = timedelta(seconds=15)
    escalation: list[Tier] = Field(min_length=1)
    ack_pause: Duration = timedelta(minutes=15)
    repeat_interval: Duration = timedelta(minutes=15)
    delivery_fallback_after: Duration = timedelta(seconds=60)
    record_deadline: Duration = timedelta(hours=24)
    retention: Duration = timedelta(days=365)
    safety_checklist: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKLIST))
    # Who sees the office board lines (out, back, extended, safe); Hampton: "the office and the HoS".
    board: list[str] = Field(default_factory=lambda: ["office"], min_length=1)
    staff: dict[str, StaffMember] = Field(default_factory=dict)

    @field_validator("board")
    @classmethod
    def _board_audiences(cls, value: list[str]) -> list[str]:
        allowed = [a for a in AUDIENCES if a not in PERSON_AUDIENCES]
        unknown = [a for a in value if a not in allowed]
        if unknown:
            raise ValueError(f"unknown audience {unknown[0]!r}: use {', '.join(allowed)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use a name like Europe/London") from None
        return value

    @field_validator("escalation")
    @classmethod
    def _ascending(cls, tiers: list[Tier]) -> list[Tier]:
        for earlier, later in zip(tiers, tiers[1:]):
            if later.after <= earlier.after:
                raise ValueError("tiers must be in order, each 'after' later than the one before")
        return tiers

    @field_validator("sweep_interval", "repeat_interval", "ack_pause", "max_visit_length")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than zero")
        return value

    @field_validator("checkin_interval")
    @classmethod
    def _positive_or_off(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be more than zero, or left out to switch check-ins off")
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The school's time zone."""
        return ZoneInfo(self.timezone)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message is one line naming the key."""


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known setting (check the spelling)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{key}: {message}{suffix}"


def parse_policy(data: Any, source: str = "policy") -> Policy:
    """Validate already-parsed YAML data; raise PolicyError with one line naming the key."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the file must be a YAML mapping of settings")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_first_error(exc)}") from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file (set VISITSAFE_CONFIG, or copy one from examples/policies/)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{where}") from None
    return parse_policy(data, str(path))
