"""End to end: office hours and cover. Out of the office's hours its tier goes to the cover too, and says why."""
from __future__ import annotations

import pytest

from flows.policy import PolicyError
from tests.conftest import DEPUTY, DSL, HEAD, OFFICE_CHANNEL, REQUESTER, make_policy
from tests.test_e2e_safety import alerts_in, at
from tests.test_e2e_slack import approval_dm, request_visit

HOURS = {"mon-fri": "08:00-16:30"}


@pytest.fixture
def policy():
    return make_policy(office_hours=HOURS, cover=["dsl"])


def out_at(ws, hour, minute, duration="45m"):
    request_visit(ws)
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")
    ws.clock.set(ws.clock().replace(hour=hour, minute=minute))
    answer = ws.driver.command(REQUESTER, "/out", duration)
    assert "You are out on visit #1" in answer.text, answer.text
    ws.runtime.tick()


def test_out_of_hours_the_office_tier_reaches_the_cover_and_says_the_office_is_closed(workspace):
    ws = workspace
    out_at(ws, 16, 0)  # due back 16:45; the office tier falls at 17:00, after the office closes at 16:30
    at(ws, 16, 59)
    assert alerts_in(ws, OFFICE_CHANNEL) == [] and alerts_in(ws, DSL) == []
    at(ws, 17, 0)
    closed = "The office is closed (hours mon-fri 08:00-16:30): sent to <@U01>, <@U09> too."
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert "OVERDUE" in office.plain() and closed in office.plain()
    for dsl in (DSL, DEPUTY):
        [cover] = alerts_in(ws, dsl)
        text = cover.plain()
        # The office's message, with its buttons and the visitor's mobile, and why it came to the DSL.
        assert "OVERDUE" in text and closed in text and "07700 900010" in text
        assert "[I'm handling this]" in text and "[Reached, safe]" in text
    # The head is in no tier yet and is not the cover.
    assert alerts_in(ws, HEAD) == []


def test_in_hours_the_office_tier_goes_to_the_office_alone(workspace):
    ws = workspace
    out_at(ws, 10, 0)  # the office tier at 11:00, office open
    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert "OVERDUE" in office.plain() and "closed" not in office.plain()
    assert alerts_in(ws, DSL) == [] and alerts_in(ws, DEPUTY) == []


def test_check_config_refuses_a_ladder_that_reaches_nobody_on_duty_naming_the_hour():
    with pytest.raises(PolicyError) as refused:
        make_policy(office_hours=HOURS)
    assert str(refused.value) == (
        "policy: escalation tier 2 (office) would reach nobody on duty at 16:30 on a Monday (a visit due back at 16:15,"
        " within visiting_hours), because the office is closed then (office_hours mon-fri 08:00-16:30): name who takes"
        " the office's place out of hours, like cover: [dsl]"
    )
    # A ladder whose office tier also names someone always on duty is fine without a cover.
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["office", "dsl"]}]
    assert make_policy(office_hours=HOURS, escalation=ladder).cover == []


@pytest.mark.parametrize("changes, message", [
    ({"office_hours": {"mon-fry": "08:00-16:30"}, "cover": ["dsl"]}, "office_hours: 'mon-fry' is not a day or a range of days"),
    ({"office_hours": {"fri-mon": "08:00-16:30"}, "cover": ["dsl"]}, "office_hours: 'fri-mon' runs backwards"),
    ({"office_hours": {"mon-fri": "8-16"}, "cover": ["dsl"]}, "office_hours: mon-fri: '8-16' is not opening hours"),
    ({"office_hours": {"mon-fri": "16:30-08:00"}, "cover": ["dsl"]}, "closes before it opens"),
    ({"office_hours": {"mon-fri": "08:00-16:30", "fri": "08:00-12:00"}, "cover": ["dsl"]}, "fri is given hours twice"),
    ({"office_hours": HOURS, "cover": ["office"]}, "cover: 'office' cannot cover for the office"),
    ({"office_hours": HOURS, "cover": ["police"]}, "cover: unknown audience 'police'"),
    ({"cover": ["dsl"]}, "cover: cover is set but office_hours is not"),
    ({"office_hours": HOURS, "cover": ["team_leader"]}, "cover: the role 'team_leader' holds nobody"),
])
def test_bad_office_hours_or_cover_is_a_clear_error(changes, message):
    with pytest.raises(PolicyError) as refused:
        make_policy(**changes)
    assert message in str(refused.value)
