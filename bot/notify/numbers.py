"""Staff mobiles parsed and checked with phonenumbers (UK by default), written E.164 for GOV.UK Notify."""
from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from flows.policy import Policy

DEFAULT_REGION = "GB"
# Ofcom keeps 07700 900000-900999 for drama and examples; Notify accepts them, phonenumbers calls them invalid.
OFCOM_DRAMA = "7700900"
HOW_TO_WRITE = "write it like 07700 900123, or +44 7700 900123 for any country"
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}
SMS_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class BadNumber(ValueError):
    """A number that cannot be texted; the message says why, without the number."""


def e164(number: str, mobile: bool = True) -> str:
    """The number in E.164 (+447700900123); raise BadNumber saying why (never repeating the number)."""
    try:
        parsed = phonenumbers.parse(number, DEFAULT_REGION)
    except NumberParseException as exc:
        raise BadNumber(_PARSE_REASONS.get(exc.error_type, "it cannot be read as a phone number")) from None
    drama = parsed.country_code == 44 and str(parsed.national_number).startswith(OFCOM_DRAMA) and len(str(parsed.national_number)) == 10
    if not drama:
        if not phonenumbers.is_valid_number(parsed):
            possible = phonenumbers.is_possible_number_with_reason(parsed)
            why = {
                phonenumbers.ValidationResult.TOO_SHORT: "it has too few digits",
                phonenumbers.ValidationResult.TOO_LONG: "it has too many digits",
            }.get(possible, "no such number exists in its country")
            raise BadNumber(why)
        if mobile and phonenumbers.number_type(parsed) not in SMS_TYPES:
            raise BadNumber("it is not a mobile number, so it cannot receive an SMS")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def bad_mobiles(policy: Policy) -> list[str]:
    """One line per staff mobile that cannot be texted, naming the key (the number itself is never repeated)."""
    problems = []
    for user, entry in policy.staff.items():
        if not entry.mobile:
            continue
        try:
            e164(entry.mobile)
        except BadNumber as exc:
            problems.append(f"staff.{user}.mobile: not a number VisitSafe can text ({exc}): {HOW_TO_WRITE}")
    return problems
