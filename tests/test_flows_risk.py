"""The policies' risk rules: refusals, companions, reminders, the risk level, the head's say-so."""
from __future__ import annotations

import pytest

from flows.risk import Flag, RegisterEntry, address_key, assess, family_key
from tests.conftest import COMPANION, DSL, REQUESTER, make_policy
from tests.factories import make_answers, make_details

NO_PAIRS = make_policy(pairs_required=False)
PAIRS = make_policy(pairs_required=True)


def flag(kind: Flag) -> RegisterEntry:
    return RegisterEntry(kind, "Incident in September", DSL)


def run(details=None, answers=None, register=(), policy=PAIRS, requester=REQUESTER):
    return assess(details or make_details(), answers or make_answers(), list(register), policy, requester)


# Refusals -------------------------------------------------------------------------


def test_a_plain_request_is_not_refused_and_is_low_risk():
    result = run()
    assert result.refusal is None
    assert result.level == "low"
    assert result.reminders == ()
    assert result.head_reasons == ()


def test_known_violence_is_refused_on_that_field_with_an_alternative():
    result = run(answers=make_answers(violence_known=True))
    assert result.level == "high"
    assert result.refusal.field == "violence_known"
    assert "No home visit where violence is known" in result.refusal.message
    assert "meeting at school or another venue" in result.refusal.message


def test_a_violent_person_likely_present_is_refused_on_that_field():
    result = run(answers=make_answers(violent_person_present=True))
    assert result.level == "high"
    assert result.refusal.field == "violent_person_present"
    assert "meeting at school or another venue" in result.refusal.message


def test_violence_refuses_even_a_doorstep_visit_with_a_companion():
    result = run(details=make_details(visit_type="doorstep"), answers=make_answers(violence_known=True, companions=(COMPANION,)))
    assert result.refusal is not None


def test_meet_on_premises_register_flag_is_refused():
    result = run(register=[flag(Flag.meet_on_premises)])
    assert result.level == "high"
    assert result.refusal.field == "pupil_ref"
    assert "'meet on premises only'" in result.refusal.message
    assert "meeting at school or another venue" in result.refusal.message


def test_under_review_register_flag_is_refused_until_the_dsl_reviews():
    result = run(register=[flag(Flag.under_review)])
    assert result.level == "high"
    assert result.refusal.field == "pupil_ref"
    assert "under review" in result.refusal.message
    assert "DSL" in result.refusal.message


# Companions -----------------------------------------------------------------------


def test_no_companion_needed_when_nothing_requires_one():
    result = run(answers=make_answers(companions=()), policy=NO_PAIRS)
    assert result.refusal is None
    assert result.companion_reasons == ()


def test_pairs_required_needs_a_companion():
    result = run(answers=make_answers(companions=()), policy=PAIRS)
    assert result.refusal.field == "companions"
    assert result.refusal.message == "A companion is required: the school's policy is that visits are made in pairs."


@pytest.mark.parametrize(
    "details_changes, answers_changes, register, words",
    [
        ({}, {}, [Flag.dont_visit_alone], "the family or address is on the 'don't visit alone' register"),
        ({}, {"family_new": True}, [], "the family is new or little known"),
        ({"reason": "transport"}, {}, [], "a child being transported needs a second adult in the car"),
    ],
    ids=["dont_visit_alone", "family_new", "transport"],
)
def test_each_rule_requires_a_companion_even_without_pairs(details_changes, answers_changes, register, words):
    result = run(
        details=make_details(**details_changes),
        answers=make_answers(companions=(), **answers_changes),
        register=[flag(f) for f in register],
        policy=NO_PAIRS,
    )
    assert result.companion_reasons == (words,)
    assert result.refusal.field == "companions"
    assert result.refusal.message == f"A companion is required: {words}."


@pytest.mark.parametrize(
    "details_changes, answers_changes, register",
    [({}, {}, [Flag.dont_visit_alone]), ({}, {"family_new": True}, []), ({"reason": "transport"}, {}, [])],
    ids=["dont_visit_alone", "family_new", "transport"],
)
def test_each_rule_is_satisfied_by_a_companion(details_changes, answers_changes, register):
    result = run(
        details=make_details(**details_changes),
        answers=make_answers(companions=(COMPANION,), **answers_changes),
        register=[flag(f) for f in register],
        policy=NO_PAIRS,
    )
    assert result.refusal is None
    assert result.companion_reasons  # kept, so /out still checks the companion


def test_all_companion_reasons_are_kept_in_order():
    result = run(
        details=make_details(reason="transport"),
        answers=make_answers(family_new=True),
        register=[flag(Flag.dont_visit_alone)],
        policy=PAIRS,
    )
    assert result.companion_reasons == (
        "the school's policy is that visits are made in pairs",
        "the family or address is on the 'don't visit alone' register",
        "the family is new or little known",
        "a child being transported needs a second adult in the car",
    )


@pytest.mark.parametrize("policy", [PAIRS, NO_PAIRS], ids=["pairs", "no_pairs"])
def test_the_requester_cannot_be_their_own_companion(policy):
    result = run(answers=make_answers(companions=(REQUESTER,)), policy=policy)
    assert result.refusal.field == "companions"
    assert result.refusal.message == "You cannot be your own companion: choose a colleague."


def test_the_requester_among_other_companions_is_still_refused():
    result = run(answers=make_answers(companions=(COMPANION, REQUESTER)))
    assert result.refusal.message == "You cannot be your own companion: choose a colleague."


# Reminders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers_changes, reminder",
    [
        ({"animals": True}, "Animals at the home: ask for them to be kept out of the room; leave if concerned."),
        ({"interpreter": True}, "An interpreter is needed: give them enough notice of the visit."),
        ({"other_agencies": "Social care"}, "Other agencies are involved: check with them before the visit."),
        ({"allergies_checked": False}, "Check your allergies with the home before you go."),
        ({"special_needs": True}, "Special needs in the family: plan the visit around them."),
    ],
    ids=["animals", "interpreter", "agencies", "allergies", "special_needs"],
)
def test_reminders_are_given_and_do_not_block(answers_changes, reminder):
    result = run(answers=make_answers(**answers_changes))
    assert result.reminders == (reminder,)
    assert result.refusal is None


def test_no_reminders_without_those_answers():
    assert run(answers=make_answers(other_concerns="Dog barks a lot")).reminders == ()


# Risk level -----------------------------------------------------------------------


def test_one_concern_raises_the_level():
    result = run(answers=make_answers(animals=True))
    assert result.level == "raised"
    assert result.concerns == ("animals",)


def test_two_concerns_are_still_raised():
    assert run(answers=make_answers(animals=True, interpreter=True)).level == "raised"


def test_three_concerns_make_it_high():
    result = run(answers=make_answers(animals=True, interpreter=True, other_agencies="CAMHS"))
    assert result.level == "high"
    assert result.concerns == ("animals", "interpreter", "other agencies")


def test_an_unplanned_visit_is_a_concern():
    result = run(details=make_details(planned=False, reason="welfare"))
    assert result.level == "raised"
    assert "unplanned visit" in result.concerns


def test_a_free_text_concern_raises_the_level():
    assert run(answers=make_answers(other_concerns="Neighbour dispute")).level == "raised"


def test_dont_visit_alone_register_makes_it_high_even_with_no_other_concern():
    result = run(register=[flag(Flag.dont_visit_alone)])
    assert result.refusal is None
    assert result.level == "high"


# The head's approval --------------------------------------------------------------


def test_outside_hours_under_head_approval_needs_the_head():
    result = run(details=make_details(start_time="18:00"), policy=make_policy(outside_hours="head_approval"))
    assert result.head_reasons == ("outside the visiting hours",)
    assert "outside visiting hours" in result.concerns
    assert result.refusal is None
    assert result.head_reasons


def test_inside_hours_needs_no_head():
    result = run(details=make_details(start_time="10:00"), policy=make_policy(outside_hours="head_approval"))
    assert result.head_reasons == ()
    assert not result.head_reasons


def test_commute_under_head_approval_needs_the_head():
    result = run(details=make_details(commute=True), policy=make_policy(commute_visits="head_approval"))
    assert result.head_reasons == ("on the way to or from work",)
    assert result.head_reasons


def test_commute_when_allowed_needs_no_head():
    assert run(details=make_details(commute=True), policy=make_policy(commute_visits="allowed")).head_reasons == ()


def test_both_head_reasons_are_listed():
    result = run(
        details=make_details(start_time="07:00", commute=True),
        policy=make_policy(outside_hours="head_approval", commute_visits="head_approval"),
    )
    assert result.head_reasons == ("outside the visiting hours", "on the way to or from work")


# Register keys --------------------------------------------------------------------


def test_address_key_ignores_case_spaces_and_punctuation():
    assert address_key("12 Example Road") == address_key("12, example road") == "12exampleroad"


def test_family_key_ignores_case_and_spaces():
    assert family_key("ab 123") == family_key("AB123") == "AB123"
