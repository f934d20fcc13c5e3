"""SMS and email through GOV.UK Notify (issue 15 items 1 and 4): the ladder texts when chat fails or nobody
acknowledges, exactly once, never with the child or the address, against a fake Notify that checks like the real one."""
from __future__ import annotations

import json
import urllib.request
from collections import Counter
from datetime import timedelta

import jwt
import pytest
import requests

from bot.simnotify import SimNotify
from tests.conftest import (
    COMPANION, DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, Workspace, make_policy,
)
from tests.test_check_config import GOOD, write
from tests.test_cli import visitsafe
from tests.test_e2e_safety import ADDRESS, alerts_in, at, out_and_checked_in

# Numbers as E.164 (Ofcom's drama range): what Notify is asked to text.
NUMBERS = {DSL: "+447700900001", HEAD: "+447700900002", DEPUTY: "+447700900009", OFFICE: "+447700900003"}
STAFF = {
    DSL: {"name": "Jo Reid", "mobile": "07700 900001"},
    HEAD: {"name": "Pat Head", "mobile": "07700 900002"},
    DEPUTY: {"name": "Dee Deputy", "mobile": "07700 900009"},
    OFFICE: {"name": "Alex Office", "mobile": "07700 900003"},
    REQUESTER: {"name": "Sam Visitor", "mobile": "07700 900010"},
    COMPANION: {"name": "Chris Companion", "mobile": "07700 900011"},
}
PUPIL_REF = "AB123"


@pytest.fixture
def notify():
    sim = SimNotify()
    sim.sms_template = sim.add_template("sms", "((message))")
    with sim:
        yield sim


def notify_workspace(tmp_path, clock, notify, monkeypatch, **changes) -> Workspace:
    """The test school with SMS through the fake Notify (NOTIFY_API_KEY and NOTIFY_BASE_URL from the environment)."""
    monkeypatch.setenv("NOTIFY_API_KEY", notify.api_key())
    monkeypatch.setenv("NOTIFY_BASE_URL", notify.base_url)
    notify.clock = lambda: clock().timestamp()
    policy = make_policy(notify={"sms_template": notify.sms_template}, staff=STAFF, **changes)
    return Workspace(tmp_path, policy, clock)


@pytest.fixture
def ws(tmp_path, clock, notify, monkeypatch):
    workspace = notify_workspace(tmp_path, clock, notify, monkeypatch)
    try:
        yield workspace
    finally:
        workspace.close()


def delivered_alerts(sim) -> Counter:
    """(destination, text) of every alert Slack accepted about visit #1, counted."""
    return Counter(
        (c.params["channel"], c.params["text"])
        for c in sim.calls_to("chat.postMessage")
        if not c.failed and "#1" in c.params["text"] and ("OVERDUE" in c.params["text"] or "NOT RETURNED" in c.params["text"])
    )


def step_until(ws, condition, seconds: int) -> None:
    """Tick once a second on the test clock until `condition()` holds, at most `seconds` s."""
    for _ in range(seconds):
        if condition():
            return
        ws.clock.advance(timedelta(seconds=1))
        ws.runtime.tick()
    assert condition()


def test_slack_down_for_the_whole_overdue_visit_the_dsl_is_texted_within_the_fallback_time_once(ws, notify):
    out_and_checked_in(ws)
    ws.sim.down()  # every Web API call 503 from here on
    at(ws, 11, 0)  # the office tier (its chat alert cannot be delivered)
    at(ws, 11, 15)  # safeguarding and the DSLs
    tier_time = ws.clock()
    step_until(ws, lambda: notify.sms_to(NUMBERS[DSL]), 90)
    [sms] = notify.sms_to(NUMBERS[DSL])
    late = sms.at - tier_time.timestamp()
    assert late <= ws.runtime.policy.delivery_fallback_after.total_seconds() + 2, late
    assert "Sam Visitor and Chris Companion were due back at 10:45" in sms.body and "07700 900010" in sms.body
    assert ADDRESS not in sms.body and PUPIL_REF not in sms.body and "01632 960123" not in sms.body
    # The office's staff were texted for the office tier the same way; nobody twice.
    assert len(notify.sms_to(NUMBERS[OFFICE])) == 1

    # Slack recovers: the chat alerts arrive, once each, and each says the alert has already gone by SMS.
    at(ws, 11, 20)
    ws.sim.up()
    for _ in range(5):
        ws.clock.advance(timedelta(seconds=3))
        ws.runtime.tick()
    sent = delivered_alerts(ws.sim)
    assert set(sent.values()) == {1}, sent
    places = {place for place, _ in sent}
    assert {OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY} <= places
    for place in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY):
        for message in alerts_in(ws, place):
            assert "Already sent by SMS to" in message.plain(), (place, message.plain())
    seen = "\n".join(m.plain() for m in alerts_in(ws, SAFEGUARDING_CHANNEL))
    assert f"Already sent by SMS to <@{DSL}> at 11:16" in seen, seen
    assert len(notify.sms_to(NUMBERS[DSL])) == 1


def test_an_sms_tier_texts_each_dsl_on_time_without_the_child_or_the_address(tmp_path, clock, notify, monkeypatch):
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["office", "sms:dsl"]}, {"after": "1h", "notify": ["head"]}]
    ws = notify_workspace(tmp_path, clock, notify, monkeypatch, escalation=ladder)
    try:
        out_and_checked_in(ws)
        at(ws, 10, 59)
        assert notify.sent == []
        at(ws, 11, 0)
        texted = {s.to: s for s in notify.sent}
        assert set(texted) == {NUMBERS[DSL], NUMBERS[DEPUTY]}
        body = texted[NUMBERS[DSL]].body
        assert body.startswith("VisitSafe Example Primary: OVERDUE. Sam Visitor and Chris Companion were due back at 10:45")
        assert ADDRESS not in body and PUPIL_REF not in body
        at(ws, 11, 5)
        assert len(notify.sent) == 2  # once each
        # The Notify request carried the outbox key as its reference.
        assert all(s.reference and ":t1:sms:" in s.reference for s in notify.sent)
    finally:
        ws.close()


def test_an_unacknowledged_tier_goes_by_sms_after_sms_after_and_an_acknowledged_one_does_not(tmp_path, clock, notify, monkeypatch):
    ws = notify_workspace(tmp_path, clock, notify, monkeypatch, sms_after="5m")
    try:
        out_and_checked_in(ws)
        at(ws, 11, 0)  # the office tier, delivered by chat
        assert alerts_in(ws, OFFICE_CHANNEL) and notify.sent == []
        at(ws, 11, 4)
        assert notify.sent == []
        at(ws, 11, 5)
        assert [s.to for s in notify.sent] == [NUMBERS[OFFICE]]
        # Acknowledged before sms_after: the next tier's people are not texted.
        at(ws, 11, 15)
        [tier2] = alerts_in(ws, SAFEGUARDING_CHANNEL)
        ws.driver.click(DSL, tier2, "I'm handling this")
        at(ws, 11, 25)
        assert [s.to for s in notify.sent] == [NUMBERS[OFFICE]]
    finally:
        ws.close()


def test_an_invalid_number_falls_back_to_the_next_person_and_healthz_says_whose(tmp_path, clock, notify, monkeypatch):
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["office", "sms:dsl"]}]
    ws = notify_workspace(tmp_path, clock, notify, monkeypatch, escalation=ladder)
    notify.invalid_numbers.add(NUMBERS[DSL])  # Notify says: not a UK mobile number
    try:
        out_and_checked_in(ws)
        at(ws, 11, 0)
        assert sorted(s.to for s in notify.sent) == [NUMBERS[HEAD], NUMBERS[DEPUTY]]
        [head] = notify.sms_to(NUMBERS[HEAD])
        assert "could not reach Jo Reid" in head.body
        health = json.loads(requests.get(ws.url.replace("/slack/events", "/healthz"), timeout=5).text)
        [waiting] = [a for a in health["outbox"]["waiting_alerts"] if a["to"] == f"sms:{DSL}"]
        assert waiting["refused"] and "invalid_recipient" in waiting["last_error"]
        assert health["notify"]["state"] in ("ok", "400 invalid_recipient") and health["status"] == "degraded"
        assert "07700" not in json.dumps(health)  # no number on /healthz
        at(ws, 11, 5)
        assert len(notify.sms_to(NUMBERS[HEAD])) == 1
    finally:
        ws.close()


@pytest.mark.parametrize("failure", [500, 429, "lost reply"])
def test_notify_failures_are_retried_and_a_lost_reply_is_not_sent_twice(tmp_path, clock, notify, monkeypatch, failure, caplog):
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["office", "sms:head"]}]
    ws = notify_workspace(tmp_path, clock, notify, monkeypatch, escalation=ladder)
    if failure == "lost reply":
        notify.fail(502, times=1, kind="sms", after_accepting=True)  # accepted, but the answer is a 502
    else:
        notify.fail(failure, times=2, kind="sms")
    try:
        out_and_checked_in(ws)
        at(ws, 11, 0)
        step_until(ws, lambda: notify.sms_to(NUMBERS[HEAD]) and ws.runtime.health()[1]["outbox"]["queued"] == 0, 10)
        assert len(notify.sms_to(NUMBERS[HEAD])) == 1
        if failure == "lost reply":
            assert ("GET", "/v2/notifications", 200) in notify.requests  # looked up by reference before resending
        assert "07700" not in caplog.text and "+44" not in caplog.text and "OVERDUE" not in caplog.text
    finally:
        ws.close()


def test_sim_notify_refuses_what_the_real_service_refuses(notify):
    url = notify.base_url + "/v2/notifications/sms"

    def post(token: str, body: dict) -> tuple[int, str]:
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    import time as _time
    good = {"phone_number": "07700 900001", "template_id": notify.sms_template, "personalisation": {"message": "hi"}}
    token = lambda **c: jwt.encode({"iss": notify.service_id, "iat": int(_time.time()), **c}, notify.secret, algorithm="HS256")  # noqa: E731
    assert post(token(), good)[0] == 201
    assert post(jwt.encode({"iss": notify.service_id, "iat": int(_time.time())}, "wrong-secret-wrong-secret-wrong!!", algorithm="HS256"), good)[0] == 403
    assert post(token(iss="someone-else"), good)[0] == 403
    assert post(token(iat=int(_time.time()) - 40), good)[0] == 403
    assert "Additional properties" in post(token(), {**good, "to": "x"})[1]
    assert "Missing personalisation: message" in post(token(), {**good, "personalisation": {}})[1]
    assert "Not a UK mobile number" in post(token(), {**good, "phone_number": "01632 960123"})[1]
    assert "Template not found" in post(token(), {**good, "template_id": "00000000-0000-4000-8000-000000000000"})[1]
    assert len(notify.sent) == 1


def test_check_config_names_each_mobile_that_cannot_be_texted_without_repeating_it(tmp_path):
    staff = {"U0DSL1": {"mobile": "020 7219 3000"}, "U0HEAD1": {"mobile": "12"}, "U0OFFICE1": {"mobile": "07700 900123"}}
    result = visitsafe("check-config", str(write(tmp_path, {**GOOD, "staff": staff})))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert "staff.U0DSL1.mobile: not a number VisitSafe can text (it is not a mobile number" in lines[0]
    assert "staff.U0HEAD1.mobile: not a number VisitSafe can text" in lines[1]
    assert "7219" not in result.stderr


@pytest.mark.parametrize("changes, words", [
    ({"escalation": [{"after": "0m", "notify": ["sms:dsl"]}]}, "escalation tier 1: 'sms:dsl' needs notify.sms_template"),
    ({"escalation": [{"after": "0m", "notify": ["sms:dsl"]}], "notify": {"sms_template": "8a6c2d1e-0b4f-4c6e-9d1a-2f3b4c5d6e7f"}},
     "escalation tier 1: 'sms:dsl' reaches U0DSL1, who has no mobile in the staff directory: add staff.U0DSL1.mobile"),
    ({"escalation": [{"after": "0m", "notify": ["sms:police"]}]}, "unknown audience 'sms:police'"),
    ({"notify": {"sms_template": "sms-1"}}, "notify.sms_template: 'sms-1' is not a GOV.UK Notify template id"),
    ({"sms_after": "10m"}, "sms_after: needs a notify: section"),
])
def test_policy_refuses_sms_that_could_not_be_sent(tmp_path, changes, words):
    result = visitsafe("check-config", str(write(tmp_path, {**GOOD, **changes})))
    assert result.returncode == 2 and words in result.stderr, result.stderr
