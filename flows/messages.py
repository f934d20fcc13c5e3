"""A platform-neutral outgoing message: what a person sees, not how a platform draws it."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

# Invisible characters that reorder or hide text (bidi overrides, isolates and marks).
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(text: str) -> str:
    """Typed text without NUL, control characters (newline and tab kept) or bidirectional overrides."""
    return "".join(
        ch for ch in text
        if ch in "\n\t" or (ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cs"))
    )


def esc(text: object) -> str:
    """Escape user-typed text so it can never mention @channel or a person (and carries no control characters)."""
    return clean(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: str) -> str:
    """A reference to a person that each renderer turns into its own mention."""
    return f"<@{user}>"


@dataclass(frozen=True)
class Button:
    """A button; `value` carries only an id, never trusted for authorization."""

    label: str
    action_id: str
    value: str
    style: str | None = None  # "primary" or "danger"


@dataclass(frozen=True)
class Message:
    """One message to one destination (a private channel id or a user id for a DM).

    `text` is trusted template text with user input already passed through esc();
    `fields` values are raw user input and are escaped by the renderer.
    """

    to: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()
    buttons: tuple[Button, ...] = ()
    notes: tuple[str, ...] = ()
    # Unique per logical message: the outbox refuses a second message with the same key.
    key: str | None = None
    # A name for this message so a later message can replace it (e.g. an approver's DM).
    ref: str | None = None
    # When set, update the message named by this ref instead of posting a new one.
    replaces: str | None = None
    # Other destinations to try if this one cannot be delivered in time (alerts only).
    fallback: tuple[str, ...] = field(default=())
