"""Neutral messages and replies as Google Chat messages: `text` in Chat's markup plus a Cards v2 card."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

from bot.emoji import emojize
from commands.context import Reply
from flows import actions
from flows.messages import Button, Message, esc
from flows.policy import Policy

# Chat's limit on a message's text, in characters (what a person can type in one message).
MAX_TEXT = 4096
# Chat refuses a message (text and cards) over 32,000 bytes; this leaves room for the request's envelope.
MAX_BYTES = 30_000
# A card paragraph this long stays readable and well inside the byte budget.
MAX_PARAGRAPH = 4000
MORE = "…and more: the list is too long for one message."
# Neutral markup (flows.messages): a mention of a Chat person, and the entities esc() leaves in typed text.
_MENTION = re.compile(r"<@(users/[A-Za-z0-9._@-]+)>")
_TOKEN = re.compile(r"<@(users/[A-Za-z0-9._@-]+)>|<#(spaces/[A-Za-z0-9_-]+)>|&lt;|&gt;|&amp;")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
# Typed text is shown with look-alike angle brackets so it can never form a mention or a link in Chat.
_TYPED = {"&lt;": "\u2039", "&gt;": "\u203a", "&amp;": "&"}


def staff_names(policy: Policy) -> dict[str, str]:
    """People's names from the policy's staff directory (Chat cards show a person by name, not by mention)."""
    return {user: entry.name for user, entry in policy.staff.items() if entry.name}


def text(neutral: str) -> str:
    """Neutral markup as Chat text: *bold* and `code` kept, <@users/1> → <users/1>, <#spaces/A> → `spaces/A`
    (Chat has no link to a space in text), :emoji: → Unicode."""
    def token(m: re.Match[str]) -> str:
        if m.group(1):
            return f"<{m.group(1)}>"
        return f"`{m.group(2)}`" if m.group(2) else _TYPED[m.group(0)]

    return emojize(_TOKEN.sub(token, neutral))


def html(neutral: str, names: Mapping[str, str] | None = None) -> str:
    """Neutral markup as card text (Chat's HTML subset): *bold* → <b>, a mention as @Name (cards cannot mention:
    the name from `names`, else the id), newlines as <br>."""
    out = _MENTION.sub(lambda m: "@" + (names or {}).get(m.group(1), m.group(1)), neutral)
    # Typed text is already escaped by esc(); only the template's own bare & < > need escaping here.
    out = re.sub(r"&(?!(lt|gt|amp);)", "&amp;", out).replace("<", "&lt;").replace(">", "&gt;")
    out = _BOLD.sub(r"<b>\1</b>", out)
    return emojize(out).replace("\n", "<br>")


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def length(chat_text: str) -> int:
    """Length as Chat may count it (UTF-16 code units: an emoji counts two), never less than Python's."""
    return len(chat_text.encode("utf-16-le")) // 2


def split(neutral: str, limit: int = MAX_TEXT) -> list[str]:
    """Text split at line ends into parts of at most `limit` characters once rendered; a too-long line is cut."""
    parts: list[str] = []
    current = ""
    for line in neutral.split("\n"):
        if length(text(line)) > limit:
            cut = limit - 1
            while length(text(line[:cut] + "…")) > limit:
                cut -= max(1, length(text(line[:cut] + "…")) - limit)
            line = line[:cut] + "…"
        candidate = f"{current}\n{line}" if current else line
        if current and length(text(candidate)) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    parts.append(current)
    return parts


# Buttons whose click opens a form (a Chat dialog).
OPENS_A_DIALOG = frozenset({actions.DECLINE, actions.CHECKIN_EXTEND, actions.ALERT_SAFE, actions.CONFIDENTIAL})
# The outcome buttons behind which a form waits (issue 14).
OPENS_A_DIALOG |= {actions.OUTCOME_NOBODY_HOME, actions.OUTCOME_CONCERN, actions.OUTCOME_INCIDENT, actions.OUTCOME_LEFT_UNSAFE, actions.OUTCOME_ALLEGATION}
# Slash commands that must be configured in the Chat console with "Opens a dialog" (README).
COMMANDS_OPENING_A_DIALOG = ("/visit", "/visitsafe", "/confidential")
# After the visit, the DSL's side: /concern and the buttons of the register and of a visit's record open forms.
OPENS_A_DIALOG = OPENS_A_DIALOG | {actions.REGISTER_ADD, actions.REGISTER_CLEAR, actions.REFERRAL, actions.SHARE}
COMMANDS_OPENING_A_DIALOG = (*COMMANDS_OPENING_A_DIALOG, "/concern")


def _button(button: Button) -> dict[str, Any]:
    widget: dict[str, Any] = {
        "text": _cut(button.label, 40),
        "onClick": {"action": {"function": button.action_id, "parameters": [{"key": "value", "value": button.value}]}},
    }
    if button.action_id in OPENS_A_DIALOG:
        # Chat opens a dialog only for a button that says so (and then only a dialog may answer its click).
        widget["onClick"]["action"]["interaction"] = "OPEN_DIALOG"
    if button.style == "primary":
        widget["type"] = "FILLED"
    elif button.style == "danger":
        widget.update(type="FILLED", color={"red": 0.8, "green": 0.1, "blue": 0.1, "alpha": 1})
    return widget


def _widgets(overflow: list[str], fields: tuple[tuple[str, str], ...], notes: tuple[str, ...], buttons: tuple[Button, ...],
             names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    widgets: list[dict[str, Any]] = [{"textParagraph": {"text": html(part, names)}} for part in overflow]
    for label, value in fields:  # values are typed text: escaped here, never read as markup
        widgets.append({"decoratedText": {"topLabel": _cut(html(label, names), 200), "text": _cut(esc(value), 1900).replace("\n", "<br>"), "wrapText": True}})
    for note in notes:
        widgets.append({"textParagraph": {"text": f"<i>{html(_cut(note, MAX_PARAGRAPH), names)}</i>"}})
    if buttons:
        widgets.append({"buttonList": {"buttons": [_button(b) for b in buttons]}})
    return widgets


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False).encode())


def body(neutral: str, fields: tuple[tuple[str, str], ...] = (), notes: tuple[str, ...] = (),
         buttons: tuple[Button, ...] = (), card_id: str = "visitsafe", names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Chat Message body: the first 4,096 characters as text, the rest, fields, notes and buttons in one card,
    kept under Chat's 32,000-byte limit by dropping trailing lines (the buttons always stay)."""
    first, *rest = split(neutral)
    overflow = [p for part in rest for p in split(part, MAX_PARAGRAPH)]
    out: dict[str, Any] = {"text": text(first), "markupSyntax": "MARKUP_SYNTAX_CHAT"}
    dropped = False
    while True:
        widgets = _widgets(overflow + ([MORE] if dropped else []), fields, notes, buttons, names)
        if widgets:
            out["cardsV2"] = [{"cardId": card_id, "card": {"sections": [{"widgets": widgets}]}}]
        # The text alone (4,096 characters, at most 16 KB) and the buttons always fit.
        if _size(out) <= MAX_BYTES or not (overflow or notes or fields):
            return out
        dropped = True
        if overflow:
            overflow = overflow[:-1]
        elif notes:
            notes = notes[:-1]
        else:
            fields = fields[:-1]


def card_id(key: str | None) -> str:
    """A stable card id for a message (Chat wants one per card)."""
    return "visitsafe-" + hashlib.sha256((key or "").encode()).hexdigest()[:12] if key else "visitsafe"


def message(message: Message, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The body of spaces.messages.create / patch for a neutral message (`names`: people's names for the card)."""
    return body(message.text, message.fields, message.notes, message.buttons, card_id(message.key), names)


def reply(reply: Reply, viewer: str | None = None, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A synchronous answer to an interaction; with `viewer` (users/…) only that person sees it."""
    out = body(reply.text, (), reply.notes, reply.buttons, names=names)
    if viewer:
        out["privateMessageViewer"] = {"name": viewer}
    return out
