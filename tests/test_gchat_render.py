"""Neutral markup as Google Chat messages: Chat's text syntax, Cards v2 buttons, Chat's size limits."""
from __future__ import annotations

import json

from bot.gchat import render
from commands.context import Reply
from flows.messages import Button, Message, esc


def test_bold_and_code_are_kept_and_mentions_become_chat_mentions():
    assert render.text("*Sam* is late, see `/visits` <@users/1>") == "*Sam* is late, see `/visits` <users/1>"


def test_emoji_codes_become_unicode_and_times_stay():
    assert render.text(":warning: back by 14:30: :rotating_light:") == "\u26a0\ufe0f back by 14:30: \U0001f6a8"


def test_typed_angle_brackets_never_form_a_mention_or_a_link():
    typed = esc("<users/999> <https://evil.example|click> & co")
    shown = render.text(f"Note: {typed}")
    assert "<users/999>" not in shown and "<https" not in shown and "& co" in shown


def test_buttons_carry_their_function_and_value_as_a_parameter():
    body = render.message(Message(to="spaces/A", text="Late", buttons=(Button("I'm on it", "ack", "42", "primary"), Button("Call police", "police", "42", "danger"))))
    buttons = body["cardsV2"][0]["card"]["sections"][0]["widgets"][-1]["buttonList"]["buttons"]
    assert [(b["text"], b["onClick"]["action"]["function"], b["onClick"]["action"]["parameters"]) for b in buttons] == [
        ("I'm on it", "ack", [{"key": "value", "value": "42"}]),
        ("Call police", "police", [{"key": "value", "value": "42"}]),
    ]
    assert buttons[0]["type"] == "FILLED" and buttons[1]["color"]["red"] > 0.5


def test_typed_field_values_are_escaped_in_the_card():
    body = render.message(Message(to="spaces/A", text="Visit", fields=(("Address", "<b>12</b> Oak & Ash"),)))
    widget = body["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["decoratedText"]
    assert widget["topLabel"] == "Address" and widget["text"] == "&lt;b&gt;12&lt;/b&gt; Oak &amp; Ash"


def test_a_plain_message_has_no_card_and_says_which_markup_it_uses():
    assert render.message(Message(to="users/1", text="hello")) == {"text": "hello", "markupSyntax": "MARKUP_SYNTAX_CHAT"}


def test_long_text_is_split_within_chats_limits_and_loses_no_line():
    lines = [f"{n:04d} Sam Visitor — 12 Oak Road, back by 15:00 :walking:" for n in range(400)]
    body = render.message(Message(to="spaces/A", text="\n".join(lines)))
    assert render.length(body["text"]) <= 4096
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= 32_000
    paragraphs = [w["textParagraph"]["text"] for w in body["cardsV2"][0]["card"]["sections"][0]["widgets"]]
    shown = body["text"].split("\n") + "<br>".join(paragraphs).split("<br>")
    assert shown[0].startswith("0000") and shown[-1].startswith("0399") and len(shown) == 400


def test_a_message_too_big_for_chat_is_cut_and_says_so_but_keeps_its_buttons():
    body = render.message(Message(to="spaces/A", text="\n".join("x" * 3000 for _ in range(40)), buttons=(Button("OK", "ack", "1"),)))
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= 32_000
    widgets = body["cardsV2"][0]["card"]["sections"][0]["widgets"]
    assert render.MORE in widgets[-2]["textParagraph"]["text"] and "buttonList" in widgets[-1]


def test_one_overlong_line_is_cut_to_fit():
    body = render.message(Message(to="spaces/A", text="y" * 5000))
    assert render.length(body["text"]) == 4096 and body["text"].endswith("…")


def test_a_reply_can_be_private_to_the_person_who_acted():
    body = render.reply(Reply(text="Signed out :white_check_mark:", buttons=(Button("Back", "back", "3"),)), viewer="users/1")
    assert body["text"] == "Signed out \u2705" and body["privateMessageViewer"] == {"name": "users/1"}
