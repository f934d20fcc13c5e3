"""The risk rules of the policies: who may not be visited, when a companion is needed, the risk level."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from flows.policy import Policy
from flows.request import RiskAnswers, VisitDetails, outside_hours


class Flag(str, Enum):
    """Register flags on an address or family."""

    dont_visit_alone = "dont_visit_alone"
    meet_on_premises = "meet_on_premises"
    under_review = "under_review"


@dataclass(frozen=True)
class RegisterEntry:
    """One flag on the register (address or family), with who set it and why."""

    flag: Flag
    reason: str
    author: str


# A UK postcode anywhere in an address (outward code, optional space, inward code).
POSTCODE = re.compile(r"\b([a-z]{1,2}[0-9][a-z0-9]?)\s*([0-9][a-z]{2})\b")
# Street words people write both ways: the short form is read as the long one, so "Rd" matches "Road".
STREET_WORDS = {
    "rd": "road", "st": "street", "ave": "avenue", "av": "avenue", "ln": "lane", "dr": "drive", "cl": "close",
    "cres": "crescent", "ct": "court", "pl": "place", "gdns": "gardens", "sq": "square", "tce": "terrace",
    "terr": "terrace", "gr": "grove", "pk": "park", "hse": "house",
}


def legacy_address_key(address: str) -> str:
    """The register's address key before postcodes were read: letters and digits only, lower case."""
    return re.sub(r"[^a-z0-9]", "", address.lower())


def address_key(address: str) -> str:
    """A normalised address for register matching, whatever the case, spacing, punctuation or abbreviations.

    With a postcode the key is the postcode and the house and flat numbers ("12 Example Rd, OX2 9AA" matches
    "12, example road, botley, ox29aa"); without one, the words (short street words read as long) run together.
    """
    text = address.lower()
    found = POSTCODE.search(text)
    if found:
        rest = text[: found.start()] + " " + text[found.end():]
        numbers = [token for token in re.split(r"[^a-z0-9]+", rest) if any(ch.isdigit() for ch in token)]
        return f"pc:{found.group(1)}{found.group(2)}:{','.join(numbers)}"
    return "".join(STREET_WORDS.get(token, token) for token in re.split(r"[^a-z0-9]+", text))


def family_key(pupil_ref: str) -> str:
    """A normalised family or pupil reference for register matching: letters and digits, upper case."""
    return re.sub(r"[^A-Z0-9]", "", pupil_ref.upper())


@dataclass(frozen=True)
class Refusal:
    """A request the rules do not allow; `field` is where the form shows `message`."""

    field: str
    message: str


@dataclass(frozen=True)
class RiskAssessment:
    """What the rules concluded about one request."""

    level: str  # low / raised / high
    refusal: Refusal | None = None
    companion_reasons: tuple[str, ...] = ()
    reminders: tuple[str, ...] = ()
    head_reasons: tuple[str, ...] = ()
    concerns: tuple[str, ...] = field(default=())


ELSEWHERE = "Offer a meeting at school or another venue instead."


def assess(
    details: VisitDetails,
    answers: RiskAnswers,
    register: list[RegisterEntry],
    policy: Policy,
    requester: str,
) -> RiskAssessment:
    """Apply the policy's risk rules to a request."""
    flags = {entry.flag for entry in register}
    if answers.violence_known or answers.violent_person_present:
        return RiskAssessment(
            "high",
            Refusal(
                "violence_known" if answers.violence_known else "violent_person_present",
                f"No home visit where violence is known or a violent person is likely present. {ELSEWHERE}",
            ),
        )
    if Flag.meet_on_premises in flags:
        return RiskAssessment(
            "high",
            Refusal("pupil_ref", f"This family or address is on the register as 'meet on premises only'. {ELSEWHERE}"),
        )
    if Flag.under_review in flags:
        return RiskAssessment(
            "high",
            Refusal(
                "pupil_ref",
                "This family or address is under review after an incident: no visit until the DSL has reviewed it.",
            ),
        )

    companion_reasons: list[str] = []
    if policy.pairs_required:
        companion_reasons.append("the school's policy is that visits are made in pairs")
    if Flag.dont_visit_alone in flags:
        companion_reasons.append("the family or address is on the 'don't visit alone' register")
    if answers.family_new:
        companion_reasons.append("the family is new or little known")
    if details.reason == "transport":
        companion_reasons.append("a child being transported needs a second adult in the car")

    reminders: list[str] = []
    concerns: list[str] = []
    if answers.animals:
        reminders.append("Animals at the home: ask for them to be kept out of the room; leave if concerned.")
        concerns.append("animals")
    if answers.interpreter:
        reminders.append("An interpreter is needed: give them enough notice of the visit.")
        concerns.append("interpreter")
    if answers.other_agencies:
        reminders.append("Other agencies are involved: check with them before the visit.")
        concerns.append("other agencies")
    if answers.special_needs:
        reminders.append("Special needs in the family: plan the visit around them.")
        concerns.append("special needs")
    if not answers.allergies_checked:
        reminders.append("Check your allergies with the home before you go.")
        concerns.append("allergies not checked")
    if answers.other_concerns:
        concerns.append("other concern noted")
    if answers.family_new:
        concerns.append("family new or little known")
    if not details.planned:
        concerns.append("unplanned visit")

    head_reasons: list[str] = []
    if outside_hours(details, policy) and policy.outside_hours == "head_approval":
        head_reasons.append("outside the visiting hours")
        concerns.append("outside visiting hours")
    if details.commute and policy.commute_visits == "head_approval":
        head_reasons.append("on the way to or from work")

    if Flag.dont_visit_alone in flags or len(concerns) >= 3:
        level = "high"
    elif concerns:
        level = "raised"
    else:
        level = "low"

    refusal = None
    if companion_reasons and not answers.companions:
        refusal = Refusal("companions", f"A companion is required: {companion_reasons[0]}.")
    elif requester in answers.companions:
        refusal = Refusal("companions", "You cannot be your own companion: choose a colleague.")
    return RiskAssessment(
        level, refusal, tuple(companion_reasons), tuple(reminders), tuple(head_reasons), tuple(concerns)
    )
