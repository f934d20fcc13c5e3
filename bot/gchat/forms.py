"""The neutral forms of bot/forms.py drawn as Google Chat Cards v2 dialogs, and a submission's answers read back.

A dialog's submit button invokes the form's callback id (`common.invokedFunction` on submit) and carries
the form's state as the action parameter `state` (`common.parameters.state`). Chat has no per-field
errors: `dialog(form, errors=...)` draws the dialog again with each message in red under its field.
"""
from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta
from typing import Any

from bot import forms

STATE = "state"  # the action parameter that carries Form.state (Slack's private_metadata)
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
ERROR_COLOR = "#d93025"
# A fixed footer's primary button must have a colour: Google blue.
SUBMIT_COLOR = {"red": 0.102, "green": 0.451, "blue": 0.91, "alpha": 1}
SELECTION = {"select": "DROPDOWN", "radio": "RADIO_BUTTON", "checkboxes": "CHECK_BOX", "users": "MULTI_SELECT"}
MAX_PEOPLE = 20  # companions on one visit; Chat's default of 3 would be too few
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")


def _html(neutral: str) -> str:
    """Neutral markup as card text in Chat's HTML subset: *bold* and `code` shown bold, newlines as <br>."""
    out = html_lib.escape(neutral, quote=False)
    out = _CODE.sub(r"<b>\1</b>", _BOLD.sub(r"<b>\1</b>", out))
    return out.replace("\n", "<br>")


def _paragraph(text_html: str) -> dict[str, Any]:
    return {"textParagraph": {"text": text_html}}


def _label(field: forms.Field) -> str:
    # Slack marks optional inputs itself; Chat does not.
    return field.label if field.required else f"{field.label} (optional)"


def _date_ms(value: str) -> str:
    return str((date.fromisoformat(value) - EPOCH).days * DAY_MS)


def _time_ms(value: str) -> str:
    hours, minutes = value.split(":")[:2]
    return str((int(hours) * 60 + int(minutes)) * 60_000)


def _picker_ms(field: forms.Field) -> str | None:
    """A date or time field's current value as a picker's valueMsEpoch (None when it has no valid one)."""
    if not isinstance(field.value, str):
        return None
    try:
        return _date_ms(field.value) if field.kind == "date" else _time_ms(field.value)
    except ValueError:
        return None


def _widget(field: forms.Field) -> dict[str, Any]:
    """The Cards v2 input widget that asks for `field`, showing its current value."""
    if field.kind in forms.TEXTS:
        widget: dict[str, Any] = {"name": field.name, "label": _label(field),
                                  "type": "MULTIPLE_LINE" if field.kind == "multiline" else "SINGLE_LINE"}
        if field.hint:
            widget["hintText"] = field.hint
        if field.placeholder:
            widget["placeholderText"] = field.placeholder
        if field.max_length:
            widget["validation"] = {"characterLimit": field.max_length, "inputType": "TEXT"}
        if field.value:
            widget["value"] = field.value
        return {"textInput": widget}
    if field.kind in ("date", "time"):
        widget = {"name": field.name, "label": _label(field), "type": "DATE_ONLY" if field.kind == "date" else "TIME_ONLY"}
        shown = _picker_ms(field)
        if shown is not None:
            widget["valueMsEpoch"] = shown
            widget["timezoneOffsetDate"] = 0  # show the value as given, not shifted into the viewer's zone
        return {"dateTimePicker": widget}
    chosen = field.value if isinstance(field.value, tuple) else (field.value,)
    widget = {"name": field.name, "label": _label(field), "type": SELECTION[field.kind]}
    if field.kind == "users":
        widget["platformDataSource"] = {"commonDataSource": "USER"}
        widget["multiSelectMaxSelectedItems"] = MAX_PEOPLE
        widget["multiSelectMinQueryLength"] = 1
        # People already chosen stay chosen when the dialog is drawn again.
        widget["items"] = [{"text": user, "value": user, "selected": True} for user in chosen if user]
    else:
        widget["items"] = [{"text": o.label, "value": o.value, "selected": o.value in chosen} for o in field.options]
    return {"selectionInput": widget}


def card(form: forms.Form, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """A neutral form as a Cards v2 card: one input widget per field, its hint and any error under it."""
    placed = forms.place_errors(errors, [f.name for f in form.fields]) if errors else {}
    widgets = [_paragraph(_html(form.intro))] if form.intro else []
    for field in form.fields:
        widgets.append(_widget(field))
        if field.hint and field.kind not in forms.TEXTS:  # only text inputs have a hint of their own
            widgets.append(_paragraph(html_lib.escape(field.hint, quote=False)))
        if field.name in placed:
            widgets.append(_paragraph(f'<font color="{ERROR_COLOR}">{html_lib.escape(placed[field.name], quote=False)}</font>'))
    action = {
        "function": form.callback_id,
        "parameters": [{"key": STATE, "value": form.state}],
        "requiredWidgets": [f.name for f in form.fields if f.required],
    }
    return {
        "header": {"title": form.title},
        "sections": [{"widgets": widgets}],
        "fixedFooter": {"primaryButton": {"text": form.submit, "color": SUBMIT_COLOR, "onClick": {"action": action}}},
    }


def dialog(form: forms.Form, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """The synchronous answer that opens (or, after a refused submit, redraws) the form as a dialog."""
    return {"actionResponse": {"type": "DIALOG", "dialogAction": {"dialog": {"body": card(form, errors)}}}}


def dialog_with_errors(form: forms.Form, answers: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The dialog drawn again after a refused submit: every answer kept, each error in red under its field."""
    return dialog(forms.filled(form, answers), errors)


def closed(message: str = "") -> dict[str, Any]:
    """The answer that closes a dialog once its submission is accepted (with a short notice, if any)."""
    status: dict[str, Any] = {"statusCode": "OK"}
    if message:
        status["userFacingMessage"] = message
    return {"actionResponse": {"type": "DIALOG", "dialogAction": {"actionStatus": status}}}


def done(done: forms.Done) -> dict[str, Any]:
    """A neutral confirmation: Chat closes the dialog and shows the text as a notice."""
    return closed(done.text)


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: a malformed submission reads as unanswered."""
    return value if isinstance(value, dict) else {}


def _strings(inputs: dict[str, Any]) -> list[Any]:
    values = _obj(inputs.get("stringInputs")).get("value")
    return values if isinstance(values, list) else []


def _raw(field: forms.Field, inputs: dict[str, Any]) -> Any:
    """One widget's formInputs entry as the raw answer (before normalize)."""
    try:
        if field.kind == "date":
            ms = int(_obj(inputs.get("dateInput"))["msSinceEpoch"])
            # Midnight where the person is lies within 12 hours of that day's UTC midnight: round to the nearest.
            return (EPOCH + timedelta(days=(ms + DAY_MS // 2) // DAY_MS)).isoformat()
        if field.kind == "time":
            time_input = inputs["timeInput"]
            # Chat's JSON leaves out a zero (proto3): 10:00 comes as {"hours": 10}.
            hours, minutes = int(time_input.get("hours", 0)), int(time_input.get("minutes", 0))
            return f"{hours:02d}:{minutes:02d}" if 0 <= hours < 24 and 0 <= minutes < 60 else None
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
        return None
    strings = _strings(inputs)
    if field.kind in forms.MULTI:
        return strings
    return strings[0] if strings else None


def answers(form: forms.Form, event: dict[str, Any]) -> dict[str, Any]:
    """A dialog submission's `common.formInputs` as the neutral answers the Slack reader gives (every field)."""
    inputs = _obj(_obj(event.get("common")).get("formInputs"))
    return {field.name: forms.normalize(field.kind, _raw(field, _obj(inputs.get(field.name)))) for field in form.fields}


def state(event: dict[str, Any]) -> str:
    """The form's state carried back by a submission (Slack's private_metadata), "" when missing."""
    value = _obj(_obj(event.get("common")).get("parameters")).get(STATE)
    return value if isinstance(value, str) else ""


def submitted(event: dict[str, Any]) -> tuple[forms.Form, dict[str, Any], str] | None:
    """A dialog submission's form, answers and state; None when it answers no form the app has."""
    form = forms.form_for(str(_obj(event.get("common")).get("invokedFunction") or ""))
    if form is None:
        return None
    return form, answers(form, event), state(event)


def form_inputs(form: forms.Form, answers: dict[str, Any]) -> dict[str, Any]:
    """The `common.formInputs` Chat sends when these neutral answers are submitted (for the simulated Chat and tests)."""
    out: dict[str, Any] = {}
    for field in form.fields:
        answer = answers.get(field.name)
        if field.kind == "date":
            if answer:
                out[field.name] = {"dateInput": {"msSinceEpoch": _date_ms(answer)}}
        elif field.kind == "time":
            if answer:
                hours, minutes = answer.split(":")[:2]
                out[field.name] = {"timeInput": {"hours": int(hours), "minutes": int(minutes)}}
        elif field.kind in forms.MULTI:
            out[field.name] = {"stringInputs": {"value": list(answer or [])}}
        else:
            out[field.name] = {"stringInputs": {"value": [answer] if answer is not None else []}}
    return out
