"""Block Kit rendering: limits respected, nothing lost, user text escaped."""
from __future__ import annotations

from bot.slack import render
from flows.messages import Button, Message


def test_a_long_board_is_split_into_sections_without_losing_a_line():
    lines = [f":large_blue_circle: #{n} <@U{n:03d}>: out, due back 10:45" for n in range(300)]
    blocks = render.blocks("\n".join(lines))
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert "\n".join(texts).split("\n") == lines


def test_field_values_are_escaped_but_mentions_in_trusted_text_stay():
    payload = render.message(Message(to="C1", text="<@U01> asks", fields=(("Address", "<!channel> & co"),)))
    field = payload["blocks"][1]["fields"][0]["text"]
    assert field == "*Address*\n&lt;!channel&gt; &amp; co"
    assert payload["blocks"][0]["text"]["text"] == "<@U01> asks"


def test_repeated_action_ids_are_made_unique():
    buttons = (Button("a", "visit_start", "1"), Button("b", "visit_start", "2"), Button("c", "other", "3"))
    ids = [e["action_id"] for e in render.button_elements(buttons)]
    assert ids == ["visit_start", "visit_start:1", "other"]


def test_more_than_ten_fields_go_in_several_sections():
    fields = tuple((f"F{n}", "v") for n in range(13))
    blocks = render.blocks("t", fields)
    assert [len(b.get("fields", [])) for b in blocks] == [0, 10, 3]


def test_a_destination_is_written_as_a_person_or_a_channel_on_both_platforms():
    from flows.messages import where

    # A fallback copy names the destination that could not be reached: a Chat person is a person, not a channel.
    assert [where(d) for d in ("U01", "W02", "users/123", "C03", "G04", "spaces/AAA")] == [
        "<@U01>", "<@W02>", "<@users/123>", "<#C03>", "<#G04>", "<#spaces/AAA>",
    ]
