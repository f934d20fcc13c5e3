"""Every neutral form (bot/forms.py) drawn as a Google Chat Cards v2 dialog, its submission read back, its errors shown."""
from __future__ import annotations

import json
from datetime import date

import pytest

from bot import forms
from bot.gchat import forms as chat_forms
from bot.simslack.driver import _state
from bot.slack import forms as slack_forms

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
# What a person might submit in each form (one answer per field, in the neutral shape).
ANSWERS = {
    "visit_form_details": {
        "pupil_ref": "JS 4B", "address": "12 Elm Road\nHampton", "contact_phone": "01632 960123", "reason": "welfare",
        "reason_other": None, "visit_type": forms.visit_details().field("visit_type").options[0].value,
        "planned": "planned", "date": "2025-03-04", "start_time": "10:30", "duration": "45m", "travel_mode":
        forms.visit_details().field("travel_mode").options[0].value, "travel_details": "Blue Fiesta AB12 CDE",
        "parents_informed": "no", "parents_not_informed_reason": "No phone number", "commute": ["yes"],
    },
    "visit_form_risk": {
        "risks": ["animals", "interpreter"], "other_agencies": None, "allergies": "checked",
        "other_concerns": "Large dog – keep the gate shut", "companions": ["users/102", "users/103"],
    },
    "visit_decline_reason": {"reason": "Go with a colleague, please."},
    "visit_extend": {"duration": "20m"},
    "alert_safe_note": {"note": "Spoke to Sam on the phone at 11:05"},
    "duress_word": {"word": "pineapple"},
    "concern_form": {"concern": "Child alone at home – no adult answered"},
    "register_add_form": {"address": "12 Elm Road\nHampton TW12 1AA", "pupil_ref": "JS 4B", "flag": "under_review", "reason": "Threats"},
    "register_clear_form": {"note": "Reviewed at the meeting"},
    "record_referral_form": {"agency": "Early Help", "referred_on": "2025-03-04", "consent": "yes", "follow_up_on": "2025-03-11", "notes": None},
    "record_share_form": {"shared_with": ["users/102"], "shared_on": "2025-03-04", "why": "Head asked"},
}
ANSWERS.update({
    "outcome_form_nobody_home": {"card": "message"},
    "outcome_form_concern": {"what": "Sibling (8) at home alone at 10:30", "child_seen": "no"},
    "outcome_form_incident": {"what": "Shouted at on the doorstep", "injuries": "none", "abuse": "yes", "police": "no"},
    "outcome_form_left_unsafe": {"why": "Two men arguing inside; I left"},
    "outcome_form_allegation": {"about": "the visitor", "what": "Parent says I was rude"},
})
INPUTS = ("textInput", "selectionInput", "dateTimePicker")


def _widgets(response: dict) -> list[dict]:
    body = response["actionResponse"]["dialogAction"]["dialog"]["body"]
    return [w for section in body["sections"] for w in section["widgets"]]


def _input(widget: dict) -> dict | None:
    return next((widget[k] for k in INPUTS if k in widget), None)


def _shown(response: dict) -> dict:
    """The value each input shows, as a person sees it filled in (the neutral shape)."""
    shown = {}
    for widget in _widgets(response):
        if "textInput" in widget:
            shown[widget["textInput"]["name"]] = widget["textInput"].get("value")
        elif "selectionInput" in widget:
            w = widget["selectionInput"]
            chosen = [i["value"] for i in w.get("items", []) if i.get("selected")]
            multi = w["type"] in ("CHECK_BOX", "MULTI_SELECT")
            shown[w["name"]] = chosen if multi else (chosen[0] if chosen else None)
        elif "dateTimePicker" in widget:
            w = widget["dateTimePicker"]
            ms = int(w["valueMsEpoch"]) if "valueMsEpoch" in w else None
            if ms is None:
                shown[w["name"]] = None
            elif w["type"] == "DATE_ONLY":
                shown[w["name"]] = date.fromordinal(date(1970, 1, 1).toordinal() + ms // 86_400_000).isoformat()
            else:
                shown[w["name"]] = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}"
    return shown


def test_every_form_has_sample_answers():
    assert set(ANSWERS) == set(forms.BY_CALLBACK)
    for form in EVERY_FORM:
        assert set(ANSWERS[form.callback_id]) == {f.name for f in form.fields}


@pytest.mark.parametrize("form", EVERY_FORM, ids=lambda f: f.callback_id)
def test_each_form_renders_as_a_cards_v2_dialog(form):
    response = chat_forms.dialog(form)
    assert response["actionResponse"]["type"] == "DIALOG"
    body = response["actionResponse"]["dialogAction"]["dialog"]["body"]
    assert body["header"]["title"] == form.title
    widgets = _widgets(response)
    assert 0 < len(widgets) <= 100  # Chat's limit per card
    names = [_input(w)["name"] for w in widgets if _input(w)]
    assert names == [f.name for f in form.fields], "one named input per field, in order"
    for widget in widgets:
        if "selectionInput" in widget:
            w = widget["selectionInput"]
            assert w["type"] in ("DROPDOWN", "RADIO_BUTTON", "CHECK_BOX", "MULTI_SELECT") and len(w["items"]) <= 100
            if w["type"] == "MULTI_SELECT":
                assert w["platformDataSource"] == {"commonDataSource": "USER"}
        if "dateTimePicker" in widget:
            assert widget["dateTimePicker"]["type"] in ("DATE_ONLY", "TIME_ONLY")
    button = body["fixedFooter"]["primaryButton"]
    assert button["text"] == form.submit and button["color"]
    action = button["onClick"]["action"]
    assert action["function"] == form.callback_id
    assert action["parameters"] == [{"key": "state", "value": form.state}]
    assert action["requiredWidgets"] == [f.name for f in form.fields if f.required]
    for field in form.fields:
        label = next(_input(w)["label"] for w in widgets if _input(w) and _input(w)["name"] == field.name)
        assert label == (field.label if field.required else f"{field.label} (optional)")
    json.dumps(response)


def test_current_values_are_shown():
    assert _shown(chat_forms.dialog(forms.visit_details(date(2025, 3, 4))))["date"] == "2025-03-04"
    assert _shown(chat_forms.dialog(forms.visit_details(date(2025, 3, 4))))["duration"] == "45m"


def _submit(form: forms.Form, inputs: dict) -> dict:
    """A dialog submission as Chat sends it."""
    return {"type": "CARD_CLICKED", "isDialogEvent": True, "dialogEventType": "SUBMIT_DIALOG", "user": {"name": "users/101"},
            "common": {"invokedFunction": form.callback_id, "parameters": {"state": form.state}, "formInputs": inputs}}


@pytest.mark.parametrize("form", EVERY_FORM, ids=lambda f: f.callback_id)
def test_a_submission_reads_back_into_the_same_answers_as_on_slack(form):
    answers = ANSWERS[form.callback_id]
    event = _submit(form, chat_forms.form_inputs(form, answers))
    view = slack_forms.modal(form)
    view["state"] = {"values": _state(view, answers)}
    assert chat_forms.answers(form, event) == slack_forms.values(view) == answers
    assert chat_forms.submitted(event) == (forms.form_for(form.callback_id), answers, form.state)


def test_both_platforms_give_flows_the_same_visit_request():
    details, risk = forms.visit_details(date(2025, 3, 4)), forms.visit_risk(7)
    slack_details, slack_risk = slack_forms.modal(details), slack_forms.modal(risk)
    slack_details["state"] = {"values": _state(slack_details, ANSWERS[details.callback_id])}
    slack_risk["state"] = {"values": _state(slack_risk, ANSWERS[risk.callback_id])}
    chat_details = chat_forms.answers(details, _submit(details, chat_forms.form_inputs(details, ANSWERS[details.callback_id])))
    chat_risk = chat_forms.answers(risk, _submit(risk, chat_forms.form_inputs(risk, ANSWERS[risk.callback_id])))
    assert forms.details_answers(chat_details) == slack_forms.details_answers(slack_details)
    assert forms.risk_answers(chat_risk) == slack_forms.risk_answers(slack_risk)
    assert forms.details_answers(chat_details)["planned"] is True and forms.details_answers(chat_details)["commute"] is True


def test_empty_and_missing_inputs_read_as_no_answer():
    form = forms.visit_risk(7)
    event = _submit(form, {"other_agencies": {"stringInputs": {"value": [""]}}, "allergies": {"stringInputs": {"value": []}}})
    assert chat_forms.answers(form, event) == {
        "risks": [], "other_agencies": None, "allergies": None, "other_concerns": None, "companions": [],
    }


def test_a_date_picked_at_local_midnight_is_that_day_and_odd_pickers_give_no_answer():
    form = forms.visit_details()
    bst_midnight = str(1_741_046_400_000 - 3_600_000)  # 2025-03-04 00:00 at UTC+1 is 23:00 the day before in UTC
    event = _submit(form, {"date": {"dateInput": {"msSinceEpoch": bst_midnight}},
                           "start_time": {"timeInput": {"hours": 25, "minutes": 0}}})
    assert chat_forms.answers(form, event)["date"] == "2025-03-04"
    assert chat_forms.answers(form, event)["start_time"] is None
    broken = _submit(form, {"date": {"dateInput": {"msSinceEpoch": "soon"}}, "start_time": {"timeInput": "10:00"}})
    assert chat_forms.answers(form, broken)["date"] is None and chat_forms.answers(form, broken)["start_time"] is None


def test_typed_text_loses_control_characters_as_on_slack():
    form = forms.confirm_safe(3)
    event = _submit(form, {"note": {"stringInputs": {"value": ["Safe\u202e\x00 now"]}}})
    assert chat_forms.answers(form, event) == {"note": "Safe now"}


def test_a_submission_for_no_known_form_is_refused():
    assert chat_forms.submitted({"common": {"invokedFunction": "drop_tables"}}) is None
    assert chat_forms.answers(forms.extend(3), {"common": {"formInputs": {"duration": "20m"}}}) == {"duration": None}
    assert chat_forms.answers(forms.extend(3), {"common": "x"}) == {"duration": None}
    assert chat_forms.state({"common": {"parameters": {"state": 7}}}) == ""


@pytest.mark.parametrize("form", EVERY_FORM, ids=lambda f: f.callback_id)
def test_a_refused_submission_redraws_the_dialog_with_every_answer_kept(form):
    answers = chat_forms.answers(form, _submit(form, chat_forms.form_inputs(form, ANSWERS[form.callback_id])))
    first = form.fields[-1].name
    redrawn = chat_forms.dialog_with_errors(form, answers, {first: "Say more <please> & thanks"})
    assert _shown(redrawn) == answers
    widgets = _widgets(redrawn)
    at = next(i for i, w in enumerate(widgets) if _input(w) and _input(w)["name"] == first)
    upto_next = widgets[at + 1 : next((i for i, w in enumerate(widgets) if i > at and _input(w)), len(widgets))]
    error = next(w["textParagraph"]["text"] for w in upto_next if "font" in w["textParagraph"]["text"])
    assert error == '<font color="#d93025">Say more &lt;please&gt; &amp; thanks</font>'
    assert chat_forms.dialog(form)["actionResponse"]["dialogAction"]["dialog"]["body"]["fixedFooter"] == \
        redrawn["actionResponse"]["dialogAction"]["dialog"]["body"]["fixedFooter"], "the state is kept too"


def test_errors_from_flows_go_beside_the_field_that_shows_them():
    form = forms.visit_risk(7)
    answers = dict(ANSWERS[form.callback_id], allergies=None)
    redrawn = chat_forms.dialog_with_errors(form, answers, {"allergies_checked": "Say whether you have allergies.",
                                                            "animals": "Too many risks.", "nonsense": "Odd."})
    widgets = _widgets(redrawn)
    order = [(_input(w) or {}).get("name") or w.get("textParagraph", {}).get("text") for w in widgets]
    assert order[order.index("risks") + 1] == '<font color="#d93025">Too many risks. Odd.</font>'
    assert order[order.index("allergies") + 1] == '<font color="#d93025">Say whether you have allergies.</font>'
    assert _shown(redrawn) == answers


def test_an_accepted_form_closes_the_dialog_with_its_confirmation():
    assert chat_forms.done(forms.DURESS_SAVED) == {"actionResponse": {"type": "DIALOG", "dialogAction": {
        "actionStatus": {"statusCode": "OK", "userFacingMessage": "Saved. Nothing about it is shown anywhere else."}}}}
    assert chat_forms.closed() == {"actionResponse": {"type": "DIALOG", "dialogAction": {"actionStatus": {"statusCode": "OK"}}}}


def test_the_intro_is_card_html_with_typed_markup_escaped():
    intro = _widgets(chat_forms.dialog(forms.duress_word()))[0]["textParagraph"]["text"]
    assert "after <b>/back</b> or <b>/checkin</b>" in intro and "<b>Still OK?</b>" in intro


def test_a_current_value_that_is_no_date_leaves_the_picker_empty():
    form = forms.filled(forms.visit_details(), {"date": "tomorrow", "start_time": "10"})
    assert _shown(chat_forms.dialog(form))["date"] is None and _shown(chat_forms.dialog(form))["start_time"] is None
