"""The /visit modal in two steps, the decline form, and reading their answers back."""
from __future__ import annotations

from datetime import date
from typing import Any

from flows import actions
from flows.messages import clean
from flows.request import REASONS, TRAVEL_MODES, VISIT_TYPES

A = "v"  # every input's action id; the block id names the field

RISK_CHECKS = {
    "violence_known": "Known violence or aggression at the address or by a household member",
    "violent_person_present": "A person known for violence is likely to be present",
    "family_new": "The family is new to the school or little is known about them",
    "animals": "Animals at the home",
    "interpreter": "An interpreter is needed",
    "special_needs": "Special needs in the family",
}
ALLERGIES = {"none": "I have no allergies", "checked": "I have checked with the home", "not_checked": "Not yet checked"}
# Fields that live inside another block: errors for them are shown on that block.
FIELD_BLOCK = {**{name: "risks" for name in RISK_CHECKS}, "allergies_checked": "allergies"}


def _text(label: str, block: str, *, optional: bool = False, multiline: bool = False, hint: str | None = None, placeholder: str | None = None, initial: str | None = None, max_length: int = 300) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": A, "multiline": multiline, "max_length": max_length}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder}
    if initial:
        element["initial_value"] = initial
    block: dict[str, Any] = {"type": "input", "block_id": block, "optional": optional, "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _options(choices: dict[str, str]) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": text}, "value": value} for value, text in choices.items()]


def _choice(label: str, block: str, choices: dict[str, str], kind: str = "static_select", optional: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": kind, "action_id": A, "options": _options(choices)}
    if kind == "static_select":
        element["placeholder"] = {"type": "plain_text", "text": "Choose"}
    return {"type": "input", "block_id": block, "optional": optional, "label": {"type": "plain_text", "text": label}, "element": element}


def _modal(callback_id: str, title: str, submit: str, blocks: list[dict[str, Any]], metadata: str = "") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": blocks,
    }


def details_view(today: date) -> dict[str, Any]:
    """Step 1: the visit."""
    return _modal(
        actions.VISIT_FORM,
        "Home visit: 1 of 2",
        "Next",
        [
            _text("Pupil or family reference", "pupil_ref", hint="Initials or MIS id, not a full name.", max_length=40),
            _text("Address", "address", multiline=True),
            _text("Contact phone number", "contact_phone", placeholder="01632 960123", max_length=30),
            _choice("Reason", "reason", REASONS),
            _text("If other, what for", "reason_other", optional=True),
            _choice("Type of visit", "visit_type", VISIT_TYPES, "radio_buttons"),
            _choice("Planned?", "planned", {"planned": "Planned", "unplanned": "Unplanned (emergency welfare check)"}, "radio_buttons"),
            {"type": "input", "block_id": "date", "label": {"type": "plain_text", "text": "Date"},
             "element": {"type": "datepicker", "action_id": A, "initial_date": today.isoformat()}},
            {"type": "input", "block_id": "start_time", "label": {"type": "plain_text", "text": "Start time"},
             "element": {"type": "timepicker", "action_id": A}},
            _text("Expected duration", "duration", initial="45m", hint="Like 45m or 1h30m.", max_length=10),
            _choice("Travel", "travel_mode", TRAVEL_MODES),
            _text("Travel details", "travel_details", hint="Car: registration, make and model. Taxi: company. On foot: route."),
            _choice("Parents informed in advance?", "parents_informed", {"yes": "Yes", "no": "No"}, "radio_buttons"),
            _text("If not, why not", "parents_not_informed_reason", optional=True),
            _choice("On the way to or from work?", "commute", {"yes": "This visit is on my way to or from work"}, "checkboxes", optional=True),
        ],
    )


def risk_view(draft_id: int) -> dict[str, Any]:
    """Step 2: the risk assessment and companions; step 1's answers wait in the database as draft `draft_id`."""
    return _modal(
        actions.RISK_FORM,
        "Home visit: 2 of 2",
        "Send for approval",
        [
            _choice("Risk assessment: tick all that apply", "risks", RISK_CHECKS, "checkboxes", optional=True),
            _text("Other agencies involved (which)", "other_agencies", optional=True),
            _choice("Your allergies", "allergies", ALLERGIES, "radio_buttons"),
            _text("Any other concern", "other_concerns", optional=True, multiline=True, max_length=1000),
            {"type": "input", "block_id": "companions", "optional": True,
             "label": {"type": "plain_text", "text": "Companion(s)"},
             "hint": {"type": "plain_text", "text": "The colleague(s) going with you."},
             "element": {"type": "multi_users_select", "action_id": A, "placeholder": {"type": "plain_text", "text": "Choose colleagues"}}},
        ],
        metadata=str(draft_id),  # not the answers: non-Latin text could pass Slack's 3,000-character limit
    )


def decline_view(visit_id: int) -> dict[str, Any]:
    """Asks the approver why they decline."""
    return _modal(
        actions.DECLINE_FORM,
        "Decline visit",
        "Decline",
        [_text("Reason (the requester will see it)", "reason", multiline=True, max_length=1000)],
        metadata=str(visit_id),
    )


def _value(action: dict[str, Any]) -> Any:
    kind = action.get("type")
    if kind in ("static_select", "radio_buttons"):
        return (action.get("selected_option") or {}).get("value")
    if kind == "datepicker":
        return action.get("selected_date")
    if kind == "timepicker":
        return action.get("selected_time")
    if kind == "checkboxes":
        return [o["value"] for o in action.get("selected_options") or []]
    if kind == "multi_users_select":
        return action.get("selected_users") or []
    return action.get("value")


def _clean(answer: Any) -> Any:
    if isinstance(answer, str):
        return clean(answer)
    if isinstance(answer, list):
        return [_clean(item) for item in answer]
    return answer


def values(view: dict[str, Any]) -> dict[str, Any]:
    """Every block's answer, by block id (None when left empty); typed text without control characters."""
    state = view.get("state", {}).get("values", {})
    return {block: _clean(_value(fields.get(A, {}))) for block, fields in state.items()}


def details_answers(view: dict[str, Any]) -> dict[str, Any]:
    """Step 1's answers as flows.request expects them (missing answers left out)."""
    raw = {k: v for k, v in values(view).items() if v not in (None, "")}
    if "planned" in raw:
        raw["planned"] = raw["planned"] == "planned"
    if "parents_informed" in raw:
        raw["parents_informed"] = raw["parents_informed"] == "yes"
    raw["commute"] = "yes" in (raw.get("commute") or [])
    return raw


def risk_answers(view: dict[str, Any]) -> dict[str, Any]:
    """Step 2's answers as flows.request expects them."""
    raw = values(view)
    ticked = set(raw.get("risks") or [])
    answers: dict[str, Any] = {name: name in ticked for name in RISK_CHECKS}
    if raw.get("allergies") is None:
        answers["allergies_checked"] = None  # required: reported beside the field
    else:
        answers["allergies_checked"] = raw["allergies"] != "not_checked"
    answers["other_agencies"] = raw.get("other_agencies") or None
    answers["other_concerns"] = raw.get("other_concerns") or None
    answers["companions"] = tuple(raw.get("companions") or ())
    return answers


def field_errors(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Field errors keyed by the block that shows them (unknown fields go on the first input)."""
    present = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
    out: dict[str, str] = {}
    for name, message in errors.items():
        block = FIELD_BLOCK.get(name, name)
        if block not in present:
            block = present[0]
        out[block] = (out[block] + " " + message) if block in out else message
    return out


def extend_view(visit_id: int) -> dict[str, Any]:
    """How much longer the visitor needs."""
    return _modal(
        actions.EXTEND_FORM, "Extend visit", "Extend",
        [_text("How much longer?", "duration", hint="Like 20m or 1h, or a time like 11:30.", max_length=10)],
        metadata=str(visit_id),
    )


def safe_view(visit_id: int) -> dict[str, Any]:
    """How the responder knows the visitor is safe."""
    return _modal(
        actions.SAFE_FORM, "Confirm safe", "Confirm safe",
        [_text("How do you know they are safe?", "note", multiline=True, max_length=500,
               placeholder="Spoke to Sam on the phone at 11:05, on the way back")],
        metadata=str(visit_id),
    )


def confidential_view(people: list[tuple[str, str]], visit_id: int | None) -> dict[str, Any]:
    """Whom to open a confidential conversation with: the people the policy allows, by name."""
    about = f" about visit #{visit_id}" if visit_id is not None else ""
    return _modal(
        actions.CONFIDENTIAL_FORM, "Confidential chat", "Open",
        [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"A private group DM{about} between you, the person you choose and VisitSafe. VisitSafe records"
                " only that it exists (who, when, which visit), never what is written in it.")}},
            _choice("With", "with", dict(people)),
        ],
        metadata="" if visit_id is None else str(visit_id),
    )


def duress_view() -> dict[str, Any]:
    """Set a personal duress word (only its salted hash is kept)."""
    return _modal(
        actions.DURESS_FORM, "Your duress word", "Save",
        [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "If someone is watching your screen, type this word after `/back` or `/checkin` (or as your"
                " answer to *Still OK?*). You will see the normal reply, and the safeguarding team and the DSL"
                " are alerted silently. Only a one-way hash of the word is stored.")}},
            _text("Duress word", "word", max_length=40, placeholder="a word you would never type by accident"),
        ],
    )


def duress_saved_view() -> dict[str, Any]:
    """Confirmation, shown in the modal rather than left in a DM."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Your duress word"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Saved. Nothing about it is shown anywhere else."}}],
    }


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
