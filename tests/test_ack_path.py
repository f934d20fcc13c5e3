"""Slack gets its answer within 3 s even while the Slack Web API is slow: whatever calls Slack (opening a form,
an ephemeral note after a click, the App Home tab) runs after the answer, and still reaches the person."""
from __future__ import annotations

import time

from bot.simslack.driver import Driver
from tests.conftest import HEAD, REQUESTER
from tests.test_e2e_slack import app_home, approval_dm, home_opened, request_visit

SLOW_S = 4.0  # longer than Slack waits for an answer


def timed(action):
    """(result, seconds) of `action`."""
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def unsettled(ws):
    """A driver that does not wait for the work after each answer, to time the answer alone."""
    return Driver(ws.url, ws.secret, ws.sim)


def test_visit_form_opens_after_the_answer_when_slack_is_slow(workspace):
    ws = workspace
    ws.sim.delay_replies("views.open", SLOW_S)
    answer, seconds = timed(lambda: unsettled(ws).command(REQUESTER, "/visit"))
    assert answer.status == 200 and seconds < 3, seconds
    ws.runtime.settle()
    assert ws.sim.views(REQUESTER), "the form never opened"


def test_click_is_answered_at_once_and_the_note_follows_when_slack_is_slow(workspace):
    ws = workspace
    request_visit(ws)
    ws.sim.delay_replies("chat.postEphemeral", SLOW_S)
    answer, seconds = timed(lambda: unsettled(ws).click(HEAD, approval_dm(ws, HEAD), "Approve"))
    assert answer.status == 200 and seconds < 3, seconds
    ws.runtime.settle()
    assert "one approval so far" in ws.dms(REQUESTER)[-1].plain()


def test_app_home_is_answered_at_once_when_slack_is_slow(workspace):
    ws = workspace
    request_visit(ws)
    ws.sim.delay_replies("views.publish", SLOW_S)
    shown, seconds = timed(lambda: app_home(ws, HEAD))  # app_home settles: the tab is published by then
    assert "Waiting for your decision* (1)" in shown
    ws.sim.delay_replies("views.publish", SLOW_S)
    _, seconds = timed(lambda: unsettled(ws).post(*home_opened(ws, HEAD, "Ev2")))
    assert seconds < 3, seconds

