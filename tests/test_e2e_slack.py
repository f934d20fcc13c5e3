"""End to end: the real Bolt app over HTTP, signed requests, a simulated Slack Web API."""
from __future__ import annotations

from datetime import timedelta

from bot.simslack import sign_request
from tests.conftest import (
    COMPANION, DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, SENIOR, risk_form, visit_form,
)


def request_visit(ws, user=REQUESTER, details=None, risk=None):
    """`user` fills in both steps of /visit; returns the last HTTP answer."""
    assert ws.driver.command(user, "/visit").status == 200
    first = ws.driver.submit(user, details or visit_form())
    assert first.body["response_action"] == "push", first.body
    return ws.driver.submit(user, risk or risk_form())


def approval_dm(ws, approver):
    [message] = [m for m in ws.dms(approver) if "asks to make a home visit" in m.text or "Home visit request" in m.text]
    return message


def test_request_both_approvals_out_and_back(workspace):
    ws = workspace
    answer = request_visit(ws)
    assert answer.status == 200 and answer.body["response_action"] == "clear"

    # The requester gets a receipt; each approver a DM with the facts and the buttons.
    assert "is with: DSL, headteacher" in ws.dms(REQUESTER)[0].plain()
    dsl_dm = approval_dm(ws, DSL)
    assert "12 Example Road" in dsl_dm.plain() and "[Approve]" in dsl_dm.plain() and "Risk level: *low*" in dsl_dm.plain()
    assert approval_dm(ws, DEPUTY) and approval_dm(ws, HEAD)
    # Nothing about the visit goes to a channel before it starts.
    assert ws.channel(OFFICE_CHANNEL) == [] and ws.channel(SAFEGUARDING_CHANNEL) == []

    ws.driver.click(DSL, dsl_dm, "Approve")
    assert "one approval so far" in ws.dms(REQUESTER)[-1].text
    # The deputy's DM now shows the DSL decision and no longer offers a button for that role's slot.
    deputy_dm = approval_dm(ws, DEPUTY)
    assert "Approved by <@U01>" in deputy_dm.text and deputy_dm.updated

    ws.driver.click(HEAD, approval_dm(ws, HEAD), "Approve")
    assert "is approved. Use `/out`" in ws.dms(REQUESTER)[-1].text
    for approver in (DSL, HEAD, DEPUTY):
        dm = approval_dm(ws, approver)
        assert "*approved*" in dm.text and "[Approve]" not in dm.plain()

    ws.clock.advance(timedelta(hours=1))  # 10:00
    out = ws.driver.command(REQUESTER, "/out", "45m")
    assert out.status == 200 and "due back at *10:45*" in out.body["text"]
    assert "Code word agreed" in out.text
    board = ws.channel(OFFICE_CHANNEL)[-1].text
    assert "due back *10:45*" in board and "Example Road" not in board

    visits = ws.driver.command(HEAD, "/visits")
    assert "out, due back 10:45" in visits.text

    ws.clock.advance(timedelta(minutes=40))
    back = ws.driver.command(REQUESTER, "/back")
    assert "Welcome back" in back.text
    assert "are back from visit #1 at 10:40" in ws.channel(OFFICE_CHANNEL)[-1].text


def test_decline_asks_for_a_reason_and_tells_the_requester(workspace):
    ws = workspace
    request_visit(ws)
    ws.driver.click(HEAD, approval_dm(ws, HEAD), "Decline")
    assert ws.driver.view(HEAD)["title"]["text"] == "Decline visit"
    empty = ws.driver.submit(HEAD, {"reason": None})
    assert empty.body["response_action"] == "errors" and "reason" in empty.body["errors"]
    ws.driver.submit(HEAD, {"reason": "Meet the family at school <!channel> instead"})
    told = ws.dms(REQUESTER)[-1].text
    assert "was declined" in told and "Meet the family at school &lt;!channel&gt; instead" in told
    assert "*declined*" in approval_dm(ws, DSL).text
    # A late approval on a declined request changes nothing and says why.
    ws.driver.click(DSL, approval_dm(ws, DSL), "Approve") if "[Approve]" in approval_dm(ws, DSL).plain() else None
    out = ws.driver.command(REQUESTER, "/out")
    assert "no approved visit" in out.text


def test_self_approval_and_outsiders_are_refused(workspace):
    ws = workspace
    # The DSL asks for a visit: the deputy DSL and the head approve, never the DSL.
    request_visit(ws, user=DSL, risk=risk_form(companions=[COMPANION]))
    assert [m for m in ws.dms(DSL) if "[Approve]" in m.plain()] == []
    dm = approval_dm(ws, DEPUTY)
    # A forged click by the requester on the deputy's message is checked against the database.
    ws.driver.click(DSL, dm, "Approve", channel="D" + DSL)
    assert "Nobody approves their own visit" in ws.sim.ephemerals(DSL)[-1].text
    ws.driver.click(SENIOR, dm, "Approve", channel="D" + SENIOR)
    assert "do not hold a role" in ws.sim.ephemerals(SENIOR)[-1].text
    ws.driver.click(COMPANION, dm, "Approve", channel="D" + COMPANION)
    assert "going on this visit" in ws.sim.ephemerals(COMPANION)[-1].text
    assert ws.runtime.store.read().visit(1).decisions == ()


def test_double_click_gives_one_decision(workspace):
    ws = workspace
    request_visit(ws)
    dsl_dm, deputy_dm = approval_dm(ws, DSL), approval_dm(ws, DEPUTY)
    ws.driver.click(DSL, dsl_dm, "Approve")
    ws.driver.click(DSL, dsl_dm, "Approve")  # a stale message: the same person again
    assert "already given your decision" in ws.sim.ephemerals(DSL)[-1].text
    ws.driver.click(DEPUTY, deputy_dm, "Approve")  # the other DSL, slot already filled
    assert "already been given by <@U01>" in ws.sim.ephemerals(DEPUTY)[-1].text
    visit = ws.runtime.store.read().visit(1)
    assert [(d.slot, d.approver) for d in visit.decisions] == [("dsl", DSL)]


def test_risky_request_is_refused_with_input_kept(workspace):
    ws = workspace
    ws.driver.command(REQUESTER, "/visit")
    ws.driver.submit(REQUESTER, visit_form())
    answer = ws.driver.submit(REQUESTER, risk_form(risks=["violence_known"]))
    assert answer.body["response_action"] == "errors"
    assert "meeting at school" in answer.body["errors"]["risks"]
    assert ws.driver.view(REQUESTER)["callback_id"] == "visit_form_risk"  # the form stays open
    assert ws.runtime.store.read().visits_where("1", []) == []
    assert all("[Approve]" not in m.plain() for m in ws.dms(DSL))


def test_out_refused_before_approval(workspace):
    ws = workspace
    request_visit(ws)
    out = ws.driver.command(REQUESTER, "/out")
    assert "has not been approved yet" in out.text
    assert ws.channel(OFFICE_CHANNEL) == []


def test_pairs_rule_needs_a_companion(workspace):
    ws = workspace
    ws.driver.command(REQUESTER, "/visit")
    ws.driver.submit(REQUESTER, visit_form())
    answer = ws.driver.submit(REQUESTER, risk_form(companions=[]))
    assert answer.body["errors"] == {"companions": "A companion is required: the school's policy is that visits are made in pairs."}


def test_bad_form_input_returns_field_errors(workspace):
    ws = workspace
    ws.driver.command(REQUESTER, "/visit")
    answer = ws.driver.submit(
        REQUESTER,
        visit_form(contact_phone="call me", duration="0m", address="", start_time="19:00", parents_informed="no"),
    )
    errors = answer.body["errors"]
    assert answer.body["response_action"] == "errors"
    assert "phone number" in errors["contact_phone"]
    assert "more than zero" in errors["duration"]
    assert errors["address"] == "this is required"
    assert ws.driver.view(REQUESTER)["callback_id"] == "visit_form_details"
    fixed = ws.driver.submit(REQUESTER, visit_form(start_time="19:00", parents_informed="no", parents_not_informed_reason="child not seen"))
    assert "no evening visits" in fixed.body["errors"]["start_time"]


def test_out_with_bad_argument_says_what_it_expected(workspace):
    ws = workspace
    request_visit(ws)
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")
    out = ws.driver.command(REQUESTER, "/out", "45x")
    assert "use 45m, 1h30m or 14:30" in out.text
    assert ws.runtime.store.read().visit(1).state.value == "approved"


def test_unsigned_and_stale_requests_are_refused(workspace):
    ws = workspace
    body = "command=%2Fout&user_id=U10&text="
    assert ws.driver.post(body, headers={"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    stale = sign_request(ws.secret, body, timestamp=int(ws.clock().timestamp()) - 3600 * 24 * 365)
    assert ws.driver.post(body, headers=stale).status == 401
    wrong = sign_request("not-the-secret", body)
    assert ws.driver.post(body, headers=wrong).status == 401


def test_healthz_reports_database_and_scheduler(workspace):
    import json
    import urllib.request

    ws = workspace
    ws.runtime.tick()
    with urllib.request.urlopen(f"http://127.0.0.1:{ws.server.port}/healthz") as answer:
        status = json.loads(answer.read())
    assert answer.status == 200 and status["database"] == "ok" and status["scheduler"]["age_seconds"] == 0.0


def test_undecided_request_expires_at_its_start_time_and_buttons_go(workspace):
    ws = workspace
    request_visit(ws)
    stale = approval_dm(ws, HEAD)
    ws.clock.advance(timedelta(minutes=59))
    ws.runtime.tick()
    assert "[Approve]" in approval_dm(ws, HEAD).plain()
    ws.clock.advance(timedelta(minutes=1))  # 10:00, the planned start
    ws.runtime.tick()
    assert "has expired" in ws.dms(REQUESTER)[-1].plain()
    for approver in (DSL, DEPUTY, HEAD):
        assert "*expired*" in approval_dm(ws, approver).text and "[Approve]" not in approval_dm(ws, approver).plain()
    ws.driver.click(HEAD, stale, "Approve", channel="D" + HEAD)
    assert "already been decided: it is expired" in ws.sim.ephemerals(HEAD)[-1].text
    ws.runtime.tick()
    assert sum("has expired" in m.plain() for m in ws.dms(REQUESTER)) == 1


def test_visits_lists_what_waits_for_the_approver_and_hides_other_staff_visits(workspace):
    ws = workspace
    request_visit(ws)
    head_view = ws.driver.command(HEAD, "/visits").text
    assert "Waiting for your decision* (1)" in head_view and "#1 from <@U10>" in head_view
    ws.driver.click(HEAD, approval_dm(ws, HEAD), "Approve")
    assert "Waiting for your decision" not in ws.driver.command(HEAD, "/visits").text
    assert "Waiting for your decision* (1)" in ws.driver.command(DSL, "/visits").text
    # A colleague not involved sees nothing of the visit (need to know).
    assert ws.driver.command(SENIOR, "/visits").text == "You have no home visits today."
    assert "AB123" in ws.driver.command(REQUESTER, "/visits").text


def test_two_approvers_clicking_at_once_give_one_decision_per_role(workspace):
    import threading

    ws = workspace
    request_visit(ws)
    messages = {user: approval_dm(ws, user) for user in (DSL, DEPUTY)}
    ws.driver.settle = lambda: None  # deliver once, after both clicks
    barrier = threading.Barrier(2)

    def click(user):
        barrier.wait()
        ws.driver.click(user, messages[user], "Approve")

    threads = [threading.Thread(target=click, args=(user,)) for user in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    ws.runtime.settle()  # the notes after each click, then the outbox
    visit = ws.runtime.store.read().visit(1)
    assert [d.slot for d in visit.decisions] == ["dsl"]
    winner = visit.decisions[0].approver
    loser = DEPUTY if winner == DSL else DSL
    assert "already been given by <@" + winner + ">" in ws.sim.ephemerals(loser)[-1].text
    assert sum("one approval so far" in m.plain() for m in ws.dms(REQUESTER)) == 1


def home_opened(ws, user, event_id=None):
    """(body, headers) of the signed event Slack sends when `user` opens the bot's App Home tab."""
    import json

    from bot.simslack import sign_request

    body = json.dumps({
        "token": "unused", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback", "event_id": event_id or f"Ev{user}",
        "event_time": 1, "event": {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home"},
    })
    return body, {**sign_request(ws.secret, body), "Content-Type": "application/json"}


def app_home(ws, user):
    """`user` opens the bot's App Home tab; returns the text it shows."""
    assert ws.driver.post(*home_opened(ws, user)).status == 200
    return "\n".join(b["text"]["text"] for b in ws.sim.home(user)["blocks"] if b.get("text"))


def test_app_home_shows_the_board_waiting_approvals_and_the_checklist(workspace):
    ws = workspace
    request_visit(ws)
    head = app_home(ws, HEAD)
    assert "Waiting for your decision* (1)" in head and "Code word agreed" in head
    visitor = app_home(ws, REQUESTER)
    assert "#1" in visitor and "AB123" in visitor and "Waiting for your decision" not in visitor
    assert "You have no home visits today." in app_home(ws, SENIOR)


def test_unplanned_welfare_check_goes_on_the_dsls_word_and_safeguarding_is_told_at_once(tmp_path, clock):
    from tests.conftest import Workspace, make_policy

    policy = make_policy(approvals={"all_of": ["dsl", "head"], "emergency": {"any_of": ["dsl"]}})
    ws = Workspace(tmp_path, policy, clock)
    try:
        request_visit(ws, details=visit_form(reason="welfare", planned="unplanned", start_time="09:15", parents_informed="no"))
        [notice] = ws.channel(SAFEGUARDING_CHANNEL)
        assert "Unplanned welfare check" in notice.plain() and "12 Example Road" in notice.plain()
        assert [m for m in ws.dms(HEAD) if "[Approve]" in m.plain()] == []  # the head is not asked
        ws.driver.click(DEPUTY, approval_dm(ws, DEPUTY), "Approve")
        assert "is approved" in ws.dms(REQUESTER)[-1].plain()
        assert "You are out on visit #1" in ws.driver.command(REQUESTER, "/out", "30m").text
    finally:
        ws.close()


def test_visit_form_that_slack_cannot_open_says_so(workspace):
    ws = workspace
    ws.sim.fail("views.open", 500, times=1)
    answer = ws.driver.command(REQUESTER, "/visit")
    assert answer.status == 200 and "could not open the form" in answer.text  # in the answer itself, not by response_url
    request_visit(ws)
    ws.sim.fail("views.open", 500, times=1)
    ws.driver.click(HEAD, approval_dm(ws, HEAD), "Decline")
    assert "could not open the form" in ws.sim.ephemerals(HEAD)[-1].text


def test_requester_cancels_and_the_approvers_are_told(workspace):
    ws = workspace
    request_visit(ws)
    receipt = ws.dms(REQUESTER)[0]
    ws.driver.click(HEAD, receipt, "Cancel this request", channel="D" + HEAD)  # someone else's button
    assert "Only the member of staff who asked" in ws.sim.ephemerals(HEAD)[-1].text
    ws.driver.click(REQUESTER, receipt, "Cancel this request")
    assert "You cancelled your home visit" in ws.dms(REQUESTER)[0].plain() and "[Cancel" not in ws.dms(REQUESTER)[0].plain()
    for approver in (DSL, DEPUTY, HEAD):
        assert "*cancelled*" in approval_dm(ws, approver).text and "[Approve]" not in approval_dm(ws, approver).plain()
    ws.driver.click(REQUESTER, receipt, "Cancel this request")
    assert "This visit is cancelled" in ws.sim.ephemerals(REQUESTER)[-1].text


def test_healthz_turns_red_when_the_sweep_has_not_run_for_three_intervals(workspace):
    ws = workspace
    ws.runtime.tick()
    ws.clock.advance(timedelta(seconds=45))
    assert ws.runtime.health()[0] is True
    ws.clock.advance(timedelta(seconds=1))
    healthy, status = ws.runtime.health()
    assert not healthy and status["status"] == "degraded" and status["scheduler"]["age_seconds"] == 46.0


def test_a_companion_out_on_a_visit_cannot_start_another(workspace):
    ws = workspace
    request_visit(ws)
    request_visit(ws, user=COMPANION, details=visit_form(pupil_ref="EF789", start_time="11:00"), risk=risk_form(companions=[SENIOR]))
    for approver in (DSL, HEAD):
        for dm in [m for m in ws.dms(approver) if "[Approve]" in m.plain()]:
            ws.driver.click(approver, dm, "Approve")
    ws.clock.advance(timedelta(hours=1))
    assert "You are out on visit #1" in ws.driver.command(REQUESTER, "/out").text
    assert "already out on visit #1" in ws.driver.command(COMPANION, "/out").text


def test_board_lines_go_to_every_audience_the_policy_names(tmp_path, clock):
    from tests.conftest import Workspace, make_policy

    ws = Workspace(tmp_path, make_policy(board=["office", "head"]), clock)
    try:
        request_visit(ws)
        for approver in (DSL, HEAD):
            ws.driver.click(approver, approval_dm(ws, approver), "Approve")
        ws.clock.advance(timedelta(hours=1))
        ws.driver.command(REQUESTER, "/out", "45m")
        for place in (OFFICE_CHANNEL, HEAD):
            line = [m.plain() for m in ws.sim.messages(place) if "left for a home visit" in m.plain()]
            assert len(line) == 1 and "due back *10:45*" in line[0] and "Example Road" not in line[0]
        assert not any("left for a home visit" in m.plain() for m in ws.dms(DSL))
    finally:
        ws.close()


def test_policy_refuses_an_unknown_board_audience():
    import pytest as _pytest

    from flows.policy import PolicyError, parse_policy
    from tests.conftest import POLICY

    with _pytest.raises(PolicyError, match="board.*unknown audience 'visitor'"):
        parse_policy({**POLICY, "board": ["visitor"]})
