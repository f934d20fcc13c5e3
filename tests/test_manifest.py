"""app_manifest.yml creates the app as it is: the same commands, events and interactivity the code listens for."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "app_manifest.yml").read_text())
LISTENERS = (ROOT / "bot" / "slack" / "listeners.py").read_text()


def test_every_slash_command_the_code_handles_is_in_the_manifest_and_no_other():
    in_code = set(re.findall(r'(?:app\.command|slash)\("(/[a-z]+)"', LISTENERS))
    in_manifest = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert in_code == in_manifest
    assert all(c["url"].endswith("/slack/events") for c in MANIFEST["features"]["slash_commands"])


def test_events_interactivity_and_scopes_match_what_the_bot_uses():
    in_code = set(re.findall(r'app\.event\("([a-z_]+)"\)', LISTENERS))
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {"message" if e == "message.im" else e for e in subscribed} == in_code
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "users:read", "im:history"} <= scopes
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
