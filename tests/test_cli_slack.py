"""`visitsafe run` when the Slack set-up is wrong: one readable line saying what to fix, never a traceback."""
from __future__ import annotations

import socket

import yaml

from bot.settings import APP_PREFIX, BOT_PREFIX
from tests.conftest import POLICY
from tests.test_cli import visitsafe

# Built at run time: no literal in the repository looks like a token.
BOT_TOKEN, APP_TOKEN = BOT_PREFIX + "1-2-test", APP_PREFIX + "1-A1-2-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bot_token_pasted_into_slack_app_token_is_named_as_the_mistake(tmp_path):
    result = visitsafe("run", env={"SLACK_APP_TOKEN": BOT_TOKEN, "SLACK_BOT_TOKEN": BOT_TOKEN}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("visitsafe: SLACK_APP_TOKEN holds a Bot User OAuth Token")
    assert "goes in SLACK_BOT_TOKEN" in result.stderr and "App-Level Tokens" in result.stderr
    assert BOT_TOKEN not in result.stderr + result.stdout  # never echo a secret


def test_an_app_token_pasted_into_slack_bot_token_is_named_as_the_mistake(tmp_path):
    result = visitsafe("run", env={"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": APP_TOKEN}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("visitsafe: SLACK_BOT_TOKEN holds an App-Level Token")
    assert "Bot User OAuth Token" in result.stderr and APP_TOKEN not in result.stderr


def test_socket_mode_that_cannot_reach_slack_fails_in_one_readable_line(tmp_path):
    (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(POLICY))
    env = {
        "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        "PORT": str(free_port()),
    }
    result = visitsafe("run", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "connected by Socket Mode" not in result.stderr
    [line] = [l for l in result.stderr.splitlines() if l.startswith("visitsafe: Socket Mode could not connect")]
    assert "could not be reached" in line and "outgoing HTTPS" in line
