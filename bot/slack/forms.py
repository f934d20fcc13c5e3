"""The neutral forms of bot/forms.py drawn as Block Kit modals, their answers read back; and the App Home tab."""
from __future__ import annotations

from datetime import date
from typing import Any

from bot import forms

A = "v"  # every input's action id; the block id names the field

# Re-exported: the risk checks and allergy answers are defined once, in bot/forms.py.
RISK_CHECKS = forms.RISK_CHECKS
ALLERGIES = forms.ALLERGIES
ELEMENT = {"select": "static_select", "radio": "radio_buttons", "checkboxes": "checkboxes",
           "date": "datepicker", "time": "timepicker", "users": "multi_users_select"}
KIND = {**{element: kind for kind, element in ELEMENT.items()}, "plain_text_input": "text"}
INITIAL = {"date": "initial_date", "time": "initial_time", "users": "initial_users"}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(option: forms.Option) -> dict[str, Any]:
    return {"text": _plain(option.label), "value": option.value}


def _element(field: forms.Field) -> dict[str, Any]:
    """The Block Kit element that asks for `field`, showing its current value."""
    if field.kind in forms.TEXTS:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": A, "multiline": field.kind == "multiline",
                                   "max_length": field.max_length}
    else:
        element = {"type": ELEMENT[field.kind], "action_id": A}
    if field.options:
        element["options"] = [_option(o) for o in field.options]
    placeholder = field.placeholder or ("Choose" if field.kind == "select" else None)
    if placeholder:
        element["placeholder"] = _plain(placeholder)
    if field.value is not None and field.value != ():
        if field.kind in forms.TEXTS:
            element["initial_value"] = field.value
        elif field.kind == "checkboxes":
            element["initial_options"] = [_option(o) for o in field.options if o.value in field.value]
        elif field.kind in forms.CHOICES:
            element["initial_option"] = next((_option(o) for o in field.options if o.value == field.value), None)
        else:
            element[INITIAL[field.kind]] = list(field.value) if isinstance(field.value, tuple) else field.value
    return {k: v for k, v in element.items() if v is not None}


def _input(field: forms.Field) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": field.name, "optional": not field.required,
                             "label": _plain(field.label), "element": _element(field)}
    if field.hint:
        block["hint"] = _plain(field.hint)
    return block


def modal(form: forms.Form) -> dict[str, Any]:
    """A neutral form as a Block Kit modal: one input block per field, the block id being the field's name."""
    intro = [{"type": "section", "text": {"type": "mrkdwn", "text": form.intro}}] if form.intro else []
    return {
        "type": "modal",
        "callback_id": form.callback_id,
        "title": _plain(form.title),
        "submit": _plain(form.submit),
        "close": _plain("Cancel"),
        "private_metadata": form.state,
        "blocks": [*intro, *(_input(field) for field in form.fields)],
    }


def done(done: forms.Done) -> dict[str, Any]:
    """A confirmation shown in the modal itself (no submit button)."""
    return {
        "type": "modal",
        "title": _plain(done.title),
        "close": _plain(done.close),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": done.text}}],
    }


def details_view(today: date) -> dict[str, Any]:
    """Step 1: the visit."""
    return modal(forms.visit_details(today))


def risk_view(draft_id: int) -> dict[str, Any]:
    """Step 2: the risk assessment and companions; step 1's answers wait in the database as draft `draft_id`."""
    return modal(forms.visit_risk(draft_id))


def decline_view(visit_id: int) -> dict[str, Any]:
    """Asks the approver why they decline."""
    return modal(forms.decline(visit_id))


def extend_view(visit_id: int) -> dict[str, Any]:
    """How much longer the visitor needs."""
    return modal(forms.extend(visit_id))


def safe_view(visit_id: int) -> dict[str, Any]:
    """How the responder knows the visitor is safe."""
    return modal(forms.confirm_safe(visit_id))


def duress_view() -> dict[str, Any]:
    """Set a personal duress word (only its salted hash is kept)."""
    return modal(forms.duress_word())


def duress_saved_view() -> dict[str, Any]:
    """Confirmation, shown in the modal rather than left in a DM."""
    return done(forms.DURESS_SAVED)


def _value(action: dict[str, Any]) -> Any:
    kind = action.get("type")
    if kind in ("static_select", "radio_buttons"):
        return (action.get("selected_option") or {}).get("value")
    if kind == "datepicker":
        return action.get("selected_date")
    if kind == "timepicker":
        return action.get("selected_time")
    if kind == "checkboxes":
        return [o.get("value") for o in action.get("selected_options") or []]
    if kind == "multi_users_select":
        return action.get("selected_users") or []
    return action.get("value")


def values(view: dict[str, Any]) -> dict[str, Any]:
    """The neutral answers (bot/forms.py) of a submitted view, by field name (the block id)."""
    state = view.get("state", {}).get("values", {})
    answers = {}
    for block, fields in state.items():
        action = fields.get(A, {})
        answers[block] = forms.normalize(KIND.get(action.get("type"), "text"), _value(action))
    return answers


def details_answers(view: dict[str, Any]) -> dict[str, Any]:
    """Step 1's answers as flows.request expects them (missing answers left out)."""
    return forms.details_answers(values(view))


def risk_answers(view: dict[str, Any]) -> dict[str, Any]:
    """Step 2's answers as flows.request expects them."""
    return forms.risk_answers(values(view))


def field_errors(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Field errors keyed by the block that shows them (unknown fields go on the first input)."""
    present = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
    return forms.place_errors(errors, present)


def confidential_view(people: list[tuple[str, str]], visit_id: int | None) -> dict[str, Any]:
    """Whom to open a confidential conversation with: the people the policy allows, by name."""
    return modal(forms.confidential(people, visit_id))


def home_view(board_text: str, checklist: str, help_text: str) -> dict[str, Any]:
    """The App Home tab: today's board (as /visits shows it to this person), the checklist, the commands."""
    from bot.slack.render import sections

    return {
        "type": "home",
        "blocks": [
            *({"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in sections(board_text)),
            {"type": "divider"},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Before you knock*\n" + checklist}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": help_text}]},
        ],
    }
