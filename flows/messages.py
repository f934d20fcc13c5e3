"""A platform-neutral outgoing message: what a person sees, not how a platform draws it.

Every message and reply is written in one small neutral markup, which each renderer (bot/slack/render.py,
bot/gchat/render.py, the demo's plain text) turns into its own:

- `*bold*` and `` `code` `` (a command, a duration to type);
- `<@ID>` a person, written with mention(ID): ID is the platform's own (a Slack `U…`, a Chat `users/…`);
- `<#ID>` a channel or space, written with channel_ref(ID); where(ID) picks one of the two for a destination;
- `:emoji_code:` an emoji by its short name (`:warning:`, `:rotating_light:`);
- `&amp;`, `&lt;`, `&gt;` in typed text, put there by esc() so typed text can never form markup;
- newlines as line breaks. Nothing else: no `<!here>`, no `<http…|…>` links, no platform syntax.
"""
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


def channel_ref(channel: str) -> str:
    """A reference to a channel (a Chat space) that each renderer turns into its own."""
    return f"<#{channel}>"


def is_person(destination: str) -> bool:
    """Whether a destination id names a person (Slack `U…`/`W…`, Chat `users/…`) rather than a channel or space."""
    return destination.startswith(("users/", "U", "W"))


def where(destination: str) -> str:
    """A destination as the reader should see it: a person's mention or a channel's reference."""
    return mention(destination) if is_person(destination) else channel_ref(destination)


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
