"""Slack's button values are parsed by the platform-neutral parser in bot/buttons.py (shared with Google Chat)."""
from bot.buttons import MAX_ID_DIGITS, MAX_IDS, MAX_TEXT, NOT_MINE, BadValue, ids, one_id, round_of, start, visit, with_text

__all__ = ["MAX_ID_DIGITS", "MAX_IDS", "MAX_TEXT", "NOT_MINE", "BadValue", "ids", "one_id", "round_of", "start", "visit", "with_text"]
