"""End to end: emergencies (SOS, Need help, duress) and what may and may not end them."""
from __future__ import annotations

import json
import threading

from bot.simslack import sign_request
from bot.simslack.driver import Driver
from bot.serving import Server
from commands import safety
from tests.conftest import COMPANION, DSL, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL
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
    import storage.store

    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")
    at(ws, 10, 30)
    # A busy server: many request threads, and a lock wait a little shorter than production's.
    monkeypatch.setattr(storage.store, "BUSY_TIMEOUT_S", 2.0)
    server = Server(ws.runtime.wsgi, threads=100).start()
    try:
        driver = Driver(f"http://127.0.0.1:{server.port}/slack/events", ws.secret, ws.sim)
        typed: list[str] = []

        def type_checkin(n: int) -> None:
            typed.append(driver.command(REQUESTER, "/checkin", f"all fine {n}").text)

        typists = [threading.Thread(target=type_checkin, args=(n,)) for n in range(100)]
        for typist in typists:
            typist.start()
        for typist in typists:
            typist.join()
    finally:
        server.stop()
    assert len(typed) == 100
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
