"""`visitsafe demo` shows what each person sees, drawn as Slack draws it: no markup, no internal words."""
from __future__ import annotations

import re

import pytest

from tests.test_cli import visitsafe

RAW_MARKUP = {
    "an :emoji_code:": re.compile(r":[a-z][a-z0-9_+-]*:"),
    "*bold* asterisks": re.compile(r"\*[^*\s][^*\n]*\*"),
    "a backtick": re.compile(r"`"),
    "a raw mention": re.compile(r"<@|&lt;|&gt;"),
}
INTERNAL_WORDS = re.compile(r"\b(requested|tier|tiers|sweep|127\.0\.0\.1|localhost|https?://)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def chat():
    result = visitsafe("demo", "--platform", "google-chat", "--overdue")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo():
    result = visitsafe("demo")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def overdue():
    result = visitsafe("demo", "--overdue")
    assert result.returncode == 0, result.stderr
    return result.stdout


def sections(out: str) -> list[str]:
    """The demo's steps, each with what people saw because of it."""
    return out.split("\n━━ ")


def seen_by(step: str, place: str) -> str:
    """What one person (or channel) was shown in one step."""
    parts = step.split("   ✉ ")
    return "\n".join(p for p in parts if p.startswith(place))


@pytest.mark.parametrize("which", ["demo", "overdue", "chat"])
def test_the_demo_prints_what_people_see_not_slack_markup_or_internal_words(request, which):
    out = request.getfixturevalue(which)
    for what, pattern in RAW_MARKUP.items():
        assert not pattern.search(out), f"{what}: {pattern.search(out).group(0)!r} in the demo"
    assert not INTERNAL_WORDS.search(out), INTERNAL_WORDS.search(out).group(0)
    assert "✅" in out and "🚶" in out  # real emoji characters


def test_each_person_s_view_of_a_visit_that_goes_well(demo):
    # The form's questions and the answers given.
    for line in ("Pupil or family reference: AB123", "Reason: Attendance concerns", "Companion(s): Chris Companion",
                 "Your allergies: I have no allergies"):
        assert f"│ {line}" in demo, line
    assert "Sam Visitor (teacher) (DM), new:\n     │ Your home visit request for AB123" in demo
    assert "Jo Reid (DSL) (DM), new:\n     │ @Sam Visitor asks to make a home visit with @Chris Companion" in demo
    assert "[Approve] [Decline]" in demo and "Home visit request from @Sam Visitor: waiting for approval." in demo
    assert "due back at 10:45" in demo and "Still OK?" in demo and "Checked in at 10:20" in demo
    assert "only Alex Office sees: Home visits today" in demo
    assert "only Chris Companion sees: Home visits today" in demo  # the companion's view
    assert "#office (private), new:\n     │ ✅ @Sam Visitor, @Chris Companion are back from visit #1" in demo


def test_the_overdue_demo_plays_the_whole_ladder_then_reached_safe(overdue):
    part_two = overdue.split("Part two")[1]
    steps = sections(part_two)
    order = ["you were due back at 14:30", "OVERDUE", "NOT RETURNED, NOT REACHED", "CONTACT THE POLICE", "STILL NOT CONFIRMED SAFE", "Confirmed safe by @Jo Reid"]
    assert [min(i for i, s in enumerate(steps) if word in s) for word in order] == sorted(
        min(i for i, s in enumerate(steps) if word in s) for word in order)
    at = {word: next(s for s in steps if word in s) for word in order}
    # The visitor and the companion are asked first, each in their own DM.
    assert "you were due back" in seen_by(at[order[0]], "Sam Visitor") and "you were due back" in seen_by(at[order[0]], "Chris Companion")
    # The office: whose mobile is whose, and no address.
    office = seen_by(at["OVERDUE"], "#office")
    assert "@Sam Visitor's mobile\n     │ 07700 900000" in office and "@Chris Companion's mobile\n     │ 07700 900001" in office
    assert "Sample Close" not in office and "Address" not in office
    # Safeguarding and the DSL, with the address; the head and the DSL with the police step; one repeat.
    assert "4 Sample Close" in seen_by(at["NOT RETURNED, NOT REACHED"], "#safeguarding")
    assert "NOT RETURNED" in seen_by(at["NOT RETURNED, NOT REACHED"], "Jo Reid")
    police = at["CONTACT THE POLICE"]
    assert "The police will ask for" in seen_by(police, "Pat Head") and "CONTACT THE POLICE" in seen_by(police, "Jo Reid")
    assert "reminder 1" in seen_by(at["STILL NOT CONFIRMED SAFE"], "Pat Head") and "reminder 2" not in part_two
    # Reached, safe: the note typed in the form, then every copy says so, the companion's too.
    done = at["Confirmed safe by @Jo Reid"]
    assert "How do you know they are safe?: Spoke to Sam at 15:47" in done
    for place in ("Sam Visitor", "Chris Companion", "Pat Head", "#office", "#safeguarding"):
        assert "Confirmed safe by @Jo Reid" in seen_by(done, place), place


def test_verbose_prints_the_bot_s_log_among_the_steps():
    result = visitsafe("demo", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "· log: INFO visitsafe.doctor: start-up check: Slack ok" in result.stdout


def test_every_emoji_code_the_bot_writes_is_drawn_on_a_plain_text_platform():
    """Google Chat (and the demo) draw :codes: from bot/emoji.py: one missing shows as raw text."""
    from pathlib import Path

    from bot.emoji import EMOJI

    root = Path(__file__).resolve().parent.parent
    written = {code for folder in ("flows", "commands", "bot/gchat") for path in [*(root / folder).glob("*.py"), root / "bot/interactions.py"]
               for code in re.findall(r":([a-z][a-z0-9_]*):", path.read_text(encoding="utf-8"))}
    written |= {"red_circle", "large_blue_circle"}  # commands/board.py picks one of the two in an f-string
    written -= {"emoji_code", "emoji", "fallback"}  # docstrings naming the notation, and an outbox key's separator
    assert sorted(written - set(EMOJI)) == []


def test_the_google_chat_demo_shows_each_person_the_same_visit(chat):
    """`visitsafe demo --platform google-chat`: the whole visit through POST /gchat/events and a simulated Chat API."""
    assert "in a simulated Google Chat on this computer" in chat and "Slack" not in chat
    assert "▤ Sam Visitor's form: Home visit: 1 of 2" in chat and "│ Companion(s): Chris Companion" in chat
    assert "Jo Reid (DSL) (DM), new:\n     │ @Sam Visitor asks to make a home visit with @Chris Companion" in chat
    assert "[Approve] [Decline]" in chat and "due back at 10:45" in chat and "Checked in at 10:20" in chat
    assert "only Alex Office sees: Home visits today" in chat and "🔵 #1 @Sam Visitor" in chat
    assert "#office (private), new:\n     │ ✅ @Sam Visitor, @Chris Companion are back from visit #1" in chat
    part_two = chat.split("Part two")[1]
    for words in ("you were due back at 14:30", "OVERDUE", "NOT RETURNED, NOT REACHED", "CONTACT THE POLICE",
                  "STILL NOT CONFIRMED SAFE", "How do you know they are safe?: Spoke to Sam at 15:47", "Confirmed safe by @Jo Reid"):
        assert words in part_two, words
    office = [s for s in sections(part_two) if "OVERDUE" in s][0]
    assert "07700 900000" in seen_by(office, "#office") and "Sample Close" not in seen_by(office, "#office")  # mobiles from the policy's staff
