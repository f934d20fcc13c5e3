"""End to end: the safety net through the real Bolt app, the sweep, the outbox and a simulated Slack."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest

from tests.conftest import (
    DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, make_policy, visit_form,
)
from tests.test_e2e_slack import approval_dm, request_visit

ADDRESS = "12 Example Road"


def out_at_ten(ws, duration="45m"):
    """Request, both approvals, then /out at 10:00 (due back 10:45 by default)."""
    request_visit(ws)
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")
    ws.clock.set(ws.clock().replace(hour=10, minute=0))
    answer = ws.driver.command(REQUESTER, "/out", duration)
    assert "You are out on visit #1" in answer.text, answer.text
    ws.runtime.tick()


def at(ws, hour, minute):
    """Move the clock to hh:mm (London = UTC in November) and run one sweep."""
    ws.clock.set(ws.clock().replace(hour=hour, minute=minute))
    ws.runtime.tick()


def texts(messages):
    return [m.plain() for m in messages]


ALERT_WORDS = ("OVERDUE", "NOT RETURNED", "POLICE", "Visit #1 alert", "SOS", "SILENT ALARM", "STILL NOT")


def alerts_in(ws, place):
    """Alert messages about visit #1 in a channel or DM, as they read now."""
    return [m for m in ws.sim.messages(place) if "#1" in m.plain() and any(w in m.plain() for w in ALERT_WORDS)]


def answer_checkin(ws):
    [prompt] = [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    ws.driver.click(REQUESTER, prompt, "I'm OK")


def out_and_checked_in(ws):
    """Out at 10:00 (due back 10:45), the 10:30 check-in answered: only the ladder is left."""
    out_at_ten(ws)
    at(ws, 10, 30)
    answer_checkin(ws)


def test_overdue_visit_escalates_tier_by_tier_and_back_stops_it(workspace):
    ws = workspace
    out_at_ten(ws)
    at(ws, 10, 30)
    assert "Still OK?" in ws.dms(REQUESTER)[-1].plain()
    answer_checkin(ws)
    assert "Checked in at 10:30" in texts(ws.dms(REQUESTER))[-1]  # the prompt now shows the answer

    at(ws, 10, 44)
    assert alerts_in(ws, OFFICE_CHANNEL) == []
    at(ws, 10, 45)
    due = ws.dms(REQUESTER)[-1].plain()
    assert "you were due back at 10:45. Are you OK?" in due and "[I'm back] [Extend] [Need help]" in due
    assert alerts_in(ws, OFFICE_CHANNEL) == []

    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    seen = office.plain()
    assert "OVERDUE" in seen and "07700 900010" in seen and "07700 900011" in seen  # both mobiles, from Slack profiles
    assert "AB12 CDE" in seen and "01632 960123" in seen
    assert ADDRESS not in seen  # the office channel gets no address
    assert "[I'm handling this] [Reached, safe] [No answer]" in seen
    assert alerts_in(ws, SAFEGUARDING_CHANNEL) == []

    at(ws, 11, 15)
    [safeguarding] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "NOT RETURNED, NOT REACHED" in safeguarding.plain() and ADDRESS in safeguarding.plain()
    for dsl in (DSL, DEPUTY):
        assert "NOT RETURNED" in ws.dms(dsl)[-1].plain() and ADDRESS in ws.dms(dsl)[-1].plain()
    assert not any("POLICE" in t for t in texts(ws.dms(HEAD)))

    at(ws, 11, 45)
    police = ws.dms(HEAD)[-1].plain()
    assert "CONTACT THE POLICE" in police and "vehicle (registration" in police and ADDRESS in police
    assert "CONTACT THE POLICE" in ws.dms(DSL)[-1].plain()

    # Each tier exactly once, however often the sweep runs.
    for _ in range(3):
        ws.runtime.tick()
    assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1 and len(alerts_in(ws, SAFEGUARDING_CHANNEL)) == 1

    sent_alerts = {place: [m.ts for m in alerts_in(ws, place)] for place in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY, HEAD)}
    assert all(sent_alerts.values())
    ws.clock.set(ws.clock().replace(hour=11, minute=50))
    back = ws.driver.command(REQUESTER, "/back")
    assert "Welcome back" in back.text
    # Every alert message, wherever it went, now says the visitors signed in, with no buttons left.
    for place, stamps in sent_alerts.items():
        now_reads = [m.plain() for m in ws.sim.messages(place) if m.ts in stamps]
        assert len(now_reads) == len(stamps)
        assert all("signed in (back)* at 11:50" in t and "[" not in t for t in now_reads), now_reads
    calls = len(ws.sim.calls)
    at(ws, 12, 45)  # three repeat intervals on; the outcome reminder comes an hour after /back (12:50)
    assert len(ws.sim.calls) == calls  # nothing more once back


def test_im_handling_this_pauses_the_next_tier_then_the_ladder_resumes(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 5)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    ws.driver.click(OFFICE, office, "I'm handling this")
    assert "You are handling visit #1" in ws.sim.ephemerals(OFFICE)[-1].text
    assert "is handling this since 11:05" in alerts_in(ws, OFFICE_CHANNEL)[0].plain()
    # A second click: first click wins.
    ws.driver.click(HEAD, office, "I'm handling this", channel=OFFICE_CHANNEL)
    assert "already handling this" in ws.sim.ephemerals(HEAD)[-1].text
    at(ws, 11, 15)
    assert alerts_in(ws, SAFEGUARDING_CHANNEL) == []  # paused until 11:20
    at(ws, 11, 20)
    [safeguarding] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "<@U03> was handling this since 11:05." in safeguarding.plain()


def test_confirmed_safe_with_a_note_ends_the_alert_everywhere(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 15)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    ws.driver.click(OFFICE, office, "Reached, safe")
    assert ws.driver.view(OFFICE)["title"]["text"] == "Confirm safe"
    empty = ws.driver.submit(OFFICE, {"note": None})
    assert empty.body["response_action"] == "errors"
    ws.driver.submit(OFFICE, {"note": "Spoke to Sam at 11:16, car broke down, on the way back"})
    for place in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY):
        [alert] = alerts_in(ws, place)
        assert "Confirmed safe" in alert.plain() and "car broke down" in alert.plain() and "[" not in alert.plain()
    assert ws.runtime.store.read().visit(1).state.value == "returned"
    calls = len(ws.sim.calls)
    at(ws, 12, 14)  # the ladder would have reached the head; only the outcome reminder (12:15) is still to come
    assert len(ws.sim.calls) == calls
    # A click on the resolved alert changes nothing and says why.
    ws.driver.click(HEAD, office, "No answer", channel=OFFICE_CHANNEL)
    assert "already over" in ws.sim.ephemerals(HEAD)[-1].text


def test_exhausted_ladder_repeats_to_every_dsl_and_the_head_until_confirmed(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 45)  # catch-up: every tier up to the police one
    heads_before = len(ws.dms(HEAD))
    at(ws, 12, 0)  # repeat_interval 15m
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain() and "reminder 1" in ws.dms(HEAD)[-1].plain()
    assert "reminder 1" in ws.dms(DEPUTY)[-1].plain() and "reminder 1" in ws.dms(DSL)[-1].plain()
    at(ws, 12, 15)
    assert "reminder 2" in ws.dms(HEAD)[-1].plain()
    assert len(ws.dms(HEAD)) == heads_before + 2


def test_extend_retimes_the_ladder_and_updates_the_board(workspace):
    ws = workspace
    out_and_checked_in(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=40))
    assert "Now due back at *11:05*" in ws.driver.command(REQUESTER, "/extend", "20m").text
    assert "now due back *11:05*" in ws.channel(OFFICE_CHANNEL)[-1].plain()
    at(ws, 11, 0)
    assert alerts_in(ws, OFFICE_CHANNEL) == []
    at(ws, 11, 20)
    assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1


@pytest.mark.parametrize("text, expected", [("45x", "'45x' is not a duration or a time: use `/extend 20m`"), ("-5m", "not a duration"), ("0m", "more than zero"), ("", "Say how much longer")])
def test_extend_with_bad_input_says_what_it_expected(workspace, text, expected):
    ws = workspace
    out_at_ten(ws)
    answer = ws.driver.command(REQUESTER, "/extend", text)
    assert expected in answer.text
    assert ws.runtime.store.read().visit(1).expected_return.strftime("%H:%M") == "10:45"


def test_checkin_with_no_visit_out_is_a_clear_answer(workspace):
    assert "not out on a visit" in workspace.driver.command(REQUESTER, "/checkin").text


def test_missed_checkin_starts_the_ladder(workspace):
    ws = workspace
    out_at_ten(ws, "2h")
    at(ws, 10, 30)
    assert "Still OK?" in ws.dms(REQUESTER)[-1].plain()
    at(ws, 10, 40)  # grace 10m: missed
    assert "did not answer the check-in" in ws.dms(REQUESTER)[-1].plain()
    at(ws, 10, 55)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert "did not answer the check-in due at 10:40" in office.plain()


def test_sos_reaches_safeguarding_dsl_and_office_at_once(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=10))
    answer = ws.driver.command(REQUESTER, "/sos", "man shouting <!channel>, leaving")
    assert "Call 999" in answer.text
    [sg] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "SOS" in sg.plain() and ADDRESS in sg.plain() and "Call 999" in sg.plain() and "&lt;!channel&gt;" in sg.plain()
    assert "SOS" in ws.dms(DSL)[-1].plain() and "SOS" in ws.dms(DEPUTY)[-1].plain()
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert "SOS" in office.plain() and ADDRESS not in office.plain()
    at(ws, 10, 25)
    assert "STILL NOT CONFIRMED SAFE" in ws.dms(HEAD)[-1].plain()


def test_duress_word_looks_normal_to_the_visitor_and_raises_a_silent_alarm(workspace):
    ws = workspace
    ws.driver.command(REQUESTER, "/visitsafe", "duress")
    too_short = ws.driver.submit(REQUESTER, {"word": "ab"})
    assert "at least 4 letters" in too_short.body["errors"]["word"]
    saved = ws.driver.submit(REQUESTER, {"word": "Bluebell"})
    assert saved.body["response_action"] == "update"
    stored = ws.runtime.store.db().execute("SELECT salt, digest FROM duress_words").fetchall()
    assert len(stored) == 1 and b"bluebell" not in stored[0][1]

    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=20))
    board_before = len(ws.channel(OFFICE_CHANNEL))
    duress = ws.driver.command(REQUESTER, "/back", "bluebell")
    assert duress.text == "Welcome back: visit #1 is signed in at 10:20. Thank you. Please record the visit on CPOMS while it is fresh."
    [alarm] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    assert "SILENT ALARM" in alarm.plain() and ADDRESS in alarm.plain()
    assert "SILENT ALARM" in ws.dms(DSL)[-1].plain()
    assert len(ws.channel(OFFICE_CHANNEL)) == board_before  # nothing the visitor's colleagues could see
    assert ws.runtime.store.read().visit(1).state.value == "emergency"
    trail = ws.runtime.store.read().audit_trail(1)
    assert "bluebell" not in str(trail).lower()


def test_duress_word_in_checkin_and_typed_reply(workspace):
    ws = workspace
    from commands import safety

    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")
    at(ws, 10, 30)
    normal = ws.driver.command(REQUESTER, "/checkin", "")
    at(ws, 11, 0)
    duress = ws.driver.command(REQUESTER, "/checkin", "Bluebell")
    assert duress.text.replace("11:00", "T").replace("11:30", "N") == normal.text.replace("10:30", "T").replace("11:00", "N")
    assert "SILENT ALARM" in alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()


def test_typed_checkin_answer_with_duress_word(workspace):
    import json

    from bot.simslack import sign_request
    from commands import safety

    ws = workspace
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws, "2h")

    def type_in_dm(text, event_id):
        event = {
            "token": "unused", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback", "event_id": event_id, "event_time": 1,
            "event": {"type": "message", "channel_type": "im", "channel": "D" + REQUESTER, "user": REQUESTER, "text": text, "ts": "1.1"},
        }
        body = json.dumps(event)
        ws.driver.post(body, headers={**sign_request(ws.secret, body), "Content-Type": "application/json"})

    at(ws, 10, 30)
    type_in_dm("all fine", "Ev1")  # an ordinary typed answer is "I'm OK"
    assert "Thanks, checked in at 10:30" in ws.dms(REQUESTER)[-1].plain()
    assert alerts_in(ws, SAFEGUARDING_CHANNEL) == []
    at(ws, 11, 0)
    type_in_dm("bluebell", "Ev2")
    assert "Thanks, checked in at 11:00" in ws.dms(REQUESTER)[-1].plain()
    assert "SILENT ALARM" in alerts_in(ws, SAFEGUARDING_CHANNEL)[-1].plain()


def test_slack_answering_429_then_500_then_recovering_loses_and_duplicates_nothing(workspace):
    ws = workspace
    out_and_checked_in(ws)
    ws.sim.fail("chat.postMessage", 429, times=2, retry_after=1)
    at(ws, 11, 15)  # catch-up: visitor, office, safeguarding + DSLs all due
    assert alerts_in(ws, OFFICE_CHANNEL) == []
    ws.sim.fail("chat.postMessage", 500, times=3)
    for seconds in range(1, 30):
        ws.clock.advance(timedelta(seconds=1))
        ws.runtime.dispatcher.drain()
    assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1
    assert len(alerts_in(ws, SAFEGUARDING_CHANNEL)) == 1
    for dsl in (DSL, DEPUTY):
        assert sum("NOT RETURNED" in t for t in texts(ws.dms(dsl))) == 1
    posted = [c for c in ws.sim.calls_to("chat.postMessage") if not c.failed]
    keys = [(c.params["channel"], c.params["text"]) for c in posted]
    assert len(keys) == len(set(keys))
    # In order per destination: the visitor's "due back" came before nothing else was skipped.
    order = [c.params["channel"] for c in posted if c.params["channel"] in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL)]
    assert order == [OFFICE_CHANNEL, SAFEGUARDING_CHANNEL] or order.index(OFFICE_CHANNEL) >= 0
    assert ws.runtime.health()[1]["outbox"]["queued"] == 0


def test_alert_undeliverable_to_a_channel_goes_to_the_dsls_too(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="60s"), clock)
    try:
        out_and_checked_in(ws)
        ws.sim.lose_channel(OFFICE_CHANNEL)  # someone removed the bot from the office channel
        at(ws, 11, 0)
        assert alerts_in(ws, OFFICE_CHANNEL) == []
        healthy, status = ws.runtime.health()
        assert not healthy and status["status"] == "degraded" and status["outbox"]["failed"] == 0
        # Never given up on: it waits, and /healthz says where and why (ids and codes only).
        [waiting] = status["outbox"]["waiting_alerts"]
        assert (waiting["visit"], waiting["to"], waiting["last_error"], waiting["refused"]) == (1, OFFICE_CHANNEL, "not_in_channel", True)
        for person in (DSL, DEPUTY, HEAD):
            [copy] = [t for t in texts(ws.dms(person)) if "could not be delivered to <#C0OFFICE>" in t]
            assert "OVERDUE" in copy and "07700 900010" in copy
        at(ws, 11, 1)
        assert sum("could not be delivered" in t for t in texts(ws.dms(DSL))) == 1  # once
    finally:
        ws.close()


def test_alert_held_up_by_an_outage_falls_back_after_the_policy_time(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(delivery_fallback_after="60s"), clock)
    try:
        out_and_checked_in(ws)
        ws.sim.down()
        at(ws, 11, 0)
        at(ws, 11, 0)
        assert ws.runtime.health()[1]["outbox"]["late"] == 0
        ws.clock.set(ws.clock().replace(hour=11, minute=1, second=1))
        ws.runtime.tick()
        assert ws.runtime.health()[1]["outbox"]["late"] >= 1
        ws.sim.up()
        at(ws, 11, 2)
        assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1
        assert any("could not be delivered to <#C0OFFICE> for 60 s" in t for t in texts(ws.dms(DSL)))
        assert ws.runtime.health()[1]["outbox"]["queued"] == 0
    finally:
        ws.close()


def test_checkin_after_the_expected_return_asks_for_extend_and_changes_nothing(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 10, 50)
    answer = ws.driver.command(REQUESTER, "/checkin")
    assert "You were due back at 10:45: use `/extend 20m`" in answer.text
    at(ws, 11, 0)
    assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1  # the ladder went on


def test_duress_word_with_no_visit_out_alerts_silently_and_shows_the_usual_answer(workspace):
    ws = workspace
    from commands import safety

    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    normal = ws.driver.command(REQUESTER, "/back")
    duress = ws.driver.command(REQUESTER, "/back", "bluebell")
    assert duress.text == normal.text and "not out on a visit" in duress.text
    [alarm] = [m for m in ws.channel(SAFEGUARDING_CHANNEL) if "SILENT ALARM" in m.plain()]
    assert "not on a recorded visit" in alarm.plain()
    assert ws.channel(OFFICE_CHANNEL) == []
    typo = ws.driver.command(REQUESTER, "/back", "bluebel")
    assert "Use `/back` when you are back" in typo.text
    assert len([m for m in ws.channel(SAFEGUARDING_CHANNEL) if "SILENT ALARM" in m.plain()]) == 1


def test_no_address_or_phone_number_reaches_the_log(workspace, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.INFO)
    ws = workspace
    out_at_ten(ws)
    ws.sim.fail("chat.postMessage", 500, times=2)
    at(ws, 11, 15)
    ws.clock.advance(timedelta(seconds=5))
    ws.runtime.dispatcher.drain()
    assert alerts_in(ws, SAFEGUARDING_CHANNEL)

    # A crash inside a command whose message carries what the user typed.
    from commands import safety

    def explode(*args, **kwargs):
        raise ValueError(f"bad value {ADDRESS} 01632 960123")

    monkeypatch.setattr(safety, "extend", explode)
    answer = ws.driver.command(REQUESTER, "/extend", "20m")
    assert "Something went wrong on our side and nothing was changed" in answer.text
    assert "ValueError" in caplog.text
    for private in (ADDRESS, "01632 960123", "07700 900010", "AB12 CDE"):
        assert private not in caplog.text


def test_a_restart_on_the_same_machine_takes_over_the_lease_of_the_dead_process_at_once(workspace):
    import socket
    import subprocess
    import sys

    ws = workspace
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    host = socket.gethostname()
    for holder, reclaimed in ((f"{host}:{os.getppid()}:alive", False), (f"other-host:{dead}:x", False), (f"{host}:{dead}:x", True)):
        with ws.runtime.store.transaction() as tx:
            tx.db.conn.execute("DELETE FROM leases")
            assert tx.acquire_lease("sweep", holder, ws.clock(), 3600)
        assert ws.runtime.reclaim_lease_of_dead_process() is reclaimed
        assert ws.runtime.ctx.store.read().lease_holder("sweep") == (None if reclaimed else holder)
    out_at_ten(ws)  # the tick inside now holds the lease: alerts flow again
    at(ws, 10, 30)
    assert "Still OK?" in ws.dms(REQUESTER)[-1].plain()


def two_approved(ws):
    """Visits #1 (10:00, 45m) and #2 (11:00, 30m), both approved; the clock at 10:00."""
    request_visit(ws)
    request_visit(ws, details=visit_form(pupil_ref="CD456", address="4 Sample Close", start_time="11:00", duration="30m"))
    for approver in (DSL, HEAD):
        for dm in [m for m in ws.dms(approver) if "[Approve]" in m.plain()]:
            ws.driver.click(approver, dm, "Approve")
    ws.clock.set(ws.clock().replace(hour=10, minute=0))


def test_a_round_of_visits_with_one_expected_return_and_next(workspace):
    ws = workspace
    two_approved(ws)
    choice = ws.driver.command(REQUESTER, "/out")
    assert "several approved visits" in choice.text
    picker = type("Reply", (), {"blocks": choice.body["blocks"], "channel": "D" + REQUESTER, "ts": "1", "text": ""})
    ws.driver.click(REQUESTER, picker, "All 2 as one round")
    started = ws.sim.ephemerals(REQUESTER)[-1].text
    assert "round of 2 visits, starting with #1" in started and "due back at *11:15*" in started
    board = ws.channel(OFFICE_CHANNEL)[-1].plain()
    assert "round of 2 home visits (#1 → #2)" in board and "now at #1" in board and "Example Road" not in board

    ws.clock.set(ws.clock().replace(hour=10, minute=40))
    moved = ws.driver.command(REQUESTER, "/next")
    assert "Now at visit #2 (CD456), 0 more after this; due back at *11:15*" in moved.text
    assert "moved on from #1 to #2 at 10:40" in ws.channel(OFFICE_CHANNEL)[-1].plain()
    assert "last visit of your round" in ws.driver.command(REQUESTER, "/next").text

    at(ws, 11, 45)  # overdue: the safeguarding tier names the address where they are now
    [alert] = [m for m in ws.sim.messages(SAFEGUARDING_CHANNEL) if "NOT RETURNED" in m.plain()]
    assert "4 Sample Close" in alert.plain() and "visit #2" in alert.plain()
    back = ws.driver.command(REQUESTER, "/back")
    assert "Welcome back: visit #2" in back.text
    store = ws.runtime.store.read()
    assert [store.visit(1).state.value, store.visit(2).state.value] == ["returned", "returned"]


def test_back_early_leaves_the_rest_of_the_round_approved(workspace):
    ws = workspace
    from commands import outing

    request_visit(ws)
    request_visit(ws, details=visit_form(pupil_ref="CD456", start_time="11:00"))
    for approver in (DSL, HEAD):
        for dm in [m for m in ws.dms(approver) if "[Approve]" in m.plain()]:
            ws.driver.click(approver, dm, "Approve")
    ws.clock.set(ws.clock().replace(hour=10, minute=0))
    outing.start_round(ws.runtime.ctx, REQUESTER, [1, 2], "")
    back = ws.driver.command(REQUESTER, "/back")
    assert "Not reached on this round: #2; they stay approved" in back.text
    assert "You are out on visit #2" in ws.driver.command(REQUESTER, "/out").text


def test_two_instances_on_one_database_never_double_alert(workspace):
    from bot.runtime import Runtime

    ws = workspace
    second = Runtime(ws.settings, ws.runtime.policy, ws.clock, process_before_response=True)
    try:
        out_at_ten(ws)
        for minute in (30, 45, 50, 55):
            ws.clock.set(ws.clock().replace(hour=10, minute=minute))
            second.tick()  # whichever instance holds the lease sweeps and sends; the other skips
            ws.runtime.tick()
        assert sum("Still OK?" in m.plain() for m in ws.dms(REQUESTER)) == 1
        ws.clock.set(ws.clock().replace(hour=11, minute=30))
        for runtime in (second, ws.runtime, second, ws.runtime):
            runtime.tick()
        assert len(alerts_in(ws, OFFICE_CHANNEL)) == 1 and len(alerts_in(ws, SAFEGUARDING_CHANNEL)) == 1
        posted = [c for c in ws.sim.calls_to("chat.postMessage") if not c.failed]
        assert len(posted) == len({(c.params["channel"], c.params["text"]) for c in posted})
    finally:
        second.stop()


def test_healthz_shows_a_step_far_past_its_time_and_recent_failures_only(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=30, second=31))  # check-in due at 10:30, no sweep yet
    with ws.runtime.store.transaction() as tx:
        tx.beat("sweep", ws.clock())  # the scheduler looks alive, but the step is 31 s late
    healthy, status = ws.runtime.health()
    assert not healthy and status["late_steps"] == 1
    ws.runtime.tick()
    assert ws.runtime.health() == (True, ws.runtime.health()[1]) and ws.runtime.health()[1]["late_steps"] == 0

    # Only a non-alert with a content error ends as failed (an alert is never given up).
    ws.sim.fail("chat.update", 200, times=1, error="invalid_blocks")
    answer_checkin(ws)
    at(ws, 10, 31)
    assert ws.runtime.health()[1]["outbox"]["failed"] == 1
    ws.clock.advance(timedelta(days=1, seconds=1))
    ws.runtime.tick()
    assert ws.runtime.health()[1]["outbox"]["failed"] == 0
