"""Neutral messages and replies as Slack Block Kit."""
from __future__ import annotations

import re
from typing import Any

from flows.messages import Button, Message, esc

MAX_TEXT = 2900  # Block Kit's section limit is 3000 characters
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sections(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Long text split at line ends into section-sized parts, so a long board loses no line."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = _cut(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    parts.append(current)
    return parts[:45] if len(parts) <= 45 else [*parts[:44], "…and more: the list is too long for one message."]


def button_elements(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """Buttons as Block Kit elements; a repeated action id gets a suffix (Slack needs them unique)."""
    seen: dict[str, int] = {}
    elements = []
    for button in buttons:
        n = seen.get(button.action_id, 0)
        seen[button.action_id] = n + 1
        element: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
            "action_id": button.action_id if n == 0 else f"{button.action_id}:{n}",
            "value": button.value,
        }
        if button.style:
            element["style"] = button.style
        elements.append(element)
    return elements


def blocks(text: str, fields: tuple[tuple[str, str], ...] = (), notes: tuple[str, ...] = (), buttons: tuple[Button, ...] = ()) -> list[dict[str, Any]]:
    """Block Kit for a text, its fields, notes and buttons."""
    out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in sections(text)]
    pairs = [{"type": "mrkdwn", "text": _cut(f"*{label}*\n{esc(value)}", 1900)} for label, value in fields]
    for start in range(0, len(pairs), 10):  # at most 10 fields per section
        out.append({"type": "section", "fields": pairs[start : start + 10]})
    for note in notes:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(note)}]})
    if buttons:
        out.append({"type": "actions", "elements": button_elements(buttons)})
    return out


def fallback_text(text: str) -> str:
    """The plain notification text (shown in notifications and by screen readers)."""
    # Only what can be kept is rewritten (a board runs to tens of kB); a mention is never longer once drawn.
    return _cut(_MENTION.sub(r"<@\1>", text[:3001]), 3000)


def message(message: Message) -> dict[str, Any]:
    """Keyword arguments for chat.postMessage / chat.update."""
    return {
        "text": fallback_text(message.text),
        "blocks": blocks(message.text, message.fields, message.notes, message.buttons),
    }
