"""Emoji codes used in the neutral markup (`:warning:`), as the Unicode a plain-text platform shows."""
from __future__ import annotations

import re

EMOJI = {
    "alarm_clock": "\u23f0",
    "arrow_right": "\u27a1\ufe0f",
    "arrows_counterclockwise": "\U0001f504",
    "clock3": "\U0001f552",
    "eyes": "\U0001f440",
    "hourglass": "\u231b",
    "hourglass_flowing_sand": "\u23f3",
    "large_blue_circle": "\U0001f535",
    "lock": "\U0001f512",
    "red_circle": "\U0001f534",
    "rotating_light": "\U0001f6a8",
    "sos": "\U0001f198",
    "walking": "\U0001f6b6",
    "wave": "\U0001f44b",
    "warning": "\u26a0\ufe0f",
    "iphone": "\U0001f4f1",
    "white_check_mark": "\u2705",
    "white_circle": "\u26aa",
    "x": "\u274c",
}
# After the visit (issue 14): reminders, the CPOMS prompt, a no-answer referral, a concern.
EMOJI.update({"bell": "\U0001f514", "memo": "\U0001f4dd", "door": "\U0001f6aa", "large_orange_circle": "\U0001f7e0"})
_CODE = re.compile(r":([a-z0-9_+-]+):")


def emojize(text: str) -> str:
    """Known `:code:`s replaced by their character; anything else (e.g. a time like 14:30:) left as typed."""
    return _CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
