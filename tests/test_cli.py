"""The `visitsafe` command line, run as a real process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.yml"))


def visitsafe(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VISITSAFE_", "PORT"))}
    # The code under test, whatever the working directory (an installed copy may be elsewhere).
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True, text=True, env={**clean, **(env or {})}, cwd=cwd or ROOT, timeout=timeout,
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_check_config_accepts_every_example_as_an_example_only(path):
    result = visitsafe("check-config", "--example", str(path))
    assert result.returncode == 0, result.stderr
    assert "NOT ready to run" in result.stdout and "OK" not in result.stdout


def test_check_config_on_a_broken_file_names_the_key(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((EXAMPLES[0]).read_text().replace("after: 15m", "after: 15 minutes", 1))
    result = visitsafe("check-config", "--example", str(broken))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "escalation tier 2, after:" in lines[0] and "15 minutes" in lines[0]


def test_run_without_tokens_names_what_is_missing_and_points_to_the_demo(tmp_path):
    result = visitsafe("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set, nor SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)" in result.stderr
    assert "app_manifest.yml" in result.stderr and "Signing Secret" in result.stderr
    # Socket Mode first, as the manifest sets it up: where the App-Level Token is, and its scope.
    assert result.stderr.index("Socket Mode") < result.stderr.index("Signing Secret")
    assert "App-Level Tokens" in result.stderr and "connections:write" in result.stderr
    assert "visitsafe demo" in result.stderr


def test_run_in_socket_mode_needs_only_the_bot_token(tmp_path):
    result = visitsafe("run", env={"SLACK_APP_TOKEN": "app-level-token-for-test"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr and "SLACK_SIGNING_SECRET" not in result.stderr


def test_run_with_tokens_but_no_policy_file_says_so(tmp_path):
    result = visitsafe("run", env={"SLACK_BOT_TOKEN": "bot-token-for-test", "SLACK_SIGNING_SECRET": "s"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "no such policy file" in result.stderr and "examples/policies" in result.stderr
