"""A drill's SMS and email (issue 15, drills meet Notify): labelled DRILL, never read as a real alarm, timed like the
compressed ladder, answered by the drill button, reported per person without a number; a real visit beside it unchanged."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL
from tests.test_e2e_drill import drill_messages, plain, seen
from tests.test_e2e_safety import ADDRESS, at, out_and_checked_in
from tests.test_notify import NUMBERS, PUPIL_REF, notify, notify_workspace  # noqa: F401 - the fake Notify fixture

# The test ladder with an SMS tier: the DSLs are texted at 30 min (at 30 s in a drill 60 times faster).
LADDER = [
    {"after": "0m", "notify": ["visitor"]},
    {"after": "15m", "notify": ["office"]},
    {"after": "30m", "notify": ["safeguarding", "sms:dsl"]},
    {"after": "60m", "notify": ["head", "dsl"]},
]
# What would make a reader act as if someone were in danger.
ALARM_WORDS = ("OVERDUE", "POLICE", "999", "SOS", "SILENT ALARM", "NOT CONFIRMED SAFE", "Phone them", "Mobile:")


def step(ws, seconds: int) -> None:
    """Tick once a second on the test clock for `seconds` s."""
    for _ in range(seconds):
        ws.clock.advance(timedelta(seconds=1))
        ws.runtime.tick()


def texts_to(notify, user):
    return [s.body for s in notify.sms_to(NUMBERS[user])]


@pytest.fixture
def ws(tmp_path, clock, notify, monkeypatch):  # noqa: F811
    workspace = notify_workspace(tmp_path, clock, notify, monkeypatch, escalation=LADDER, sms_after="5m")
    try:
        yield workspace
    finally:
        workspace.close()


def test_a_drills_texts_say_drill_first_and_a_real_visit_beside_it_gets_its_real_sms_once(ws, notify):  # noqa: F811
    out_and_checked_in(ws)  # real visit #1, due back 10:45
    at(ws, 11, 0)  # its office tier, delivered in chat and not acknowledged: the office is texted at 11:05
    at(ws, 11, 5)
    [real_office] = texts_to(notify, OFFICE)
    assert "OVERDUE" in real_office and "DRILL" not in real_office

    at(ws, 11, 14)
    ws.driver.command(HEAD, "/visitsafe", "drill 60")  # drill #2: the head is its visitor
    ws.runtime.tick()
    step(ws, 15)  # +15 s: the drill's office tier, in chat; nobody answers it
    assert drill_messages(ws, OFFICE_CHANNEL)
    step(ws, 4)
    assert len(texts_to(notify, OFFICE)) == 1  # 5 min unanswered at 60 times is 5 s: not yet
    step(ws, 1)
    [_, drill_office] = texts_to(notify, OFFICE)  # sms_after compressed like the ladder
    step(ws, 11)  # +31 s: its safeguarding tier texts the DSLs (the sms:dsl audience)
    step(ws, 29)  # +60 s = 11:15: the real tier texts the DSLs too, and the drill's last tier goes to the head and DSLs
    step(ws, 2)
    # Answered in chat by the drill button within 5 s: that tier is acknowledged, nobody texted for it.
    seen(ws, DSL, DSL)
    step(ws, 70)  # past the drill's end (+120 s) and its report

    real = [s for s in notify.sent if "#1" in s.body]
    assert sorted(s.to for s in real) == sorted([NUMBERS[OFFICE], NUMBERS[DSL], NUMBERS[DEPUTY]]), [s.to for s in real]
    for sms in real:
        assert sms.body.startswith("VisitSafe ") and "OVERDUE" in sms.body and "DRILL" not in sms.body, sms.body

    drill = [s for s in notify.sent if s not in real]
    assert drill, "the drill texted nobody"
    for sms in drill:
        assert sms.body.startswith("VisitSafe DRILL"), sms.body
        assert not [w for w in ALARM_WORDS if w in sms.body], sms.body
        assert "Seen (drill)" in sms.body or "is over" in sms.body, sms.body
        # Never the visiting team (the head running it), and nothing of the drill visit's made-up details.
        assert sms.to != NUMBERS[HEAD] and "07700 900002" not in sms.body
        assert "01632" not in sms.body and "no real visit" not in sms.body and ADDRESS not in sms.body and PUPIL_REF not in sms.body
    assert "tier 2 of 4" in drill_office
    # The drill's office tier went unanswered (texted), its SMS tier texted each DSL, its answered last tier texted nobody.
    drill_tiers = sorted((s.to, s.body.partition("tier ")[2][:1]) for s in drill if "is over" not in s.body)
    assert drill_tiers == sorted([(NUMBERS[OFFICE], "2"), (NUMBERS[DSL], "3"), (NUMBERS[DEPUTY], "3")]), drill_tiers
    # The drill's all-clear: to each person it texted, once, labelled too.
    over = sorted(s.to for s in drill if "is over" in s.body)
    assert over == sorted([NUMBERS[OFFICE], NUMBERS[DSL], NUMBERS[DEPUTY]]), over


def test_the_drill_report_names_each_person_texted_whether_notify_took_it_and_what_to_fix(ws, notify):  # noqa: F811
    notify.invalid_numbers.add(NUMBERS[DEPUTY])  # Notify says: not a UK mobile number
    ws.driver.command(HEAD, "/visitsafe", "drill 60")
    ws.runtime.tick()
    step(ws, 17)
    seen(ws, OFFICE, OFFICE_CHANNEL)  # the office tier answered in chat: its people are not texted
    step(ws, 104)
    [report] = [m for m in ws.dms(HEAD) if "DRILL REPORT" in plain(m)]
    text = plain(report)
    assert "Jo Reid by SMS: accepted by Notify" in text, text
    assert "Dee Deputy by SMS: NOT accepted by Notify" in text, text
    assert "check Dee Deputy's mobile in the staff directory" in text, text
    assert "Alex Office by SMS: on standby, not sent" in text, text
    # A text is answered by the chat button, never by SMS: nobody texted is listed as silent for it.
    never = text.partition("Never answered:")[2].partition("\n")[0]
    assert "Jo Reid" not in never and "Dee Deputy" not in never, never
    assert "07700" not in text and "+44" not in text
    # Tier 3 texts the DSLs, tier 4 (unanswered) too; never the office, whose tier was answered by the drill button.
    assert [s.to for s in notify.sent if "DRILL" in s.body and "is over" not in s.body] == [NUMBERS[DSL]] * 2
