"""app_manifest.yml creates the app as it is: the same commands, events and interactivity the code listens for."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "app_manifest.yml").read_text())
# Every Slack listener module: /visits (with export and report) is bound in bot/slack/exports.py.
LISTENERS = "".join(path.read_text() for path in sorted((ROOT / "bot" / "slack").glob("*.py")))


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


# Each scope the manifest asks for, and the call in the code that needs it (issue 11 item 7).
SCOPE_USES = {
    "commands": 'app.command("/',
    "chat:write": "client.chat_postMessage",
    "im:write": "client.conversations_open",
    "mpim:write": 'client.conversations_open(users=",".join(',
    "users:read": "client.users_info(",
    "im:history": 'app.event("message")',
    "groups:history": "client.conversations_history",
    "channels:history": "client.conversations_history",
    "groups:read": "client.conversations_info,",
    "channels:read": "client.conversations_info,",
    "files:write": "client.files_upload_v2(",
}
CODE = "\n".join(p.read_text() for folder in ("bot", "commands") for p in (ROOT / folder).rglob("*.py") if "simslack" not in p.parts)


def test_the_manifest_asks_for_no_scope_the_code_does_not_use():
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert scopes == set(SCOPE_USES), scopes ^ set(SCOPE_USES)
    for scope, use in SCOPE_USES.items():
        assert use in CODE, f"{scope}: the code no longer calls {use}"


def test_nothing_claims_a_role_can_hold_a_user_group():
    # User groups are not read (no usergroups.users.list, no usergroups:read): the docs must not offer them.
    assert "usergroups" not in CODE
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples" / "policies").glob("*.yml")]:
        text = path.read_text(encoding="utf-8")
        for claim in ("user-group", "group id", "U... / S...", "or user group"):
            assert claim not in text, f"{path.name} says {claim!r}"
