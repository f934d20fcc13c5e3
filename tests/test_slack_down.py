"""Slack unreachable or refusing the token: every signed command still gets an answer in its HTTP response."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.simslack.server import sign_request
from tests.conftest import REQUESTER, SAFEGUARDING_CHANNEL

COMMANDS = [("/visit", ""), ("/out", "45m"), ("/checkin", ""), ("/extend", "20m"), ("/next", ""), ("/back", ""),
            ("/visits", ""), ("/visitsafe", ""), ("/visitsafe", "duress"), ("/sos", "dog loose in the garden")]


def fail_slack(ws, how):
    if how == "down":
        ws.sim.down()
    else:
        ws.sim.refuse_token("invalid_auth")


def event(ws, inner):
    """A signed Events API request, as Slack sends it."""
    body = json.dumps({"type": "event_callback", "team_id": ws.sim.team_id, "api_app_id": ws.sim.app_id, "event": inner})
    return ws.driver.post(body, {**sign_request(ws.secret, body), "Content-Type": "application/json"})


@pytest.mark.parametrize("how", ["down", "refusing"])
def test_every_slash_command_answers_in_its_response_while_slack_fails(workspace, how):
    ws = workspace
    fail_slack(ws, how)  # before the first request: nothing about Slack was learned from a command yet
    for command, text in COMMANDS:
        answer = ws.driver.command(REQUESTER, command, text)
        assert answer.status == 200 and answer.text, (command, text, answer)
        assert "reinstall" not in answer.text and "installation" not in answer.text, answer.text
    assert "could not open the form" in ws.driver.command(REQUESTER, "/visit").text
    assert "Alert sent" in ws.driver.command(REQUESTER, "/sos", "still here").text
    # The SOS was recorded and its alerts wait in the outbox: they go as soon as Slack answers again.
    ws.sim.up()
    ws.sim.accept_token()
    ws.clock.advance(timedelta(seconds=30))  # past the outbox's capped backoff
    ws.runtime.tick()
    assert any("SOS" in m.plain() for m in ws.channel(SAFEGUARDING_CHANNEL))


@pytest.mark.parametrize("how", ["down", "refusing"])
def test_home_tab_and_a_typed_message_are_acknowledged_while_slack_fails(workspace, how):
    ws = workspace
    ws.driver.command(REQUESTER, "/visits")  # a request while Slack answered
    fail_slack(ws, how)
    assert event(ws, {"type": "app_home_opened", "user": REQUESTER, "tab": "home"}).status == 200
    assert event(ws, {"type": "message", "channel_type": "im", "user": REQUESTER, "text": "hello", "channel": "D" + REQUESTER}).status == 200
