"""`visitsafe doctor` against the simulated Slack in each failure state, and /healthz from the same checks."""
from __future__ import annotations

import threading
import time

import pytest
import yaml

from bot.cli import main
from bot.doctor import MANIFEST_SCOPES, needed_scopes
from bot.simslack import SimSlack
from tests.conftest import (
    DSL, HEAD, OFFICE_CHANNEL, POLICY, SAFEGUARDING_CHANNEL, SENIOR, USERS, Workspace, make_policy,
)
from tests.faults.delivery import healthz


@pytest.fixture
def sim(tmp_path, monkeypatch):
    with SimSlack(users=USERS) as sim:
        sim.grant_scopes(needed_scopes())
        (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(POLICY))
        monkeypatch.setenv("SLACK_BOT_TOKEN", "test-bot-token")
        monkeypatch.setenv("SLACK_API_URL", sim.base_url)
        monkeypatch.setenv("VISITSAFE_CONFIG", str(tmp_path / "visitsafe.yml"))
        yield sim


def doctor(capsys) -> tuple[int, list[str]]:
    """Run `visitsafe doctor`: its exit code and its problem lines."""
    code = main(["doctor"])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line.startswith("PROBLEM")]


def test_a_healthy_workspace_passes(sim, capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("OK: ") and "PROBLEM" not in out


@pytest.mark.parametrize("fault, expected", [
    (lambda sim: sim.refuse_token("invalid_auth"), "Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth Token"),
    (lambda sim: sim.refuse_token("token_revoked"), "Slack refused SLACK_BOT_TOKEN (token_revoked)"),
    (lambda sim: sim.down(), "Slack could not be reached at http://127.0.0.1:"),
    (lambda sim: sim.set_channel(SAFEGUARDING_CHANNEL, member=False),
     f"The safeguarding channel {SAFEGUARDING_CHANNEL} (channels.safeguarding) cannot be seen by the bot: in Slack open the channel and type /invite @VisitSafe"),
    (lambda sim: sim.set_channel(OFFICE_CHANNEL, private=False),
     f"The office channel {OFFICE_CHANNEL} (channels.office) is public: alerts name staff and pupils, so make it private"),
    (lambda sim: sim.deactivate(HEAD), f"roles.head: {HEAD} is deactivated in Slack and would never see an alert"),
    (lambda sim: sim.refuse_dm(DSL), f"roles.dsl: {DSL} cannot be sent a direct message (user_not_visible)"),
    (lambda sim: sim.grant_scopes([s for s in needed_scopes() if s != "groups:read"]),
     "The app lacks the scope groups:read: add it under api.slack.com/apps > your app > OAuth & Permissions > Bot Token Scopes"),
    (lambda sim: sim.add_user(SENIOR, "Build Bot", is_bot=True), f"roles.senior_leader: {SENIOR} is a bot, not a person"),
])
def test_each_fault_is_one_line_with_its_fix_and_a_failing_exit_code(sim, capsys, fault, expected):
    fault(sim)
    code, problems = doctor(capsys)
    assert code == 1
    assert [p for p in problems if expected in p], problems
    assert len(problems) == 1, problems  # one fault, one line


def test_a_public_channel_the_bot_is_not_in_gives_both_fixes(sim, capsys):
    sim.set_channel(OFFICE_CHANNEL, private=False, member=False)
    code, problems = doctor(capsys)
    assert code == 1 and len(problems) == 2
    assert "the bot is not a member" in problems[0] and "is public" in problems[1]


def test_a_person_who_is_not_in_the_workspace_is_named_with_how_to_copy_their_id(sim, capsys, tmp_path):
    (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump({**POLICY, "roles": {**POLICY["roles"], "head": ["U0GONE"]}}))
    code, problems = doctor(capsys)
    assert code == 1
    assert problems == ["PROBLEM roles.head: U0GONE is not a person in this workspace: in Slack open their profile, ⋮ > Copy member ID,"
                        " and put that id in visitsafe.yml."]


def test_the_fallback_scope_list_is_the_manifests():
    assert needed_scopes() == MANIFEST_SCOPES


# /healthz ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault, state", [(None, "ok"), ("refuse", "unauthorized"), ("down", "unreachable")])
def test_healthz_reports_slack_from_the_start_up_check(tmp_path, clock, fault, state):
    ws = Workspace(tmp_path, make_policy(), clock)
    try:
        ws.sim.grant_scopes(needed_scopes())
        if fault == "refuse":
            ws.sim.refuse_token("invalid_auth")
        elif fault == "down":
            ws.sim.down()
        ws.runtime.tick()
        ws.runtime.check_slack()
        code, status = healthz(ws)
        assert status["slack"] == state
        assert code == (200 if state == "ok" else 503), status
        assert status["status"] == ("ok" if state == "ok" else "degraded")
    finally:
        ws.close()


def test_healthz_turns_503_with_the_problem_when_the_bot_is_not_in_the_safeguarding_channel(tmp_path, clock):
    ws = Workspace(tmp_path, make_policy(), clock)
    try:
        ws.sim.grant_scopes(needed_scopes())
        ws.sim.set_channel(SAFEGUARDING_CHANNEL, member=False)
        ws.runtime.tick()
        ws.runtime.check_slack()
        code, status = healthz(ws)
        assert code == 503 and status["slack"] == "ok"
        assert [p for p in status["setup_problems"] if SAFEGUARDING_CHANNEL in p and "/invite" in p]
    finally:
        ws.close()


def test_a_token_refused_to_the_outbox_turns_healthz_503(tmp_path, clock):
    from tests.test_e2e_safety import at, out_and_checked_in

    ws = Workspace(tmp_path, make_policy(), clock)
    try:
        out_and_checked_in(ws)
        assert healthz(ws)[0] == 200
        ws.sim.refuse_token("invalid_auth")
        at(ws, 10, 45)  # the visitor's overdue DM is refused
        code, status = healthz(ws)
        assert code == 503 and status["slack"] == "unauthorized"
    finally:
        ws.close()


def test_the_start_up_check_never_holds_up_the_sweep(tmp_path, clock):
    ws = Workspace(tmp_path, make_policy(), clock)
    try:
        ws.sim.hang("auth.test", 5)  # Slack answers nothing for 5 s
        started = time.monotonic()
        ws.runtime.start_background()
        assert time.monotonic() - started < 2
        assert ws.runtime.scheduler is not None and ws.runtime.scheduler.running
        assert ws.runtime.store.read().last_beat("sweep") is not None  # the catch-up sweep ran
        assert any(t.name == "visitsafe-doctor" for t in threading.enumerate())
    finally:
        ws.sim.unhang()
        ws.close()
