"""Every neutral form (bot/forms.py) drawn as a Block Kit modal that Slack accepts, and its answers read back."""
from __future__ import annotations

import json
from datetime import date

import pytest

from bot import forms
from bot.simslack.driver import _state
from bot.slack import forms as slack_forms

# Slack's documented limits for modals and their input blocks.
TITLE, BUTTON, LABEL, HINT, PLACEHOLDER, OPTION_TEXT, OPTION_VALUE = 24, 24, 2000, 2000, 150, 75, 150
MAX_BLOCKS, MAX_METADATA, MAX_TEXT_INPUT, MAX_CALLBACK_ID, MAX_ID = 100, 3000, 3000, 255, 255
MAX_OPTIONS = {"static_select": 100, "radio_buttons": 10, "checkboxes": 10}
ELEMENTS = {"plain_text_input", "static_select", "radio_buttons", "checkboxes", "datepicker", "timepicker", "multi_users_select"}

EVERY_FORM = [
    forms.visit_details(date(2025, 3, 4)), forms.visit_risk(7), forms.decline(3), forms.extend(3),
    forms.confirm_safe(3), forms.duress_word(),
    # After the visit, the DSL's side.
    forms.concern(3, "Child alone"), forms.register_add(), forms.register_clear(4), forms.referral(3, date(2025, 3, 4)),
    forms.share(3, date(2025, 3, 4)),
]
# After the visit (issue 14): the forms behind the outcome buttons.
EVERY_FORM += [
    forms.nobody_home(3, suggested="appointment", intro="The policy asks for an *appointment card*."), forms.concern_report(3),
    forms.incident_report(3), forms.left_unsafe_report(3), forms.allegation_report(3),
]


def test_every_form_the_app_submits_is_listed_by_its_callback_id():
    assert {f.callback_id for f in EVERY_FORM} == set(forms.BY_CALLBACK)
    for form in EVERY_FORM:
        assert [f.name for f in forms.form_for(form.callback_id).fields] == [f.name for f in form.fields]
    assert forms.form_for("nope") is None


def _plain(obj: dict, limit: int) -> str:
    assert obj["type"] == "plain_text" and 0 < len(obj["text"]) <= limit, obj
    return obj["text"]


@pytest.mark.parametrize("form", EVERY_FORM, ids=lambda f: f.callback_id)
def test_each_form_renders_to_a_valid_block_kit_modal(form):
    view = slack_forms.modal(form)
    assert view["type"] == "modal" and 0 < len(view["callback_id"]) <= MAX_CALLBACK_ID
    _plain(view["title"], TITLE)
    _plain(view["submit"], BUTTON)
    _plain(view["close"], BUTTON)
    assert len(view["private_metadata"]) <= MAX_METADATA
    assert 0 < len(view["blocks"]) <= MAX_BLOCKS
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    block_ids = [b["block_id"] for b in inputs]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique"
    assert block_ids == [f.name for f in form.fields], "one input per field, named by the field"
    for block in inputs:
        assert 0 < len(block["block_id"]) <= MAX_ID
        _plain(block["label"], LABEL)
        if "hint" in block:
            _plain(block["hint"], HINT)
        element = block["element"]
        assert element["type"] in ELEMENTS
        assert element["action_id"] == slack_forms.A and len(element["action_id"]) <= MAX_ID
        if "placeholder" in element:
            _plain(element["placeholder"], PLACEHOLDER)
        if element["type"] == "plain_text_input":
            assert 0 < element["max_length"] <= MAX_TEXT_INPUT
            assert len(element.get("initial_value", "")) <= element["max_length"]
        if element["type"] in MAX_OPTIONS:
            assert 0 < len(element["options"]) <= MAX_OPTIONS[element["type"]]
            for option in element["options"]:
                _plain(option["text"], OPTION_TEXT)
                assert 0 < len(option["value"]) <= OPTION_VALUE
    json.dumps(view)  # nothing but JSON


def test_the_confirmation_has_no_submit_button():
    view = slack_forms.duress_saved_view()
    assert "submit" not in view and view["close"]["text"] == "Done"
    assert view["blocks"][0]["text"]["text"] == "Saved. Nothing about it is shown anywhere else."


def test_current_values_are_shown_as_slack_initial_values():
    form = forms.filled(forms.visit_risk(7), {"risks": ["animals"], "allergies": "checked", "companions": ["U2"],
                                              "other_concerns": "Dog"})
    elements = {b["block_id"]: b["element"] for b in slack_forms.modal(form)["blocks"]}
    assert [o["value"] for o in elements["risks"]["initial_options"]] == ["animals"]
    assert elements["allergies"]["initial_option"]["value"] == "checked"
    assert elements["companions"]["initial_users"] == ["U2"]
    assert elements["other_concerns"]["initial_value"] == "Dog"
    details = {b["block_id"]: b["element"] for b in slack_forms.details_view(date(2025, 3, 4))["blocks"]}
    assert details["date"]["initial_date"] == "2025-03-04" and details["duration"]["initial_value"] == "45m"


def test_submitted_answers_come_back_by_field_name_in_the_neutral_shape():
    view = slack_forms.risk_view(7)
    view["state"] = {"values": _state(view, {"risks": ["animals"], "other_agencies": "", "allergies": "none",
                                             "other_concerns": "Dog\u202e inside", "companions": ["U2"]})}
    assert slack_forms.values(view) == {
        "risks": ["animals"], "other_agencies": None, "allergies": "none", "other_concerns": "Dog inside", "companions": ["U2"],
    }
