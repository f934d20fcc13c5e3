"""Visit length: no expected return (at /out, for a round, or by /extend) further off than the policy's
`max_visit_length`; the office board shows the date when the return is not today."""
from __future__ import annotations

from datetime import timedelta

import pytest

from commands import outing
from flows.policy import PolicyError, parse_policy
from tests.conftest import DSL, HEAD, OFFICE_CHANNEL, POLICY, REQUESTER, make_policy, visit_form
from tests.test_e2e_safety import out_at_ten
from tests.test_e2e_slack import request_visit


def approved(ws, *more):
    """Approved visits today (one at 10:00, then one per `more` form); the clock at 10:00."""
    for details in (visit_form(), *more):
        request_visit(ws, details=details)
    approvals = [(who, dm) for who in (DSL, HEAD) for dm in ws.dms(who) if "[Approve]" in dm.plain()]
    for approver, dm in approvals:
        ws.driver.click(approver, dm, "Approve")
    ws.clock.set(ws.clock().replace(hour=10, minute=0))


@pytest.mark.parametrize("text", ["9999d", "8h1m", "2d"])
def test_out_past_the_maximum_is_refused_with_the_limit_and_what_to_do(workspace, text):
    ws = workspace
    approved(ws)
    answer = ws.driver.command(REQUESTER, "/out", text).text
    assert "8h" in answer and "18:00" in answer, answer  # the limit, and the latest return it allows
    assert "`/out 1h30m`" in answer and "`/extend`" in answer, answer  # what to do instead
    assert "You are out" not in answer
    assert ws.runtime.store.read().visit(1).state.value == "approved"
    assert ws.channel(OFFICE_CHANNEL) == []


def test_out_at_exactly_the_maximum_is_accepted(workspace):
    ws = workspace
    approved(ws)
    assert "due back at *18:00*" in ws.driver.command(REQUESTER, "/out", "8h").text


def test_the_policy_sets_the_maximum(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(max_visit_length="2h"), clock)
    try:
        approved(ws)
        answer = ws.driver.command(REQUESTER, "/out", "2h30m").text
        assert "2h" in answer and "12:00" in answer and "You are out" not in answer, answer
        assert "You are out on visit #1" in ws.driver.command(REQUESTER, "/out", "12:00").text
    finally:
        ws.close()


def test_a_planned_duration_past_the_maximum_needs_a_shorter_return_at_out(tmp_path, clock):
    from tests.conftest import Workspace

    ws = Workspace(tmp_path, make_policy(max_visit_length="30m"), clock)
    try:
        approved(ws)  # planned for 45m
        answer = ws.driver.command(REQUESTER, "/out").text
        assert "30m" in answer and "10:30" in answer and "You are out" not in answer, answer
    finally:
        ws.close()


def test_a_round_past_the_maximum_is_refused(workspace):
    ws = workspace
    approved(ws, visit_form(pupil_ref="CD456", start_time="11:00"))
    from commands.context import CommandError

    with pytest.raises(CommandError, match=r"8h.*18:00"):
        outing.start_round(ws.runtime.ctx, REQUESTER, [1, 2], "9999d")
    assert [ws.runtime.store.read().visit(i).state.value for i in (1, 2)] == ["approved", "approved"]
    # A huge typed time is caught before the choice of visits is even offered.
    assert "8h" in ws.driver.command(REQUESTER, "/out", "9999d").text


@pytest.mark.parametrize("text", ["9999h", "8h", "7h46m"])
def test_extend_past_the_maximum_is_refused_with_the_limit_and_what_to_do(workspace, text):
    ws = workspace
    out_at_ten(ws)  # due back 10:45
    ws.clock.set(ws.clock().replace(hour=10, minute=30))
    answer = ws.driver.command(REQUESTER, "/extend", text).text
    # 10:45 + the extension would be past 18:30, eight hours from now.
    assert "8h" in answer and "18:30" in answer and "Now due back" not in answer, answer
    assert "/extend" in answer and "/sos" in answer, answer
    visit = ws.runtime.store.read().visit(1)
    assert visit.expected_return.hour == 10 and visit.expected_return.minute == 45


def test_extend_up_to_the_maximum_is_accepted(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=30))
    assert "Now due back at *18:30*" in ws.driver.command(REQUESTER, "/extend", "7h45m").text


def test_the_board_shows_the_date_when_the_return_is_not_today(workspace):
    ws = workspace
    approved(ws)
    ws.clock.set(ws.clock().replace(hour=17, minute=0))
    answer = ws.driver.command(REQUESTER, "/out", "8h").text
    assert "due back at *Tue 24 Nov 01:00*" in answer, answer
    board = ws.channel(OFFICE_CHANNEL)[-1].plain()
    assert "due back *Tue 24 Nov 01:00*" in board, board
    ws.clock.set(ws.clock().replace(hour=18, minute=0))
    ws.driver.command(REQUESTER, "/extend", "30m")
    assert "now due back *Tue 24 Nov 01:30*" in ws.channel(OFFICE_CHANNEL)[-1].plain()


def test_the_board_shows_only_the_clock_for_a_return_today(workspace):
    out_at_ten(workspace)
    assert "due back *10:45*" in workspace.channel(OFFICE_CHANNEL)[-1].plain()


@pytest.mark.parametrize("value", ["0m", "soon"])
def test_a_bad_maximum_is_named_in_the_policy_error(value):
    with pytest.raises(PolicyError, match="max_visit_length"):
        parse_policy({**POLICY, "max_visit_length": value})


def test_the_default_maximum_is_eight_hours():
    assert parse_policy(POLICY).max_visit_length == timedelta(hours=8)


def test_every_example_policy_sets_the_maximum_to_a_school_day():
    from tests.test_example_policies import FILES
    from flows.policy import load_policy

    for path in FILES:
        assert load_policy(path, example=True).max_visit_length == timedelta(hours=8), path.name
        assert "max_visit_length: 8h" in path.read_text(encoding="utf-8"), path.name
