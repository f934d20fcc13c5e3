"""End to end: emergencies (SOS, Need help, duress) and what may and may not end them."""
from __future__ import annotations

import json
import threading

import pytest

from bot.simslack import sign_request
from bot.simslack.driver import Driver
from bot.serving import Server
from commands import safety
from tests.conftest import COMPANION, DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in, out_at_ten


def dm_event(ws, user: str, text: str, event_id: str) -> str:
    """The signed-body of a message `user` types in their DM with the bot."""
    return json.dumps({
        "token": "unused", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback", "event_id": event_id, "event_time": 1,
        "event": {"type": "message", "channel_type": "im", "channel": "D" + user, "user": user, "text": text, "ts": "1.1"},
    })


def type_in_dm(ws, user: str, text: str, event_id: str, driver: Driver | None = None) -> None:
    body = dm_event(ws, user, text, event_id)
    (driver or ws.driver).post(body, headers={**sign_request(ws.secret, body), "Content-Type": "application/json"})


def test_many_typed_checkins_at_once_none_lost_to_a_locked_database(workspace, monkeypatch):
    """The duress word's scrypt hash (tens of ms) must not be computed while holding the write lock."""
    from flows import duress

    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")
    at(ws, 10, 30)
    # Whether each hash was computed inside a transaction on the thread computing it.
    inside: list[bool] = []
    hash_word = duress.hash_word

    def watched_hash(word, salt=None):
        inside.append(ws.runtime.store.db().conn.in_transaction)
        return hash_word(word, salt)

    monkeypatch.setattr(duress, "hash_word", watched_hash)
    server = Server(ws.runtime.wsgi, threads=50).start()
    try:
        driver = Driver(f"http://127.0.0.1:{server.port}/slack/events", ws.secret, ws.sim)
        typed: list[str] = []

        def type_checkin(n: int) -> None:
            typed.append(driver.command(REQUESTER, "/checkin", f"all fine {n}").text)

        typists = [threading.Thread(target=type_checkin, args=(n,)) for n in range(50)]
        for typist in typists:
            typist.start()
        for typist in typists:
            typist.join()
    finally:
        server.stop()
    assert len(inside) == 50 and not any(inside), "a duress hash was computed while holding the write lock"
    assert len(typed) == 50
    assert [t for t in typed if not t.startswith("Thanks, checked in at 10:30")] == []


def test_duress_word_typed_after_the_overdue_are_you_ok_raises_the_silent_alarm_with_the_usual_reply(workspace):
    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_and_checked_in(ws)
    at(ws, 10, 45)
    assert "you were due back at 10:45. Are you OK?" in ws.dms(REQUESTER)[-1].plain()  # no check-in pending now
    type_in_dm(ws, REQUESTER, "yes all fine", "Ev1")
    normal = ws.dms(REQUESTER)[-1].plain()
    assert alerts_in(ws, SAFEGUARDING_CHANNEL) == []
    type_in_dm(ws, REQUESTER, "Bluebell", "Ev2")
    assert ws.dms(REQUESTER)[-1].plain() == normal
    [alarm] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "SILENT ALARM" in alarm.plain()
    assert "SILENT ALARM" in ws.dms(DSL)[-1].plain()
    assert not any("SILENT ALARM" in m.plain() for m in ws.channel(OFFICE_CHANNEL))


def test_a_companions_sos_and_duress_alarm_name_who_raised_it_and_whose_visit_it_is(workspace):
    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, COMPANION, "snowdrop")
    out_at_ten(ws, "2h")
    ws.clock.set(ws.clock().replace(hour=10, minute=10))
    ws.driver.command(COMPANION, "/checkin", "snowdrop")
    [silent] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "SILENT ALARM* <@U11> used their duress word at 10:10 on visit #1 (<@U10>'s visit)" in silent.plain()
    ws.clock.set(ws.clock().replace(hour=10, minute=12))
    ws.driver.command(COMPANION, "/sos", "")
    sos = alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()
    assert "SOS* <@U11> raised an SOS at 10:12 on visit #1 (<@U10>'s visit)" in sos
    office = alerts_in(ws, OFFICE_CHANNEL)[-1].plain()
    assert "<@U11> raised an SOS" in office and "(<@U10>'s visit)" in office


def test_the_visitors_own_sos_still_reads_as_before(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.driver.command(REQUESTER, "/sos", "")
    assert "SOS* <@U10> raised an SOS at 10:00 on visit #1." in alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()


OPEN = "<@U10> typed /back at 10:52; the alarm stays open until someone confirms them safe"


@pytest.mark.parametrize("how", ["/back", "/back home", "I'm back"])
def test_back_during_an_sos_looks_normal_to_the_visitor_and_the_alarm_stays_open(workspace, how):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 10, 45)
    [are_you_ok] = [m for m in ws.dms(REQUESTER) if "Are you OK?" in m.plain()]
    ws.clock.set(ws.clock().replace(hour=10, minute=50))
    ws.driver.command(REQUESTER, "/sos", "")
    board_before = len(ws.channel(OFFICE_CHANNEL))
    sos_alerts = {place: [m.ts for m in alerts_in(ws, place)] for place in (SAFEGUARDING_CHANNEL, DSL, DEPUTY, OFFICE_CHANNEL)}
    ws.clock.set(ws.clock().replace(hour=10, minute=52))
    if how == "I'm back":
        ws.driver.click(REQUESTER, are_you_ok, "I'm back")
        reply = ws.sim.ephemerals(REQUESTER)[-1].text
    else:
        reply = ws.driver.command(REQUESTER, "/back", how.removeprefix("/back").strip()).text
    where = "Safe home" if how == "/back home" else "Welcome back"
    assert reply == f"{where}: visit #1 is signed in at 10:52. Thank you. Please record the visit on CPOMS while it is fresh."
    # The visitor's own messages read as after any /back.
    visitor_view = [m.plain() for m in ws.dms(REQUESTER) if m.ts == are_you_ok.ts][0]
    assert "The alert is over" in visitor_view and "[" not in visitor_view
    # The responders are told, and every open alert says the alarm is still open.
    for place in (SAFEGUARDING_CHANNEL, DSL, DEPUTY):
        assert OPEN.replace("/back", "/back home" if how == "/back home" else "/back") in ws.sim.messages(place)[-1].plain()
        assert "[Reached, safe]" in ws.sim.messages(place)[-1].plain()
    for place, stamps in sos_alerts.items():
        for alert in [m.plain() for m in ws.sim.messages(place) if m.ts in stamps]:
            assert "the alarm stays open" in alert and "[Reached, safe]" in alert and "over" not in alert, alert
    assert len(ws.channel(OFFICE_CHANNEL)) == board_before  # no "is back" on the board
    assert ws.runtime.store.read().visit(1).state.value == "emergency"
    assert "not out on a visit" in ws.driver.command(REQUESTER, "/back").text  # as after any /back
    # The repeats go on until a responder confirms the visitor safe.
    at(ws, 11, 5)
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain()
    [sg_alert] = [m for m in ws.sim.messages(SAFEGUARDING_CHANNEL) if m.ts == sos_alerts[SAFEGUARDING_CHANNEL][0]]
    ws.driver.click(DSL, sg_alert, "Reached, safe", channel=SAFEGUARDING_CHANNEL)
    ws.driver.submit(DSL, {"note": "Phoned Sam at 11:06, safe at school"})
    assert ws.runtime.store.read().visit(1).state.value == "returned"
    calls = len(ws.sim.calls)
    at(ws, 11, 50)  # three repeat intervals on; the outcome reminder comes an hour after the sign-in (11:52)
    assert len(ws.sim.calls) == calls


def test_back_after_a_duress_alarm_keeps_it_open_and_nothing_the_visitor_or_the_board_sees_reveals_it(workspace):
    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")
    ws.clock.set(ws.clock().replace(hour=10, minute=20))
    board_before = [m.plain() for m in ws.channel(OFFICE_CHANNEL)]
    dms_before = len(ws.dms(REQUESTER))
    ws.driver.command(REQUESTER, "/checkin", "bluebell")
    assert "SILENT ALARM" in alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()
    ws.clock.set(ws.clock().replace(hour=10, minute=52))
    back = ws.driver.command(REQUESTER, "/back")
    assert back.text == "Welcome back: visit #1 is signed in at 10:52. Thank you. Please record the visit on CPOMS while it is fresh."
    for place in (SAFEGUARDING_CHANNEL, DSL, DEPUTY):
        assert OPEN in ws.sim.messages(place)[-1].plain()
    [alarm] = [m.plain() for m in ws.channel(SAFEGUARDING_CHANNEL) if "SILENT ALARM" in m.plain() or "do not message" in m.plain()][:1]
    assert "the alarm stays open" in alarm and "do not message them" in alarm
    # What the visitor (or someone over their shoulder) can see: the usual answers (the outcome question, as after
    # any /back), nothing more.
    assert [m.plain().split("?")[0] for m in ws.dms(REQUESTER)[dms_before:]] == ["How did visit #1 (AB123, Mon 23 Nov) go"]
    assert "not out on a visit" in ws.driver.command(REQUESTER, "/back").text
    assert "not out on a visit" in ws.driver.command(REQUESTER, "/checkin").text
    assert "back at 10:52" in ws.driver.command(REQUESTER, "/visits").text
    at(ws, 10, 53)
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain()  # the repeats go on
    [sg_alert] = [m for m in ws.channel(SAFEGUARDING_CHANNEL) if "[Reached, safe]" in m.plain()][:1]
    ws.driver.click(DSL, sg_alert, "Reached, safe", channel=SAFEGUARDING_CHANNEL)
    ws.driver.submit(DSL, {"note": "Police attended, Sam safe"})
    board = [m.plain() for m in ws.channel(OFFICE_CHANNEL)]
    assert board[: len(board_before)] == board_before
    for line in board[len(board_before):]:
        assert "is back from visit #1" in line or "are back from visit #1" in line, line
    assert not any(word in m.plain() for m in ws.dms(REQUESTER) for word in ("SILENT", "alarm", "Confirmed safe", "Police"))


def test_after_back_with_the_duress_word_the_visitor_is_signed_in_as_far_as_they_can_see(workspace):
    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=20))
    assert "Welcome back: visit #1 is signed in at 10:20" in ws.driver.command(REQUESTER, "/back", "bluebell").text
    assert "not out on a visit" in ws.driver.command(REQUESTER, "/back").text
    assert "back at 10:20" in ws.driver.command(REQUESTER, "/visits").text
    assert ws.runtime.store.read().visit(1).state.value == "emergency"
    at(ws, 10, 35)
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain()
