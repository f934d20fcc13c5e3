"""End to end: a visit a responder closes with "Reached, safe" (no /back) is over for its team too: the visitor, and
only they, is asked its outcome as after /back, the CPOMS timers start at the confirmation, and after a silent
(duress) alarm nothing the visitor sees reveals it."""
from __future__ import annotations

from commands import safety
from tests.conftest import COMPANION, DSL, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in, out_at_ten

QUESTION = "How did visit #1 (AB123, Mon 23 Nov) go? Choose the outcome"
BUTTONS = "[No concerns] [Nobody home] [Safeguarding concern] [Incident] [Left: felt unsafe] [Allegation made]"
REVEALING = ("SILENT", "alarm", "ALARM", "duress", "Confirmed safe", "Police", "police", "emergency", "SOS")


def confirm_safe(ws, place, note):
    """A responder in `place` clicks Reached, safe on the visit's alert there and gives a note."""
    responder = {OFFICE_CHANNEL: OFFICE, SAFEGUARDING_CHANNEL: DSL}[place]
    [alert] = [m for m in ws.channel(place) if "[Reached, safe]" in m.plain()][:1]
    ws.driver.click(responder, alert, "Reached, safe", channel=place)
    ws.driver.submit(responder, {"note": note})
    assert ws.runtime.store.read().visit(1).state.value == "returned"


def asked(ws, who):
    return [m for m in ws.dms(who) if "How did visit #1" in m.plain() or "has no outcome yet" in m.plain()]


def test_reached_safe_without_back_asks_the_visitor_only_and_starts_the_record_timers_then(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 10)
    assert alerts_in(ws, OFFICE_CHANNEL)
    ws.clock.set(ws.clock().replace(hour=11, minute=16))
    confirm_safe(ws, OFFICE_CHANNEL, "Spoke to Sam at 11:16, car broke down")
    [question] = asked(ws, REQUESTER)
    assert question.plain().startswith(QUESTION) and BUTTONS in question.plain()
    assert asked(ws, COMPANION) == []
    # The one reminder an hour after the confirmation.
    at(ws, 12, 15)
    assert len(asked(ws, REQUESTER)) == 1
    at(ws, 12, 16)
    assert "Reminder: visit #1 (AB123, Mon 23 Nov) has no outcome yet" in asked(ws, REQUESTER)[-1].plain()
    assert asked(ws, COMPANION) == []
    ws.driver.click(REQUESTER, question, "No concerns")
    [record] = [m for m in ws.dms(REQUESTER) if "on CPOMS by" in m.plain()]
    assert "Record visit #1 (AB123, Mon 23 Nov) on CPOMS by *Tue 24 Nov 11:16*" in record.plain()
    # The CPOMS reminder at half the deadline after the confirmation.
    at(ws, 23, 15)
    assert not [m for m in ws.dms(REQUESTER) if "is not recorded on CPOMS yet" in m.plain()]
    at(ws, 23, 16)
    [reminder] = [m for m in ws.dms(REQUESTER) if "is not recorded on CPOMS yet" in m.plain()]
    assert "It must be by *Tue 24 Nov 11:16*" in reminder.plain()


def test_after_a_silent_alarm_the_visitor_is_asked_the_same_question_and_sees_nothing_of_the_alarm(workspace):
    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")
    ws.clock.set(ws.clock().replace(hour=10, minute=20))
    dms_before = len(ws.dms(REQUESTER))
    ws.driver.command(REQUESTER, "/checkin", "bluebell")
    assert "SILENT ALARM" in alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()
    ws.clock.set(ws.clock().replace(hour=10, minute=40))
    confirm_safe(ws, SAFEGUARDING_CHANNEL, "Police attended, Sam safe")
    # Exactly the question a plain /back brings, nothing more.
    seen = [m.plain() for m in ws.dms(REQUESTER)[dms_before:]]
    assert len(seen) == 1 and seen[0].startswith(QUESTION) and BUTTONS in seen[0], seen
    assert asked(ws, COMPANION) == []
    answer = ws.driver.click(REQUESTER, ws.dms(REQUESTER)[-1], "No concerns")
    assert answer is not None
    [record] = [m for m in ws.dms(REQUESTER) if "on CPOMS by" in m.plain()]
    assert "on CPOMS by *Tue 24 Nov 10:40*" in record.plain()
    at(ws, 11, 40)
    seen = [m.plain() for m in ws.dms(REQUESTER)[dms_before:]] + [e.text for e in ws.sim.ephemerals(REQUESTER)]
    assert not any(word in text for text in seen for word in REVEALING), seen
    assert "back at 10:40" in ws.driver.command(REQUESTER, "/visits").text
