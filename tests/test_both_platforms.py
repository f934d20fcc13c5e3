"""The stories that are the same on Slack and on Google Chat, played through the real app over HTTP on each.

Each test asks a `Site` (tests/platforms.py) to play the people and reads what they see as plain text,
so one test body proves one story on both platforms.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from flows import actions
from tests.conftest import risk_form, visit_form
from tests.platforms import PLATFORMS, Served, Site, make_site, needs_chat_endpoint
from tests.processes import pending, wait_for

ADDRESS = "12 Example Road"


@pytest.fixture(params=PLATFORMS)
def site(request, tmp_path, clock):
    made = make_site(request.param, tmp_path, clock)
    try:
        yield made
    finally:
        made.close()


def request_visit(site: Site, who: str = "requester", details: dict | None = None) -> None:
    """`who` fills in both steps of /visit, with the companion on the second."""
    assert site.command(who, "/visit").status == 200
    assert site.form_title(who)
    first = site.submit_form(who, details or visit_form())
    assert first.status == 200 and not first.text, first.text
    second = site.submit_form(who, risk_form(companions=[site.id("companion")]))
    assert second.status == 200 and not second.text, second.text


def approval(site: Site, approver: str):
    [message] = [m for m in site.messages(approver) if "Home visit request" in m.text or "asks to make a home visit" in m.text]
    return message


def out_at_ten(site: Site, duration: str = "45m") -> None:
    """Request, both approvals, then /out at 10:00 (due back 10:45 by default)."""
    request_visit(site)
    for approver in ("dsl", "head"):
        site.click(approver, approval(site, approver), "Approve")
    site.clock.set(site.clock().replace(hour=10, minute=0))
    answer = site.command("requester", "/out", duration)
    assert "You are out on visit #1" in answer.text, answer.text
    site.tick()


def answer_checkin(site: Site) -> None:
    [prompt] = [m for m in site.messages("requester") if "[I'm OK]" in m.text]
    site.click("requester", prompt, "I'm OK")


def test_request_approvals_out_and_back(site):
    request_visit(site)
    assert "is with: DSL, headteacher" in site.messages("requester")[0].text
    dsl = approval(site, "dsl")
    assert ADDRESS in dsl.text and "[Approve] [Decline]" in dsl.text and "Risk level: low" in dsl.text
    assert approval(site, "deputy") and approval(site, "head")
    assert site.messages("#office") == [] and site.messages("#safeguarding") == []  # nothing in a space before it starts

    site.click("dsl", dsl, "Approve")
    assert "one approval so far" in site.messages("requester")[-1].text
    assert "Approved by @Jo Reid" in approval(site, "deputy").text  # the other DSL's copy now shows the decision
    site.click("head", approval(site, "head"), "Approve")
    assert "is approved. Use /out" in site.messages("requester")[-1].text
    for approver in ("dsl", "head", "deputy"):
        assert "approved" in approval(site, approver).text and "[Approve]" not in approval(site, approver).text

    site.clock.advance(timedelta(hours=1))  # 10:00
    out = site.command("requester", "/out", "45m")
    assert out.status == 200 and "due back at 10:45" in out.text and "Code word agreed" in out.text
    board = site.messages("#office")[-1].text
    assert "due back 10:45" in board and "Example Road" not in board
    assert "out, due back 10:45" in site.command("head", "/visits").text

    site.clock.advance(timedelta(minutes=40))
    assert "Welcome back" in site.command("requester", "/back").text
    assert "are back from visit #1 at 10:40" in site.messages("#office")[-1].text
    assert site.store.read().visit(1).state.value == "returned"


def test_the_ladder_on_time_and_back_stops_it(site):
    out_at_ten(site)
    site.at(10, 30)
    assert "Still OK?" in site.messages("requester")[-1].text
    answer_checkin(site)
    assert "Checked in at 10:30" in site.messages("requester")[-1].text  # the prompt now shows the answer

    site.at(10, 44)
    assert site.alerts_in("#office") == []
    site.at(10, 45)
    due = site.messages("requester")[-1].text
    assert "you were due back at 10:45. Are you OK?" in due and "[I'm back] [Extend] [Need help]" in due
    assert site.alerts_in("#office") == []

    site.at(11, 0)
    [office] = site.alerts_in("#office")
    assert "OVERDUE" in office.text and "07700 900010" in office.text and "07700 900011" in office.text  # both mobiles
    assert "AB12 CDE" in office.text and ADDRESS not in office.text  # the office gets no address
    assert "[I'm handling this] [Reached, safe] [No answer]" in office.text
    assert site.alerts_in("#safeguarding") == []

    site.at(11, 15)
    [safeguarding] = site.alerts_in("#safeguarding")
    assert "NOT RETURNED, NOT REACHED" in safeguarding.text and ADDRESS in safeguarding.text
    for dsl in ("dsl", "deputy"):
        assert "NOT RETURNED" in site.messages(dsl)[-1].text
    assert not any("POLICE" in m.text for m in site.messages("head"))

    site.at(11, 45)
    assert "CONTACT THE POLICE" in site.messages("head")[-1].text and ADDRESS in site.messages("head")[-1].text
    for _ in range(3):  # each step exactly once, however often the sweep runs
        site.tick()
    site.assert_each_alert_once_in_order({"requester": 1, "#office": 1, "#safeguarding": 1, "dsl": 2, "deputy": 2, "head": 1})

    alerts = {place: [m.id for m in site.alerts_in(place)] for place in ("#office", "#safeguarding", "dsl", "deputy", "head")}
    site.clock.set(site.clock().replace(hour=11, minute=50))
    assert "Welcome back" in site.command("requester", "/back").text
    for place, ids in alerts.items():  # every alert, wherever it went, now says so, with no buttons left
        now = [m.text for m in site.messages(place) if m.id in ids]
        assert len(now) == len(ids) and all("signed in (back) at 11:50" in t and "[" not in t for t in now), now
    sent = site.delivered_alerts()
    site.at(13, 0)
    assert site.delivered_alerts() == sent  # nothing more once back


def test_an_outage_delays_the_alerts_and_loses_none(site):
    out_at_ten(site)
    site.at(10, 30)
    answer_checkin(site)
    site.at(10, 44)
    site.fail_for_a_while()
    site.at(11, 15)  # the bot catches up: the visitor, the office, safeguarding and the DSLs fall due at once
    for _ in range(4):
        site.clock.advance(timedelta(seconds=10))
        site.tick()
    assert site.delivered_alerts() == []
    site.recover()  # after 40 s: before an undelivered alert would fall back to other people
    recovered = site.clock()
    expected = {"requester": 1, "#office": 1, "#safeguarding": 1, "dsl": 1, "deputy": 1}
    while len(site.delivered_alerts()) < sum(expected.values()):
        assert site.clock() - recovered < timedelta(seconds=30), site.delivered_alerts()
        site.clock.advance(timedelta(seconds=1))
        site.tick()
    delay = (site.clock() - recovered).total_seconds()
    for _ in range(5):  # and nothing twice afterwards
        site.clock.advance(timedelta(seconds=5))
        site.tick()
    site.assert_each_alert_once_in_order(expected)
    assert delay <= 3, delay  # the outbox's alert backoff is capped at 2 s


def test_a_tampered_button_value_is_refused_and_changes_nothing(site):
    request_visit(site)
    for value in ("2", "1,1", "01", "\u0661", "-1", ""):
        answer = site.tampered_click("head", actions.APPROVE, value)
        assert answer.status == 200 and ("not one of mine" in answer.text or "no longer exists" in answer.text), (value, answer.text)
    assert site.store.read().visit(1).decisions == ()
    # The requester's own click on someone else's approval is checked against the database.
    assert "Nobody approves their own visit" in site.tampered_click("requester", actions.APPROVE, "1").text
    assert site.store.read().visit(1).decisions == ()


@pytest.mark.parametrize("how", ["unsigned", "bad"])
def test_an_unsigned_or_badly_signed_request_is_refused_with_no_state_change(site, how):
    request_visit(site)
    for approver in ("dsl", "head"):
        site.click(approver, approval(site, approver), "Approve")
    site.clock.set(site.clock().replace(hour=10))
    calls = site.everything_sent()
    assert site.forged_command("requester", "/out", "45m", how) == 401
    assert site.forged_command("requester", "/sos", "help", how) == 401
    assert site.store.read().visit(1).state.value == "approved"
    assert site.everything_sent() == calls  # nothing said to anyone


CONTROL = "\x00\u202e\u2066\u200f\x07"


def test_control_and_bidi_characters_never_reach_the_platform_or_the_database(site):
    request_visit(site, details=visit_form(pupil_ref="AB" + CONTROL + "123", travel_details="AB12\u202eCDE car"))
    site.clock.set(site.clock().replace(hour=10))
    for approver in ("dsl", "head"):
        site.click(approver, approval(site, approver), "Approve")
    site.command("requester", "/out", "45m")
    site.command("requester", "/sos", "help" + CONTROL + " me\nnow")
    visit = site.store.read().visit(1)
    stored = json.dumps([visit.details.pupil_ref, visit.details.travel_details, visit.watch.emergency_note], ensure_ascii=False)
    sent = site.everything_sent()
    for ch in CONTROL:
        assert ch not in stored and ch not in sent
    assert "AB123" in sent and "help me\nnow" in visit.watch.emergency_note


FAST_LADDER = [
    {"after": "0s", "notify": ["visitor"]},
    {"after": "1s", "notify": ["office"]},
    {"after": "2s", "notify": ["safeguarding", "dsl"]},
    {"after": "60m", "notify": ["head", "dsl"]},
]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_sigkill_then_restart_sends_each_due_alert_exactly_once(tmp_path, platform):
    """A real `visitsafe serve` process, killed with SIGKILL and started again, on the real clock."""
    if platform == "google_chat":
        needs_chat_endpoint()
    school = Served(platform, tmp_path, FAST_LADDER)
    everyone = {"requester", "#office", "#safeguarding", "dsl", "deputy"}
    try:
        first = school.seed_out(datetime.now(timezone.utc) - timedelta(seconds=10))  # fell due while the bot was down
        one = school.serve()
        try:  # the catch-up at start-up: every step of visit 1, each delivered and marked sent
            wait_for(lambda: sum(school.alerts_for(first.id).values()) == 5 and pending(school.store) == 0, 30, "visit 1's catch-up")
            second_due = datetime.now(timezone.utc) + timedelta(seconds=2)
            second = school.seed_out(second_due)  # falls due only after the kill
        finally:
            one.kill()  # SIGKILL: no clean shutdown, the lease is left behind
            one.wait()
        assert school.alerts_for(second.id) == Counter()
        time.sleep(max(0.0, (second_due + timedelta(seconds=2.5) - datetime.now(timezone.utc)).total_seconds()))
        two = school.serve()
        try:
            wait_for(lambda: sum(school.alerts_for(second.id).values()) == 5 and pending(school.store) == 0, 30, "visit 2's steps")
            time.sleep(1.5)  # a few more ticks of the new process: nothing more may be sent
        finally:
            two.kill()
            two.wait()
        for visit in (first, second):
            sent = school.alerts_for(visit.id)
            assert set(sent.values()) == {1}, sent  # each alert exactly once
            assert {destination for destination, _ in sent} == everyone
    finally:
        school.close()
