"""Strict parsing of what a button or a form carries back (any platform): ids only, refused unless exactly as we wrote it."""
from __future__ import annotations

from flows.messages import clean

MAX_ID_DIGITS = 12
MAX_IDS = 10  # a round offers at most a handful of visits
MAX_TEXT = 40  # the /out argument carried by a start button ("45m", "14:30")

NOT_MINE = "That button is not one of mine."


class BadValue(ValueError):
    """A value we did not write: refused with NOT_MINE, nothing changed."""

    def __init__(self) -> None:
        super().__init__(NOT_MINE)


def one_id(text: str) -> int:
    """A positive id in ASCII digits without leading zeros ('²'.isdigit() is True, so isdigit alone is not enough)."""
    if not (0 < len(text) <= MAX_ID_DIGITS) or not text.isascii() or not text.isdigit() or text[0] == "0":
        raise BadValue()
    return int(text)


def ids(text: str, at_most: int = MAX_IDS) -> list[int]:
    """Comma-separated unique ids, in order."""
    parts = text.split(",")
    if len(parts) > at_most:
        raise BadValue()
    found = [one_id(part) for part in parts]
    if len(set(found)) != len(found):
        raise BadValue()
    return found


def with_text(value: str) -> tuple[str, str]:
    """`ids|text`: the ids part and the short typed text that rode along (already clean when we wrote it)."""
    head, bar, text = value.partition("|")
    if len(text) > MAX_TEXT or clean(text) != text or (text and not bar):
        raise BadValue()
    return head, text


def visit(value: str) -> int:
    """A button whose value is one visit id."""
    return one_id(value)


def start(value: str) -> tuple[int, str]:
    """Start one visit: `id|text`."""
    head, text = with_text(value)
    return one_id(head), text


def round_of(value: str) -> tuple[list[int], str]:
    """Start a round: `id,id,…|text`, at least two unique ids."""
    head, text = with_text(value)
    found = ids(head)
    if len(found) < 2:
        raise BadValue()
    return found, text
