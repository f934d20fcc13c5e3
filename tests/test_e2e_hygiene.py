"""End to end: what reaches the app over HTTP is checked before it acts (buttons, forms, replays, sizes, text)."""
from __future__ import annotations

import json
import logging
import socket
import urllib.parse

import pytest

from bot.runtime import Runtime
from bot.serving import Server
from bot.simslack import sign_request
from bot.simslack.driver import Driver
from flows import actions
from tests.conftest import (
    COMPANION, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, risk_form, visit_form,
)
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in, two_approved
from tests.test_e2e_slack import request_visit

CONTROL = "\x00\u202e\u2066\u200f\x07"


def state(ws, visit_id):
    return ws.runtime.store.read().visit(visit_id).state.value


def told(ws, user):
    return ws.sim.ephemerals(user)[-1].text


@pytest.fixture
def no_traceback(caplog):
    caplog.set_level(logging.INFO)
    yield caplog
    assert not [r for r in caplog.records if r.exc_info], "a traceback reached the log"


# Item 3: a round button's value is parsed strictly ------------------------------------------

@pytest.mark.parametrize("value", ["1,1|", "1,2,1", "1,2,1|", "1,\u00b2|", "01,2|", "1,2,|", "1, 2|", "1,99|", ",".join(["1"] * 50) + "|"])
def test_a_tampered_round_button_is_refused_and_changes_nothing(workspace, value, no_traceback):
    ws = workspace
    two_approved(ws)
    answer = ws.driver.action(REQUESTER, actions.START_ROUND, value)
    assert answer.status == 200
    assert "not one of mine" in told(ws, REQUESTER) or "no longer exists" in told(ws, REQUESTER)
    assert "out on a round" not in told(ws, REQUESTER)
    assert state(ws, 1) == "approved" and state(ws, 2) == "approved"
    assert ws.channel(OFFICE_CHANNEL) == []


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0661", "01", "1|", "", "99999999999999999999", "-1", " 1"])
def test_a_malformed_alert_button_value_gets_a_message_not_a_500(workspace, value, no_traceback):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 0)
    answer = ws.driver.action(OFFICE, actions.ALERT_NO_ANSWER, value, channel=OFFICE_CHANNEL)
    assert answer.status == 200
    assert "not one of mine" in told(ws, OFFICE)
    assert alerts_in(ws, SAFEGUARDING_CHANNEL) == []


def test_someone_elses_visits_cannot_be_started_as_a_round(workspace):
    ws = workspace
    two_approved(ws)
    ws.driver.action(OFFICE, actions.START_ROUND, "1,2|")
    assert "out on a round" not in told(ws, OFFICE)
    assert state(ws, 1) == "approved" and ws.channel(OFFICE_CHANNEL) == []


# Item 9: alert buttons act only while their alert is open; old buttons only on their own visit ---

def test_reached_safe_after_extend_is_refused_and_the_visit_stays_watched(workspace):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    ws.driver.click(OFFICE, office, "Reached, safe")  # the form opens while the alert is open
    assert ws.driver.view(OFFICE)["title"]["text"] == "Confirm safe"
    assert "Now due back" in ws.driver.command(REQUESTER, "/extend", "30m").text  # the alert closes
    answer = ws.driver.submit(OFFICE, {"note": "Saw them earlier"})
    assert answer.body["response_action"] == "errors" and "no open alert" in answer.body["errors"]["note"]
    ws.driver.click(OFFICE, office, "Reached, safe")
    assert "no open alert" in told(ws, OFFICE)
    assert state(ws, 1) == "out"
    at(ws, 11, 46)  # still watched: due back 11:30, the office is alerted again at 11:45
    assert len(alerts_in(ws, OFFICE_CHANNEL)) == 2 and "OVERDUE" in alerts_in(ws, OFFICE_CHANNEL)[-1].plain()


def test_old_visit_buttons_do_not_act_on_the_next_visit_but_need_help_always_goes(workspace):
    ws = workspace
    two_approved(ws)
    choice = ws.driver.command(REQUESTER, "/out")
    picker = type("Reply", (), {"blocks": choice.body["blocks"], "channel": "D" + REQUESTER, "ts": "1", "text": ""})
    ws.driver.click(REQUESTER, picker, "#1 AB123 10:00")
    at(ws, 10, 30)
    [prompt] = [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    at(ws, 10, 45)
    [due] = [m for m in ws.dms(REQUESTER) if "[I'm back]" in m.plain()]
    assert "Welcome back" in ws.driver.command(REQUESTER, "/back").text
    assert "You are out on visit #2" in ws.driver.command(REQUESTER, "/out").text

    ws.driver.click(REQUESTER, due, "I'm back")
    assert "visit #1" in told(ws, REQUESTER) and "/back" in told(ws, REQUESTER)
    assert state(ws, 2) == "out"
    ws.driver.action(REQUESTER, actions.CHECKIN_OK, "1")
    assert "visit #1" in told(ws, REQUESTER) and state(ws, 2) == "out"
    ws.driver.action(REQUESTER, actions.NEXT_VISIT, "1")
    assert "visit #1" in told(ws, REQUESTER)

    ws.driver.click(REQUESTER, prompt, "Need help")  # an old Need help button still raises the alarm
    assert state(ws, 2) == "emergency"
    assert [m for m in ws.sim.messages(SAFEGUARDING_CHANNEL) if "#2" in m.plain() and "SOS" in m.plain()]


# Item 12: replays, other workspaces, malformed requests, sizes, control characters, drafts ---

def test_a_replayed_signed_click_is_refused_and_acts_once(workspace, tmp_path):
    ws = workspace
    out_and_checked_in(ws)
    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    ws.driver.click(OFFICE, office, "No answer")
    body, headers = ws.driver.last
    ws.runtime.tick()
    tiers = len(alerts_in(ws, SAFEGUARDING_CHANNEL))
    assert tiers == 1
    replayed = ws.driver.post(body, headers)
    assert replayed.status == 401
    # A second process on the same database refuses it too.
    other = Runtime(ws.settings, ws.runtime.policy, ws.clock, process_before_response=True)
    server = Server(other.wsgi).start()
    try:
        to_other = Driver(f"http://127.0.0.1:{server.port}/slack/events", ws.secret, ws.sim).post(body, headers)
    finally:
        server.stop()
        other.stop()
    assert to_other.status == 401
    ws.runtime.tick()
    assert len(alerts_in(ws, SAFEGUARDING_CHANNEL)) == tiers  # the next tier (head) waits for its own time
    assert not [m for m in ws.dms(HEAD) if "#1" in m.plain()]


def _typed(ws, text, event_id):
    event = {
        "token": "unused", "team_id": ws.sim.team_id, "api_app_id": ws.sim.app_id, "type": "event_callback",
        "event_id": event_id, "event_time": 1,
        "event": {"type": "message", "channel_type": "im", "channel": "D" + REQUESTER, "user": REQUESTER, "text": text, "ts": "1.1"},
    }
    return json.dumps(event)


def test_slacks_own_retry_of_an_event_is_answered_without_acting_again(workspace):
    ws = workspace
    body = _typed(ws, "hello", "Ev1")
    headers = {**sign_request(ws.secret, body), "Content-Type": "application/json"}
    assert ws.driver.post(body, headers).status == 200
    dms = len(ws.dms(REQUESTER))
    retry_body = body
    retry = {**sign_request(ws.secret, retry_body, timestamp=int(headers["X-Slack-Request-Timestamp"]) + 1),
             "Content-Type": "application/json", "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert ws.driver.post(retry_body, retry).status == 200
    assert len(ws.dms(REQUESTER)) == dms


def test_requests_from_another_workspace_or_app_are_refused(workspace):
    ws = workspace
    out_and_checked_in(ws)
    for field, value in (("team_id", "T0THER"), ("api_app_id", "A0THER")):
        body = urllib.parse.urlencode({"team_id": ws.sim.team_id, "api_app_id": ws.sim.app_id, "user_id": REQUESTER,
                                       "command": "/sos", "text": "", "trigger_id": "t", field: value})
        assert ws.driver.post(body).status == 401
    payload = {"type": "block_actions", "team": {"id": "T0THER"}, "api_app_id": ws.sim.app_id, "user": {"id": REQUESTER},
               "actions": [{"type": "button", "action_id": actions.CHECKIN_HELP, "value": "1", "action_ts": "1"}]}
    assert ws.driver.post(urllib.parse.urlencode({"payload": json.dumps(payload)})).status == 401
    assert state(ws, 1) == "out" and ws.channel(SAFEGUARDING_CHANNEL) == []


def test_expected_workspace_can_come_from_the_environment(workspace):
    ws = workspace
    settings = ws.settings.model_copy(update={"slack_team_id": "T0SCHOOL", "slack_app_id": ws.sim.app_id})
    other = Runtime(settings, ws.runtime.policy, ws.clock, process_before_response=True)
    server = Server(other.wsgi).start()
    try:
        driver = Driver(f"http://127.0.0.1:{server.port}/slack/events", ws.secret, ws.sim)
        assert driver.command(REQUESTER, "/visits").status == 401  # the sim's T0001 is not the school's workspace
    finally:
        server.stop()
        other.stop()


def test_malformed_requests_get_a_clear_4xx_never_a_500(workspace, no_traceback):
    ws = workspace
    body = urllib.parse.urlencode({"payload": "{not json"})
    answer = ws.driver.post(body)
    assert answer.status == 400 and "not JSON" in answer.text
    headers = {**sign_request(ws.secret, "command=%2Fvisits"), "X-Slack-Request-Timestamp": "12x"}
    assert ws.driver.post("command=%2Fvisits", headers).status == 400
    assert ws.driver.post("{", {**sign_request(ws.secret, "{"), "Content-Type": "application/json"}).status == 400


def test_a_form_with_bad_metadata_says_it_has_expired(workspace, no_traceback):
    ws = workspace
    request_visit(ws)
    dm = [m for m in ws.dms(DSL) if "[Decline]" in m.plain()][0]
    ws.driver.click(DSL, dm, "Decline")
    view = ws.driver.view(DSL)
    for bad in ("\u00b2", "{}", "01", "1,2"):
        ws.driver.stacks[DSL] = [{**view, "private_metadata": bad}]
        answer = ws.driver.submit(DSL, {"reason": "no"})
        assert answer.status == 200 and "expired" in answer.body["errors"]["reason"]
    assert state(ws, 1) == "requested"


def _raw(port, head: bytes, body_chunks=()):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the body is all sent
        reply = b""
        try:
            while True:
                part = conn.recv(65536)
                if not part:
                    break
                reply += part
        except (ConnectionResetError, socket.timeout):
            pass
    return reply.split(b"\r\n", 1)[0]


def test_an_oversized_body_is_refused_before_it_is_read(workspace):
    port = workspace.server.port
    declared = _raw(port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 314572800\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n")
    assert b"413" in declared
    chunk = b"a" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 48 + [b"0\r\n\r\n"]  # 3 MiB, chunked
    chunked = _raw(port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n", chunks)
    assert b"413" in chunked


def test_control_and_bidi_characters_never_reach_slack_or_the_database(workspace):
    ws = workspace
    request_visit(ws, details=visit_form(pupil_ref="AB" + CONTROL + "123", travel_details="AB12\u202eCDE car"))
    ws.clock.set(ws.clock().replace(hour=10))
    for approver in (DSL, HEAD):
        [dm] = [m for m in ws.dms(approver) if "[Approve]" in m.plain()]
        ws.driver.click(approver, dm, "Approve")
    ws.driver.command(REQUESTER, "/out", "45m")
    ws.driver.command(REQUESTER, "/sos", "help" + CONTROL + " me\nnow")
    visit = ws.runtime.store.read().visit(1)
    stored = json.dumps([visit.details.pupil_ref, visit.details.travel_details, visit.watch.emergency_note], ensure_ascii=False)
    sent = json.dumps([c.params for c in ws.sim.calls], ensure_ascii=False)
    for ch in CONTROL:
        assert ch not in stored and ch not in sent
    assert "AB123" in sent and "help me\nnow" in visit.watch.emergency_note


def test_step_two_of_visit_keeps_the_draft_in_the_database_not_the_view(workspace):
    ws = workspace
    long = "Ж" * 290
    details = visit_form(address=long, travel_details=long, reason="other", reason_other=long,
                         parents_informed="no", parents_not_informed_reason=long)
    ws.driver.command(REQUESTER, "/visit")
    assert ws.driver.submit(REQUESTER, details).body["response_action"] == "push"
    assert len(ws.driver.view(REQUESTER)["private_metadata"]) <= 100
    assert ws.driver.submit(REQUESTER, risk_form()).body["response_action"] == "clear"
    assert ws.runtime.store.read().visit(1).details.address == long


def test_a_draft_submitted_by_someone_else_or_missing_has_expired(workspace):
    ws = workspace
    ws.driver.command(REQUESTER, "/visit")
    ws.driver.submit(REQUESTER, visit_form())
    step2 = ws.driver.view(REQUESTER)
    ws.driver.stacks[COMPANION] = [step2]
    stolen = ws.driver.submit(COMPANION, risk_form(companions=[REQUESTER]))
    assert stolen.body["response_action"] == "errors" and "expired" in json.dumps(stolen.body["errors"])
    ws.driver.stacks[COMPANION] = [{**step2, "private_metadata": "999"}]
    missing = ws.driver.submit(COMPANION, risk_form(companions=[REQUESTER]))
    assert "expired" in json.dumps(missing.body["errors"])
    assert ws.runtime.store.read().visit(1) is None
    # The owner's draft is intact: their own submission still works.
    assert ws.driver.submit(REQUESTER, risk_form()).body["response_action"] == "clear"
