"""Validation of the two request steps, field by field, as the form shows it."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from flows.request import FieldErrors, RiskAnswers, outside_hours, validate_details, validate_risk
from tests.conftest import COMPANION, MONDAY_9AM, make_policy
from tests.factories import details_raw, make_details


def errors_for(raw: dict, now: datetime = MONDAY_9AM, **policy_changes) -> dict[str, str]:
    """The messages the form would show beside each field."""
    with pytest.raises(FieldErrors) as caught:
        validate_details(raw, now, make_policy(**policy_changes))
    return caught.value.errors


# A valid request ------------------------------------------------------------------


def test_a_complete_request_is_accepted_with_typed_values():
    details = validate_details(details_raw(), MONDAY_9AM, make_policy())
    assert details.pupil_ref == "AB123"
    assert details.date == date(2026, 11, 23)
    assert details.start_time == time(10, 0)
    assert details.duration == timedelta(minutes=45)
    assert details.planned is True


def test_start_at_is_in_the_school_time_zone():
    policy = make_policy()
    summer = make_details(date="2026-06-01", start_time="10:00")
    assert summer.start_at(policy) == datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def test_duration_serialises_the_way_it_is_typed():
    assert make_details(duration="1h30m").model_dump()["duration"] == "1h30m"


# Phone ----------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["01632 960123", "+44 7700 900123", "(01632) 960-123", "07700.900123", "1234567"])
def test_plausible_phone_numbers_are_accepted(phone):
    assert validate_details(details_raw(contact_phone=phone), MONDAY_9AM, make_policy()).contact_phone == phone


def test_phone_is_stored_without_surrounding_spaces():
    assert validate_details(details_raw(contact_phone="  01632 960123 "), MONDAY_9AM, make_policy()).contact_phone == "01632 960123"


@pytest.mark.parametrize(
    "phone",
    [
        "123456",  # 6 digits: too short
        "1234567890123456",  # 16 digits: too long
        "call the office",
        "01632 960123 ext 4",
        "07700#900123",
    ],
)
def test_implausible_phone_numbers_are_refused_beside_the_field(phone):
    errors = errors_for(details_raw(contact_phone=phone))
    assert errors == {"contact_phone": "enter a phone number of 7 to 15 digits, like 01632 960123"}


# Duration -------------------------------------------------------------------------


def test_duration_of_eight_hours_is_the_longest_allowed():
    raw = details_raw(start_time="09:00", duration="8h")
    assert validate_details(raw, MONDAY_9AM, make_policy(outside_hours="head_approval")).duration == timedelta(hours=8)


def test_duration_over_eight_hours_is_refused():
    errors = errors_for(details_raw(duration="8h1m"), outside_hours="head_approval")
    assert errors == {"duration": "a visit can last at most 8h; split a longer day into visits"}


@pytest.mark.parametrize("duration", ["0m", "0s"])
def test_zero_duration_is_refused(duration):
    assert errors_for(details_raw(duration=duration)) == {"duration": "the visit must last more than zero minutes"}


@pytest.mark.parametrize("duration", ["45x", "an hour", "1.5h"])
def test_unreadable_duration_is_refused_with_an_example(duration):
    assert errors_for(details_raw(duration=duration)) == {"duration": "enter how long, like 45m or 1h30m"}


# Required fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["pupil_ref", "address", "contact_phone", "reason", "visit_type", "planned", "date", "start_time",
     "duration", "travel_mode", "travel_details", "parents_informed"],
)
def test_a_missing_field_says_this_is_required(field):
    raw = details_raw()
    del raw[field]
    assert errors_for(raw) == {field: "this is required"}


@pytest.mark.parametrize("field", ["pupil_ref", "address", "contact_phone", "travel_details", "duration", "date"])
def test_an_empty_field_says_this_is_required(field):
    assert errors_for(details_raw(**{field: ""}))[field] == "this is required"


def test_every_bad_field_is_reported_at_once():
    errors = errors_for(details_raw(pupil_ref="", contact_phone="nope", reason="shopping"))
    assert errors == {
        "pupil_ref": "this is required",
        "contact_phone": "enter a phone number of 7 to 15 digits, like 01632 960123",
        "reason": "choose one of the options",
    }


@pytest.mark.parametrize("field, value", [("reason", "shopping"), ("visit_type", "garden"), ("travel_mode", "horse")])
def test_an_unknown_choice_asks_to_choose_an_option(field, value):
    assert errors_for(details_raw(**{field: value})) == {field: "choose one of the options"}


# Reason "other" -------------------------------------------------------------------


def test_reason_other_needs_reason_other():
    assert errors_for(details_raw(reason="other")) == {"reason_other": "say what the visit is for"}


def test_reason_other_with_only_spaces_is_still_missing():
    assert errors_for(details_raw(reason="other", reason_other="   ")) == {"reason_other": "say what the visit is for"}


def test_reason_other_with_a_reason_is_accepted():
    details = validate_details(details_raw(reason="other", reason_other="Return a lost coat"), MONDAY_9AM, make_policy())
    assert details.reason_other == "Return a lost coat"


# Parents not informed -------------------------------------------------------------


def test_planned_visit_with_parents_not_informed_needs_a_reason():
    errors = errors_for(details_raw(planned=True, parents_informed=False))
    assert errors == {"parents_not_informed_reason": "say why parents were not told in advance"}


def test_planned_visit_with_parents_not_informed_and_a_reason_is_accepted():
    raw = details_raw(planned=True, parents_informed=False, parents_not_informed_reason="No working number")
    assert validate_details(raw, MONDAY_9AM, make_policy()).parents_not_informed_reason == "No working number"


def test_unplanned_visit_with_parents_not_informed_needs_no_reason():
    raw = details_raw(planned=False, reason="welfare", parents_informed=False)
    details = validate_details(raw, MONDAY_9AM, make_policy())
    assert details.planned is False
    assert details.parents_not_informed_reason is None


# Date -----------------------------------------------------------------------------


def test_date_in_the_past_is_refused():
    assert errors_for(details_raw(date="2026-11-22")) == {"date": "that date has passed"}


def test_today_and_later_dates_are_accepted():
    policy = make_policy()
    assert validate_details(details_raw(date="2026-11-23"), MONDAY_9AM, policy).date == date(2026, 11, 23)
    assert validate_details(details_raw(date="2026-11-30"), MONDAY_9AM, policy).date == date(2026, 11, 30)


def test_today_is_the_school_date_not_the_utc_date():
    # 23:30 UTC on Monday 1 June 2026 is 00:30 on Tuesday in London: Monday has passed.
    late_night = datetime(2026, 6, 1, 23, 30, tzinfo=timezone.utc)
    assert errors_for(details_raw(date="2026-06-01"), now=late_night) == {"date": "that date has passed"}
    assert validate_details(details_raw(date="2026-06-02"), late_night, make_policy()).date == date(2026, 6, 2)


# Visiting hours -------------------------------------------------------------------


HOURS_MESSAGE = "visits must start after 08:00 and be over by 17:30 (school policy: no evening visits)"


@pytest.mark.parametrize(
    "start_time, duration",
    [
        ("07:30", "45m"),  # starts before the window
        ("17:00", "45m"),  # runs past the end
        ("19:00", "30m"),  # the evening
        ("23:30", "1h"),  # runs past midnight
    ],
)
def test_outside_visiting_hours_is_refused_under_refuse(start_time, duration):
    errors = errors_for(details_raw(start_time=start_time, duration=duration), outside_hours="refuse")
    assert errors == {"start_time": HOURS_MESSAGE}


@pytest.mark.parametrize("start_time, duration", [("08:00", "45m"), ("16:45", "45m"), ("09:30", "8h")])
def test_visits_inside_the_window_including_its_edges_are_accepted(start_time, duration):
    raw = details_raw(start_time=start_time, duration=duration, date="2026-11-24")
    assert validate_details(raw, MONDAY_9AM, make_policy(outside_hours="refuse")).start_time.strftime("%H:%M") == start_time


@pytest.mark.parametrize("start_time, duration", [("07:30", "45m"), ("17:00", "45m"), ("19:00", "30m")])
def test_outside_visiting_hours_is_allowed_under_head_approval(start_time, duration):
    raw = details_raw(start_time=start_time, duration=duration, date="2026-11-24")
    details = validate_details(raw, MONDAY_9AM, make_policy(outside_hours="head_approval"))
    assert outside_hours(details, make_policy(outside_hours="head_approval"))


def test_the_hours_message_names_the_policy_window():
    errors = errors_for(
        details_raw(start_time="08:30"),
        visiting_hours={"start": "09:00", "end": "15:00"},
        outside_hours="refuse",
    )
    assert errors["start_time"].startswith("visits must start after 09:00 and be over by 15:00")


def test_a_start_time_already_passed_today_is_refused():
    assert errors_for(details_raw(start_time="08:15")) == {
        "start_time": "that time has already passed today: give the time you will actually set off"
    }


def test_a_start_time_just_passed_is_accepted_for_an_urgent_visit():
    assert validate_details(details_raw(start_time="08:45"), MONDAY_9AM, make_policy()).start_time.hour == 8


# Commute --------------------------------------------------------------------------


def test_commute_visit_is_refused_under_refuse():
    errors = errors_for(details_raw(commute=True), commute_visits="refuse")
    assert errors == {"commute": "this school's policy does not allow visits on the way to or from work"}


@pytest.mark.parametrize("rule", ["head_approval", "allowed"])
def test_commute_visit_is_accepted_otherwise(rule):
    assert validate_details(details_raw(commute=True), MONDAY_9AM, make_policy(commute_visits=rule)).commute is True


def test_policy_errors_are_reported_together():
    raw = details_raw(date="2026-11-22", commute=True, reason="other", start_time="18:00")
    errors = errors_for(raw, commute_visits="refuse", outside_hours="refuse")
    assert set(errors) == {"date", "commute", "reason_other", "start_time"}


# Step 2: risk answers -------------------------------------------------------------


def test_validate_risk_defaults_to_no_risks_and_allergies_checked():
    answers = validate_risk({})
    assert answers == RiskAnswers()
    assert answers.allergies_checked is True
    assert answers.companions == ()


def test_validate_risk_reads_the_answers():
    answers = validate_risk(
        {"family_new": True, "animals": True, "other_agencies": "Social care", "allergies_checked": False,
         "companions": [COMPANION]}
    )
    assert answers.family_new and answers.animals
    assert answers.other_agencies == "Social care"
    assert answers.allergies_checked is False
    assert answers.companions == (COMPANION,)


def test_validate_risk_reports_a_bad_answer_beside_its_field():
    with pytest.raises(FieldErrors) as caught:
        validate_risk({"violence_known": "perhaps"})
    assert list(caught.value.errors) == ["violence_known"]


def test_validate_risk_refuses_an_over_long_concern():
    with pytest.raises(FieldErrors) as caught:
        validate_risk({"other_concerns": "x" * 1001})
    assert "other_concerns" in caught.value.errors


def test_validate_risk_refuses_an_unknown_answer():
    with pytest.raises(FieldErrors) as caught:
        validate_risk({"weapons": True})
    assert list(caught.value.errors) == ["weapons"]
