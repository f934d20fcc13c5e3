"""A school's home-visit policy as validated configuration (one YAML file per school)."""
from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
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
# A tier may also text or email a role's holders through GOV.UK Notify: `sms:dsl`, `email:head`, `sms:office`.
TEXT_CHANNELS = ("sms", "email")
TEXT_AUDIENCES = tuple(f"{kind}:{role.value}" for kind in TEXT_CHANNELS for role in Role)


def text_audience(audience: str) -> tuple[str, Role] | None:
    """("sms" or "email", the role) for a text audience like `sms:dsl`; None for a chat audience."""
    kind, _, role = audience.partition(":")
    return (kind, Role(role)) if audience in TEXT_AUDIENCES else None


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

# Left in the example files for the school to replace; accepted only when trying an example.
PLACEHOLDER = "_CHANGE_ME"
HOW_TO_COPY_CHANNEL = "in Slack, open the channel, click its name at the top and copy the Channel ID at the foot of the About tab (it starts with C)"
HOW_TO_COPY_PERSON = "in Slack, open the person's profile, click \u22ee (More) and choose Copy member ID (it starts with U)"
HOW_TO_COPY_SPACE = "in Google Chat, open the space; its id is the part of the address after /room/, written spaces/<that id>"
HOW_TO_COPY_CHAT_PERSON = (
    "in the Google Admin console, open Directory > Users, open the person and copy the number at the end of the"
    " address (their user id), written users/<that number>"
)
CHAT_SPACE = re.compile(r"spaces/[A-Za-z0-9_-]{3,}")
CHAT_PERSON = re.compile(r"users/[0-9]{1,30}")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
PERSON_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def _placeholder(value: str, info: ValidationInfo, how: str) -> bool:
    """True for an example's placeholder when trying an example; refused otherwise."""
    if PLACEHOLDER not in value:
        return False
    if (info.context or {}).get("example"):
        return True
    raise ValueError(f"{value!r} is a placeholder from the examples: replace it with the real id; {how}")


def _on_chat(info: ValidationInfo) -> bool:
    """Whether the policy being read is for Google Chat (parse_policy puts its platform in the context)."""
    return (info.context or {}).get("platform") == "google_chat"


def _channel_id(value: str, info: ValidationInfo) -> str:
    if _on_chat(info):
        return _chat_space(value, info)
    if _placeholder(value, info, HOW_TO_COPY_CHANNEL) or CHANNEL_ID.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a Slack channel id, which looks like C0123ABCD: {HOW_TO_COPY_CHANNEL}")


def _person_id(value: str, info: ValidationInfo) -> str:
    if _on_chat(info):
        return _chat_person(value, info)
    if _placeholder(value, info, HOW_TO_COPY_PERSON) or PERSON_ID.fullmatch(value):
        return value
    if GROUP_ID.fullmatch(value):
        raise ValueError(f"{value!r} is a Slack user group; VisitSafe needs each person's own id, like U0123ABCD: {HOW_TO_COPY_PERSON}")
    raise ValueError(f"{value!r} is not a Slack user id, which looks like U0123ABCD: {HOW_TO_COPY_PERSON}")


def _chat_space(value: str, info: ValidationInfo) -> str:
    if _placeholder(value, info, HOW_TO_COPY_SPACE) or CHAT_SPACE.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a Google Chat space, which looks like spaces/AAAAbCdEfGh: {HOW_TO_COPY_SPACE}")


def _chat_person(value: str, info: ValidationInfo) -> str:
    if _placeholder(value, info, HOW_TO_COPY_CHAT_PERSON) or CHAT_PERSON.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a Google Chat user id, which looks like users/123456789012345678901: {HOW_TO_COPY_CHAT_PERSON}")


ChannelId = Annotated[str, AfterValidator(_channel_id)]
PersonId = Annotated[str, AfterValidator(_person_id)]
# The sweep must run often: an alert can be up to one sweep interval late.
MAX_SWEEP_INTERVAL = timedelta(seconds=60)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channels(_Strict):
    """The private channels the bot posts to."""

    office: ChannelId
    safeguarding: ChannelId


class Roles(_Strict):
    """Platform user ids holding each role."""

    dsl: list[PersonId] = Field(default_factory=list)
    head: list[PersonId] = Field(default_factory=list)
    senior_leader: list[PersonId] = Field(default_factory=list)
    office: list[PersonId] = Field(default_factory=list)
    elt: list[PersonId] = Field(default_factory=list)
    family_support: list[PersonId] = Field(default_factory=list)
    team_leader: list[PersonId] = Field(default_factory=list)

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
    # An unplanned emergency welfare check may go out on the DSL's word alone (Harton: "emergency safeguarding visits").
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
        unknown = [a for a in value if a not in AUDIENCES and a not in TEXT_AUDIENCES]
        if unknown:
            raise ValueError(
                f"unknown audience {unknown[0]!r}: use {', '.join(AUDIENCES)},"
                f" or sms:<role> / email:<role> with a role among {', '.join(r.value for r in Role)}"
            )
        return value


def _email(value: str | None) -> str | None:
    if value is not None and not EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address, which looks like name@school.org.uk")
    return value


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HOW_TO_COPY_TEMPLATE = "in GOV.UK Notify, open Templates, choose the template and copy its Template ID"


def _template_id(value: str, info: ValidationInfo) -> str:
    if _placeholder(value, info, HOW_TO_COPY_TEMPLATE) or UUID.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a GOV.UK Notify template id, which looks like 8a6c2d1e-0b4f-4c6e-9d1a-2f3b4c5d6e7f: {HOW_TO_COPY_TEMPLATE}")


TemplateId = Annotated[str, AfterValidator(_template_id)]


class Notify(_Strict):
    """GOV.UK Notify templates (by id) for the ladder's SMS and email; the API key is NOTIFY_API_KEY, never here."""

    # A text message template whose whole body is ((message)).
    sms_template: TemplateId
    # An email template with subject ((subject)) and body ((message)); needed only for email: audiences.
    email_template: TemplateId | None = None
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Opening hours for each weekday, Monday first; None: closed all day.
Hours = tuple[tuple[time, time] | None, ...]
_HOURS = re.compile(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*")


def _days(spec: str) -> list[int]:
    first, dash, last = str(spec).strip().lower().partition("-")
    if first not in DAYS or (dash and last not in DAYS):
        raise ValueError(f"{spec!r} is not a day or a range of days: write mon, tue, wed, thu, fri, sat or sun, or a range like mon-fri")
    start, end = DAYS.index(first), DAYS.index(last if dash else first)
    if end < start:
        raise ValueError(f"{spec!r} runs backwards: write the earlier day first, like mon-fri")
    return list(range(start, end + 1))


def _office_hours(value: Any) -> Hours | None:
    """`{mon-fri: "08:00-16:30", sat: "09:00-12:00"}` as opening hours per weekday (unlisted days: closed)."""
    if value is None or (isinstance(value, tuple) and len(value) == 7):
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError('write the days and their hours, like office_hours: {mon-fri: "08:00-16:30"}')
    week: list[tuple[time, time] | None] = [None] * 7
    for spec, hours in value.items():
        match = _HOURS.fullmatch(str(hours))
        opens, closes = (parse_clock(match.group(1)), parse_clock(match.group(2))) if match else (None, None)
        if opens is None or closes is None:
            raise ValueError(f"{spec}: {hours!r} is not opening hours: write them like \"08:00-16:30\"")
        if opens >= closes:
            raise ValueError(f"{spec}: {hours!r} closes before it opens (hours must end on the same day)")
        for day in _days(spec):
            if week[day] is not None:
                raise ValueError(f"{spec}: {DAYS[day]} is given hours twice")
            week[day] = (opens, closes)
    return tuple(week)


def describe_hours(week: Hours) -> str:
    """Opening hours as a person reads them: `mon-fri 08:00-16:30, sat 09:00-12:00`."""
    parts: list[str] = []
    day = 0
    while day < 7:
        hours, last = week[day], day
        while last + 1 < 7 and week[last + 1] == hours:
            last += 1
        if hours is not None:
            days = DAYS[day] if last == day else f"{DAYS[day]}-{DAYS[last]}"
            parts.append(f"{days} {hours[0]:%H:%M}-{hours[1]:%H:%M}")
        day = last + 1
    return ", ".join(parts) or "closed every day"


OfficeHours = Annotated[Hours | None, BeforeValidator(_office_hours)]


class StaffMember(_Strict):
    """A staff directory entry: a name, and a mobile when a chat profile has none; SMS and email go only from here."""

    name: str | None = None
    mobile: str | None = None
    email: Annotated[str | None, AfterValidator(_email)] = None


# The cards a visitor can leave when nobody answers (Tees Valley 2.2-2.3).
CARDS = ("contact", "appointment", "message")
Card = Literal["contact", "appointment", "message"]


class NobodyHome(_Strict):
    """What a visitor does when nobody answers: which card to leave, and when the case is referred on.

    The nth no-answer in a row for a family (no visit answered in between) leaves the nth card of the
    sequence for its kind of visit (the last card once the sequence runs out); from `refer_after` on,
    each no-answer is referred to `refer_to`. Tees Valley's sequence is the default."""

    # 2.2: "If there is no reply, put a contact card through the letterbox."
    unplanned_cards: list[Card] = Field(default_factory=lambda: ["contact"], min_length=1)
    # 2.3: "not in for a visit, put a new appointment card ...; not in for second visit, leave a message card".
    planned_cards: list[Card] = Field(default_factory=lambda: ["appointment", "message"], min_length=1)
    refer_after: int = Field(default=2, ge=1)
    # 2.3: "If visit is not made, refer back to Team Leader or Head Teacher/Head of Academy."
    refer_to: list[str] = Field(default_factory=lambda: ["team_leader", "head"], min_length=1)

    @field_validator("refer_to")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        allowed = [*CHANNEL_AUDIENCES, *ROLE_AUDIENCES]
        unknown = [a for a in value if a not in allowed]
        if unknown:
            raise ValueError(f"unknown audience {unknown[0]!r}: use {', '.join(allowed)}")
        return value


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
    # Where the school's staff are: channels and people are Slack ids, or Google Chat spaces and users.
    platform: Literal["slack", "google_chat"] = "slack"
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
    # When the office (its channel, its tier) is there to answer; unset: always. Out of these hours a
    # tier naming the office goes to `cover` as well (audiences as the ladder names them, e.g. [dsl]).
    office_hours: OfficeHours = None
    cover: list[str] = Field(default_factory=list)
    ack_pause: Duration = timedelta(minutes=15)
    repeat_interval: Duration = timedelta(minutes=15)
    delivery_fallback_after: Duration = timedelta(seconds=60)
    # GOV.UK Notify: with it, an alert chat has not delivered within delivery_fallback_after also goes by SMS.
    notify: Notify | None = None
    # A tier nobody has acknowledged this long after it fired also goes by SMS to its people (needs notify).
    sms_after: Duration | None = None
    record_deadline: Duration = timedelta(hours=24)
    nobody_home: NobodyHome = NobodyHome()
    retention: Duration = timedelta(days=365)
    safety_checklist: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKLIST))
    # Who sees the office board lines (out, back, extended, safe); Hampton: "the office and the HoS".
    board: list[str] = Field(default_factory=lambda: ["office"], min_length=1)
    staff: dict[PersonId, StaffMember] = Field(default_factory=dict)
    # Google Chat only: where /confidential conversations go when the administrator has not approved
    # app-created spaces (Hampton: "A Google chat is set up with a member of the ELT").
    confidential_fallback_space: Annotated[str, AfterValidator(_chat_space)] | None = None

    @field_validator("safety_checklist", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        for line in value if isinstance(value, list) else ():
            if isinstance(line, dict):
                raise ValueError(f"the line {yaml.safe_dump(line, default_flow_style=True).strip()[1:-1]!r} reads as a setting: a line containing ': ' must be in quotes")
        return value

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

    @field_validator("sweep_interval", "repeat_interval", "ack_pause", "max_visit_length", "record_deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than zero")
        return value

    @field_validator("sweep_interval")
    @classmethod
    def _prompt_sweep(cls, value: timedelta) -> timedelta:
        if value > MAX_SWEEP_INTERVAL:
            raise ValueError(f"must be {int(MAX_SWEEP_INTERVAL.total_seconds())}s or less: an alert can be up to one sweep interval late (keep 15s)")
        return value

    @field_validator("checkin_interval")
    @classmethod
    def _positive_or_off(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be more than zero, or left out to switch check-ins off")
        return value

    @field_validator("cover")
    @classmethod
    def _cover_audiences(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and info.data.get("office_hours") is None and "office_hours" not in info.data:
            return value  # office_hours itself is wrong: that error is the one to read
        if value and info.data.get("office_hours") is None:
            raise ValueError('cover is set but office_hours is not, so the office counts as always open: add office_hours, like {mon-fri: "08:00-16:30"}')
        try:
            if value:
                Tier(after=timedelta(0), notify=value)  # whatever a tier may notify, the cover may be
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        for audience in value:
            if audience.rpartition(":")[2] in ("office", *PERSON_AUDIENCES):
                raise ValueError(f"{audience!r} cannot cover for the office: name who takes its place out of hours, like [dsl] or [safeguarding]")
        return value

    def office_open(self, at: datetime) -> bool:
        """Whether the office is there to answer at `at` (always, when the policy gives no office_hours)."""
        if self.office_hours is None:
            return True
        local = at.astimezone(self.tz)
        hours = self.office_hours[local.weekday()]
        return hours is not None and hours[0] <= local.time().replace(tzinfo=None) < hours[1]

    def off_duty(self, audience: str, at: datetime) -> bool:
        """Whether an audience of a tier is off duty at `at`: the office (by any channel) out of its hours."""
        return audience.rpartition(":")[2] == "office" and not self.office_open(at)

    @property
    def tz(self) -> ZoneInfo:
        """The school's time zone."""
        return ZoneInfo(self.timezone)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message is one line naming the key."""


def _where(loc: tuple[Any, ...]) -> str:
    """A key path as a person reads it, positions counted from 1: `escalation tier 2, after`."""
    out = ""
    previous: Any = None
    for index, part in enumerate(loc):
        # A bad mapping key is named in the message itself, not in the path.
        if part == "[key]" or loc[index + 1 : index + 2] == ("[key]",):
            continue
        if isinstance(part, int):
            out += f" {'tier' if previous == 'escalation' else 'item'} {part + 1}"
        else:
            out += (", " if isinstance(previous, int) else ".") + str(part) if out else str(part)
        previous = part
    return out or "(top level)"


# The settings each nested mapping allows, for "did you mean" on a misspelt key.
def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    names = [part for part in loc[:-1] if isinstance(part, str) and part != "[key]"]
    model: type[BaseModel] = Policy
    if names[:1] == ["staff"]:
        model = StaffMember
    elif names:
        model = {
            "channels": Channels, "roles": Roles, "approvals": Approvals,
            "visiting_hours": VisitingHours, "escalation": Tier, "notify": Notify, "nobody_home": NobodyHome,
        }.get(names[0], Policy)
        if names[0] == "approvals" and len(names) > 1:
            model = ApprovalRule
    return list(model.model_fields)


def _first_error(exc: ValidationError) -> str:
    # A misspelt key also makes the key it should have been look missing: name the misspelling first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    key = _where(tuple(error["loc"]))
    message = ": " + error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = ": is required"
    elif error["type"] == "extra_forbidden":
        unknown = str(error["loc"][-1])
        near = difflib.get_close_matches(unknown, _known_keys(tuple(error["loc"])), n=1, cutoff=0.6)
        message = f" is not a known setting: did you mean {near[0]!r}?" if near else " is not a known setting (check the spelling)"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{key}{message}{suffix}"


def _nobody_holds(policy: Policy) -> str | None:
    """The first role an approval rule, a ladder tier or the board needs but that holds nobody."""
    rules = {
        "approvals": policy.approvals,
        "approvals.senior_leader_own_visit": policy.approvals.senior_leader_own_visit,
        "approvals.emergency": policy.approvals.emergency,
    }
    for where, rule in rules.items():
        for slot in rule.slots() if rule else ():
            for role in slot:
                if not policy.roles.holders(role):
                    return f"{where}: the role {role.value!r} holds nobody, so no visit could be approved: add a user id under roles.{role.value}"
    for number, tier in enumerate(policy.escalation, start=1):
        for audience in tier.notify:
            if audience in ROLE_AUDIENCES and not policy.roles.holders(audience):
                return f"escalation tier {number}: the role {audience!r} holds nobody, so this tier would alert no one in it: add a user id under roles.{audience}"
            texted = _text_audience_problem(policy, audience)
            if texted:
                return f"escalation tier {number}: {texted}"
    if policy.sms_after is not None and policy.notify is None:
        return "sms_after: needs a notify: section with the sms_template id (GOV.UK Notify sends the SMS)"
    for audience in policy.board:
        if audience in ROLE_AUDIENCES and not policy.roles.holders(audience):
            return f"board: the role {audience!r} holds nobody: add a user id under roles.{audience}"
    refer_to = policy.nobody_home.refer_to
    if not any(a in CHANNEL_AUDIENCES or policy.roles.holders(a) for a in refer_to):
        return f"nobody_home.refer_to: none of {', '.join(refer_to)} holds anybody, so a family never answering would be referred to no one: add a user id under roles.{refer_to[0]}"
    return None


def _text_audience_problem(policy: Policy, audience: str) -> str | None:
    """Why a tier's `sms:`/`email:` audience could not reach its people, or None."""
    texted = text_audience(audience)
    if texted is None:
        return None
    kind, role = texted
    template = "sms_template" if kind == "sms" else "email_template"
    if policy.notify is None or getattr(policy.notify, template) is None:
        return f"{audience!r} needs notify.{template}, the GOV.UK Notify template id to send it with"
    if not policy.roles.holders(role):
        return f"the role {role.value!r} holds nobody, so {audience!r} would reach no one: add a user id under roles.{role.value}"
    field = "mobile" if kind == "sms" else "email"
    for user in policy.roles.holders(role):
        entry = policy.staff.get(user)
        if entry is None or not getattr(entry, field):
            return f"{audience!r} reaches {user}, who has no {field} in the staff directory: add staff.{user}.{field}"
# A Monday (any will do): the check walks one week of visits due back, minute by minute, in the school's zone.
_A_MONDAY = date(2026, 1, 5)


def _nobody_on_duty(policy: Policy) -> str | None:
    """The first tier that, for a visit due back within visiting_hours, would reach nobody on duty."""
    for audience in policy.cover:
        role = audience.rpartition(":")[2]
        if role in ROLE_AUDIENCES and not policy.roles.holders(role):
            return f"cover: the role {role!r} holds nobody, so nobody would take the office's place: add a user id under roles.{role}"
    if policy.office_hours is None or policy.cover:
        return None  # with a cover, a tier whose office is closed reaches the cover too
    responders = [(n, t) for n, t in enumerate(policy.escalation, start=1) if any(a not in PERSON_AUDIENCES for a in t.notify)]
    start, end = policy.visiting_hours.start, policy.visiting_hours.end
    minutes = range(start.hour * 60 + start.minute, end.hour * 60 + end.minute + 1)
    for offset in range(7):
        day = _A_MONDAY + timedelta(days=offset)
        for minute in minutes:
            due = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=policy.tz)
            for number, tier in responders:
                at = due + tier.after
                if all(a in PERSON_AUDIENCES or policy.off_duty(a, at) for a in tier.notify):
                    when = at.astimezone(policy.tz)
                    return (
                        f"escalation tier {number} ({', '.join(tier.notify)}) would reach nobody on duty at {when:%H:%M} on a"
                        f" {when:%A} (a visit due back at {due:%H:%M}, within visiting_hours), because the office is closed then"
                        f" (office_hours {describe_hours(policy.office_hours)}): name who takes the office's place out of hours,"
                        " like cover: [dsl]"
                    )
    return None


def parse_policy(data: Any, source: str = "policy", example: bool = False) -> Policy:
    """Validate already-parsed YAML data; raise PolicyError with one line naming the key.

    `example` accepts the examples' *_CHANGE_ME placeholder ids, for trying an example only."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the file must be a YAML mapping of settings")
    try:
        # The platform decides which id shapes the channels, roles and staff must have.
        platform = data.get("platform") if data.get("platform") in ("slack", "google_chat") else "slack"
        policy = Policy.model_validate(data, context={"example": example, "platform": platform})
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_first_error(exc)}") from None
    unstaffed = _nobody_holds(policy) or _nobody_on_duty(policy)
    if unstaffed:
        raise PolicyError(f"{source}: {unstaffed}")
    return policy


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise _DuplicateKey(problem=f"{key!r} is written twice (lines {seen[key]} and {line}): keep one", problem_mark=key_node.start_mark)
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


# PyYAML's words for the commonest slips, and what to do about each.
_YAML_HINTS = {
    "mapping values are not allowed here": "a value containing ': ' must be in quotes",
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "did not find expected ',' or ']'": "a [list] is not closed with ]",
    "expected ',' or ']'": "a [list] is not closed with ]",
    "did not find expected ',' or '}'": "a {mapping} is not closed with }",
    "found unexpected end of stream": "a quote is not closed",
    "did not find expected key": "the indentation is off, or a list item is missing its '- '",
    "found undefined alias": "'*' starts an alias in YAML: put the value in quotes",
}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with the YAML, where, and the fix when it is a common slip."""
    if isinstance(exc, _DuplicateKey):
        return f"{exc.problem}"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot be read"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    hint = next((fix for words, fix in _YAML_HINTS.items() if problem.startswith(words)), None)
    return f"not valid YAML{where}: {problem}" + (f" ({hint})" if hint else "")


def load_policy(path: str | Path, example: bool = False) -> Policy:
    """Read and validate a policy YAML file (`example`: accept the examples' placeholder ids)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file (set VISITSAFE_CONFIG, or copy one from examples/policies/)") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: {_yaml_problem(exc)}") from None
    return parse_policy(data, str(path), example=example)
