"""`check-config` refuses a policy that cannot work, one line naming the key and the fix; run and
serve refuse the examples' placeholder ids (issue 11 item 1)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from flows.policy import PolicyError, load_policy
from tests.test_cli import EXAMPLES, visitsafe

GOOD = {
    "school": "Test School",
    "channels": {"office": "C0OFFICE1", "safeguarding": "G0SAFE1"},
    "roles": {"head": ["U0HEAD1"], "dsl": ["U0DSL1", "W0DEPUTY1"], "office": ["U0OFFICE1"]},
    "approvals": {"all_of": ["head", "dsl"]},
    "escalation": [
        {"after": "0m", "notify": ["visitor"]},
        {"after": "15m", "notify": ["office"]},
        {"after": "30m", "notify": ["safeguarding", "dsl"]},
        {"after": "1h", "notify": ["head", "dsl"]},
    ],
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def refusal(tmp_path: Path, data) -> str:
    """check-config's one-line refusal (exit 2) for this policy."""
    result = visitsafe("check-config", str(write(tmp_path, data)))
    assert result.returncode == 2, result.stdout
    assert "OK" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def changed(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def message(tmp_path: Path, data) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, data))
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_a_policy_with_real_ids_is_ok(tmp_path):
    result = visitsafe("check-config", str(write(tmp_path, GOOD)))
    assert result.returncode == 0, result.stderr
    assert "OK. Test School" in result.stdout


# --- ids of the wrong shape ------------------------------------------------------------------


def test_a_channel_name_is_refused_with_how_to_copy_the_id(tmp_path):
    line = refusal(tmp_path, changed(lambda d: d["channels"].update(office="#visits-office")))
    assert "channels.office: '#visits-office' is not a Slack channel id" in line
    assert "copy the Channel ID" in line


def test_a_persons_name_is_refused_with_how_to_copy_the_id(tmp_path):
    line = message(tmp_path, changed(lambda d: d["roles"]["dsl"].append("Jo Reid")))
    assert "roles.dsl item 3: 'Jo Reid' is not a Slack user id" in line
    assert "Copy member ID" in line


def test_a_handle_is_refused(tmp_path):
    line = message(tmp_path, changed(lambda d: d["roles"].update(head=["@pat.head"])))
    assert "roles.head item 1: '@pat.head' is not a Slack user id" in line


def test_a_user_group_in_a_role_is_refused_as_not_supported(tmp_path):
    line = message(tmp_path, changed(lambda d: d["roles"].update(head=["S0HEADS1"])))
    assert "roles.head item 1: 'S0HEADS1' is a Slack user group" in line
    assert "each person's own id" in line


def test_a_name_as_staff_directory_key_is_refused(tmp_path):
    line = message(tmp_path, changed(lambda d: d.update(staff={"Jo Reid": {"mobile": "07700 900001"}})))
    assert "staff: 'Jo Reid' is not a Slack user id" in line


def test_private_channel_and_enterprise_user_ids_are_accepted(tmp_path):
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.channels.safeguarding == "G0SAFE1" and "W0DEPUTY1" in policy.roles.dsl


# --- placeholders --------------------------------------------------------------------------------

PLACEHOLDERS = changed(lambda d: d["roles"].update(head=["U_HEAD_CHANGE_ME"]))


def test_a_placeholder_is_refused_by_check_config(tmp_path):
    line = refusal(tmp_path, PLACEHOLDERS)
    assert "roles.head item 1: 'U_HEAD_CHANGE_ME' is a placeholder from the examples: replace it with the real id" in line


def test_a_placeholder_is_accepted_with_example_but_never_called_ok(tmp_path):
    result = visitsafe("check-config", "--example", str(write(tmp_path, PLACEHOLDERS)))
    assert result.returncode == 0, result.stderr
    assert "NOT ready to run" in result.stdout and "OK" not in result.stdout


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_refuse_an_example_file_as_it_stands(tmp_path, command):
    env = {"SLACK_BOT_TOKEN": "bot-token-for-test", "SLACK_SIGNING_SECRET": "s", "VISITSAFE_CONFIG": str(EXAMPLES[0])}
    result = visitsafe(command, env=env, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert "is a placeholder from the examples" in result.stderr
    assert "serving" not in result.stderr


# --- roles nobody holds ------------------------------------------------------------------------------


def test_an_approving_role_that_holds_nobody_is_refused(tmp_path):
    line = refusal(tmp_path, changed(lambda d: d["approvals"].update(all_of=["head", "senior_leader"])))
    assert "approvals: the role 'senior_leader' holds nobody, so no visit could be approved" in line
    assert "roles.senior_leader" in line


def test_a_ladder_role_that_holds_nobody_is_refused_with_the_tier_counted_from_one(tmp_path):
    line = refusal(tmp_path, changed(lambda d: d["roles"].update(head=[]) or d["approvals"].update(all_of=["dsl"])))
    assert "escalation tier 4: the role 'head' holds nobody" in line


# --- timing, syntax, spelling -------------------------------------------------------------------


def test_a_sweep_interval_above_a_minute_is_refused(tmp_path):
    line = refusal(tmp_path, {**GOOD, "sweep_interval": "90s"})
    assert "sweep_interval: must be 60s or less: an alert can be up to one sweep interval late" in line
    assert load_policy(write(tmp_path, {**GOOD, "sweep_interval": "60s"})).sweep_interval.total_seconds() == 60


def test_a_key_written_twice_is_refused(tmp_path):
    text = yaml.safe_dump(GOOD, sort_keys=False) + "school: Another School\n"
    line = refusal(tmp_path, text)
    assert "'school' is written twice (lines 1 and" in line and "keep one" in line


def test_a_nested_key_written_twice_is_refused(tmp_path):
    text = yaml.safe_dump(GOOD, sort_keys=False).replace("  head:\n", "  dsl:\n  - U0OTHER1\n  head:\n", 1)
    assert "'dsl' is written twice" in message(tmp_path, text)


def test_a_yaml_syntax_error_says_what_is_wrong(tmp_path):
    line = refusal(tmp_path, "school: Test\nchannels: [unclosed\nroles: {}\n")
    assert "not valid YAML at line 3, column" in line
    assert "a [list] is not closed with ]" in line


def test_a_colon_in_a_checklist_line_says_to_quote_it(tmp_path):
    text = yaml.safe_dump(GOOD, sort_keys=False) + "safety_checklist:\n  - Note: park facing out\n"
    assert "a line containing ': ' must be in quotes" in message(tmp_path, text)


def test_a_tab_says_to_indent_with_spaces(tmp_path):
    assert "indent with spaces, not tabs" in message(tmp_path, "school: Test\nchannels:\n\toffice: C0OFFICE1\n")


def test_positions_count_from_one(tmp_path):
    data = changed(lambda d: d["escalation"][1].update(after="soon"))
    assert "escalation tier 2, after: 'soon' is not a duration" in message(tmp_path, data)


def test_a_misspelt_required_key_is_named_first_with_a_suggestion(tmp_path):
    data = copy.deepcopy(GOOD)
    data["escalaton"] = data.pop("escalation")
    line = refusal(tmp_path, data)
    assert "escalaton is not a known setting: did you mean 'escalation'?" in line
    assert "escalation: is required" not in line


def test_a_misspelt_nested_key_gets_a_suggestion(tmp_path):
    data = changed(lambda d: d["channels"].update(safegaurding=d["channels"].pop("safeguarding")))
    assert "channels.safegaurding is not a known setting: did you mean 'safeguarding'?" in message(tmp_path, data)
