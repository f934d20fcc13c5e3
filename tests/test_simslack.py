"""End-to-end tests of SimSlack driven by the official slack_sdk WebClient."""

from __future__ import annotations

import json
import time
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier

from bot.simslack import Posted, SimSlack, sign_request

# Built at run time so nothing token-shaped sits in the source.
BOT_TOKEN = "xoxb" + "-test"

USERS = {
    "U05": {"name": "Jo Reid", "phone": "07700 900001"},
    "U06": {"name": "Sam Patel", "phone": "07700 900002"},
}

APPROVAL_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Visit check-in"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Jo Reid* is visiting 12 Elm St"},
        "fields": [
            {"type": "mrkdwn", "text": "*Due back:* 15:30"},
            {"type": "plain_text", "text": "Risk: low"},
        ],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Started 14:00"}]},
    {"type": "divider"},
    {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "approve"},
            {"type": "button", "text": {"type": "plain_text", "text": "Decline"}, "action_id": "decline"},
        ],
    },
]


@pytest.fixture
def sim():
    with SimSlack(users=USERS) as server:
        yield server


@pytest.fixture
def client(sim):
    # No retry handlers: the tests want to see each injected failure directly.
    return WebClient(token=BOT_TOKEN, base_url=sim.base_url, retry_handlers=[], timeout=5)


def raw_post(sim: SimSlack, method: str, body: bytes, content_type: str, token: str | None = None):
    """POST a hand-built body, bypassing slack_sdk's own encoding choices."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = Request(sim.base_url + method, data=body, headers=headers, method="POST")
    with urlopen(req, timeout=5) as resp:
        return resp.status, resp.headers, json.loads(resp.read().decode("utf-8"))


def test_base_url_shape(sim):
    assert sim.base_url.startswith("http://127.0.0.1:")
    assert sim.base_url.endswith("/api/")
    assert int(sim.base_url.split(":")[2].split("/")[0]) > 0


def test_base_url_requires_start():
    with pytest.raises(RuntimeError):
        SimSlack().base_url


def test_auth_test(client, sim):
    resp = client.auth_test()
    assert resp["ok"] is True
    assert resp["user_id"] == "UBOT"
    assert resp["team_id"] == "T0001"
    assert resp["bot_id"]
    assert resp["url"].startswith("https://")
    assert sim.calls_to("auth.test")[0].token == BOT_TOKEN


def test_post_dm_to_user_resolves_channel(client, sim):
    resp = client.chat_postMessage(channel="U05", text="Are you safe?", blocks=APPROVAL_BLOCKS)
    assert resp["channel"] == "DU05"
    assert resp["message"]["text"] == "Are you safe?"
    assert resp["message"]["blocks"] == APPROVAL_BLOCKS
    assert resp["message"]["user"] == "UBOT"
    assert resp["message"]["ts"] == resp["ts"]
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"

    seen = sim.messages("U05")
    assert [m.ts for m in seen] == [resp["ts"]]
    assert seen[0].channel == "DU05"
    assert seen[0].text == "Are you safe?"
    assert seen[0].updated is False and seen[0].history == []
    assert sim.messages("DU05") == seen
    assert sim.messages("U06") == []

    call = sim.calls_to("chat.postMessage")[0]
    assert call.token == BOT_TOKEN
    assert call.params["blocks"] == APPROVAL_BLOCKS
    assert call.failed is False


def test_ts_unique_and_increasing(client):
    stamps = [client.chat_postMessage(channel="C100", text=f"m{i}")["ts"] for i in range(5)]
    assert len(set(stamps)) == 5
    assert stamps == sorted(stamps, key=float)
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_post_message_errors(client, sim):
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessage", json={"channel": "U05"})
    assert exc.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessage", json={"text": "hi"})
    assert exc.value.response["error"] == "channel_not_found"
    assert sim.inbox() == {}


def test_form_encoded_blocks_are_decoded(sim):
    encoded = "channel=U06&text=hello&blocks=" + quote(json.dumps(APPROVAL_BLOCKS))
    status, _, data = raw_post(sim, "chat.postMessage", encoded.encode(), "application/x-www-form-urlencoded", "t-1")
    assert status == 200 and data["ok"] is True and data["channel"] == "DU06"
    assert sim.messages("U06")[0].blocks == APPROVAL_BLOCKS
    assert sim.calls[-1].params["blocks"] == APPROVAL_BLOCKS
    assert sim.calls[-1].token == "t-1"


def test_missing_token_is_not_authed(sim):
    status, _, data = raw_post(sim, "auth.test", b"{}", "application/json")
    assert status == 200
    assert data == {"ok": False, "error": "not_authed"}


def test_update_changes_text_and_keeps_history(client, sim):
    first = client.chat_postMessage(channel="U05", text="Check in due", blocks=APPROVAL_BLOCKS)
    client.chat_update(channel=first["channel"], ts=first["ts"], text="Checked in", blocks=[])
    # Updating through the user id must reach the same DM.
    client.chat_update(channel="U05", ts=first["ts"], text="Checked in at 15:02")

    [msg] = sim.messages("U05")
    assert msg.ts == first["ts"]
    assert msg.text == "Checked in at 15:02"
    assert msg.blocks == []
    assert msg.updated is True
    assert [h.text for h in msg.history] == ["Check in due", "Checked in"]
    assert msg.history[0].blocks == APPROVAL_BLOCKS


def test_update_unknown_ts(client, sim):
    client.chat_postMessage(channel="U05", text="x")
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="U05", ts="1.000001", text="y")
    assert exc.value.response["error"] == "message_not_found"
    assert sim.messages("U05")[0].text == "x"


def test_messages_are_snapshots(client, sim):
    client.chat_postMessage(channel="U05", text="original")
    sim.messages("U05")[0].text = "tampered"
    assert sim.messages("U05")[0].text == "original"


def test_ephemeral(client, sim):
    resp = client.chat_postEphemeral(channel="C200", user="U06", text="Only you can see this")
    assert resp["message_ts"]
    [eph] = sim.ephemerals("U06")
    assert eph.text == "Only you can see this" and eph.channel == "C200" and eph.ts == resp["message_ts"]
    assert sim.ephemerals("U05") == []
    assert sim.messages("C200") == []


def test_views_open_update_push(client, sim):
    trigger = sim.new_trigger_id("U05")
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Start visit"},
        "blocks": [],
        "external_id": "visit-1",
    }
    opened = client.views_open(trigger_id=trigger, view=modal)
    view_id = opened["view"]["id"]
    assert view_id.startswith("V")
    assert opened["view"]["title"]["text"] == "Start visit"

    changed = dict(modal, title={"type": "plain_text", "text": "Visit started"})
    updated = client.views_update(view_id=view_id, hash=opened["view"]["hash"], view=changed)
    assert updated["view"]["id"] == view_id
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=view_id, hash=opened["view"]["hash"], view=changed)
    assert exc.value.response["error"] == "hash_conflict"
    by_external = client.views_update(external_id="visit-1", view=modal)
    assert by_external["view"]["id"] == view_id

    pushed = client.views_push(trigger_id=trigger, view={"type": "modal", "blocks": []})
    assert pushed["view"]["id"] != view_id

    shown = sim.views("U05")
    assert [v.method for v in shown] == ["views.open", "views.update", "views.update", "views.push"]
    assert shown[1].view["title"]["text"] == "Visit started"
    assert sim.views("U06") == []
    assert len(sim.views()) == 4
    assert sim.calls_to("views.open")[0].params["view"] == modal


def test_conversations_open(client):
    resp = client.conversations_open(users="U05")
    assert resp["channel"]["id"] == "DU05"


def test_conversations_open_with_several_users_is_a_group_dm_with_the_bot(client, sim):
    first = client.conversations_open(users="U05,U06")["channel"]
    assert first["is_mpim"] and first["id"].startswith("G")
    assert sim.members(first["id"]) == sorted(["U05", "U06", sim.bot_user_id])
    again = client.conversations_open(users="U06,U05")
    assert again["channel"]["id"] == first["id"] and again["already_open"]  # the same people: the same group DM
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="U05,U99")
    assert exc.value.response["error"] == "user_not_found"
    assert sim.members("GNONE") == []


def test_users_info(client, sim):
    user = client.users_info(user="U05")["user"]
    assert user["id"] == "U05"
    assert user["real_name"] == "Jo Reid"
    assert user["profile"]["real_name"] == "Jo Reid"
    assert user["profile"]["phone"] == "07700 900001"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U99")
    assert exc.value.response["error"] == "user_not_found"
    sim.add_user("U99", "Ali Khan", phone="07700 900099")
    assert client.users_info(user="U99")["user"]["profile"]["phone"] == "07700 900099"


def test_unknown_method_recorded(client, sim):
    with pytest.raises(SlackApiError) as exc:
        client.api_call("pins.add", params={"channel": "C1"})
    assert exc.value.response.status_code == 200
    assert exc.value.response["error"] == "unknown_method"
    call = sim.calls[-1]
    assert call.method == "pins.add" and call.error == "unknown_method" and call.failed is False


def test_rate_limit_injection(client, sim):
    sim.fail("chat.postMessage", 429, times=2, retry_after=1)
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="U05", text="hello")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "1"
        assert exc.value.response["error"] == "ratelimited"
    assert sim.messages("U05") == []

    # Other methods are unaffected, and the third post goes through.
    assert client.auth_test()["ok"] is True
    assert client.chat_postMessage(channel="U05", text="hello")["ok"] is True
    assert len(sim.messages("U05")) == 1

    posts = sim.calls_to("chat.postMessage")
    assert [c.failed for c in posts] == [True, True, False]
    assert [c.status for c in posts] == [429, 429, 200]


def test_rate_limit_without_retry_after_has_no_header(client, sim):
    sim.fail("chat.postMessage", 429, times=1)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="U05", text="hello")
    assert exc.value.response.status_code == 429
    assert "Retry-After" not in exc.value.response.headers


def test_server_error_injection_any_method(client, sim):
    sim.fail(None, 500, times=1)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="U05", text="hello")
    assert exc.value.response.status_code == 500
    assert exc.value.response["ok"] is False
    assert sim.messages("U05") == []
    assert sim.calls[-1].failed is True
    assert client.chat_postMessage(channel="U05", text="hello")["ok"] is True


def test_logical_error_injection(client, sim):
    sim.fail("users.info", 200, times=1, error="fatal_error")
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U05")
    assert exc.value.response.status_code == 200
    assert exc.value.response["error"] == "fatal_error"


def test_down_and_up(client, sim):
    sim.down()
    for call in (lambda: client.auth_test(), lambda: client.chat_postMessage(channel="U05", text="x")):
        with pytest.raises(SlackApiError) as exc:
            call()
        assert exc.value.response.status_code == 503
    assert sim.messages("U05") == []
    assert all(c.failed for c in sim.calls)
    sim.up()
    assert client.chat_postMessage(channel="U05", text="x")["ok"] is True


def test_reset(client, sim):
    client.chat_postMessage(channel="U05", text="x")
    sim.fail(None, 500, times=3)
    sim.reset()
    assert sim.calls == [] and sim.inbox() == {}
    assert client.auth_test()["ok"] is True


def test_inbox_groups_by_channel(client, sim):
    client.chat_postMessage(channel="U05", text="a")
    client.chat_postMessage(channel="U06", text="b")
    client.chat_postMessage(channel="C300", text="c")
    inbox = sim.inbox()
    assert set(inbox) == {"DU05", "DU06", "C300"}
    assert [m.text for m in inbox["DU06"]] == ["b"]


def test_plain_rendering_without_blocks_is_the_text():
    assert Posted(channel="DU05", ts="1.0", text="Are you safe?").plain() == "Are you safe?"


def test_plain_rendering():
    msg = Posted(channel="DU05", ts="1.0", text="Are you safe?", blocks=APPROVAL_BLOCKS)
    lines = msg.plain().splitlines()
    # With blocks, Slack shows the blocks; `text` is only the notification fallback.
    assert lines == [
        "Visit check-in",
        "*Jo Reid* is visiting 12 Elm St",
        "*Due back:* 15:30",
        "Risk: low",
        "Started 14:00",
        "[Approve] [Decline]",
    ]


def test_plain_rendering_section_accessory_button():
    blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Overdue"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "I'm safe"}},
        }
    ]
    assert Posted(channel="C1", ts="1.0", text="", blocks=blocks).plain() == "Overdue\n[I'm safe]"


def test_sign_request_matches_slack_sdk():
    secret = "test-signing-secret"
    body = "token=abc&command=%2Fvisitsafe&text=start"
    headers = sign_request(secret, body)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    verifier = SignatureVerifier(secret)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not verifier.is_valid(body + "x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])


def test_sign_request_explicit_timestamp():
    class Fixed(Clock):
        def now(self) -> float:
            return 1_600_000_000.0

    headers = sign_request("s3cret", "payload=%7B%7D", timestamp=1_600_000_000)
    assert headers["X-Slack-Request-Timestamp"] == "1600000000"
    assert SignatureVerifier("s3cret", clock=Fixed()).is_valid_request("payload=%7B%7D", headers)
    # Far from the verifier's clock, the same signature must be rejected as stale.
    assert not SignatureVerifier("s3cret").is_valid_request("payload=%7B%7D", headers)
    assert abs(int(sign_request("s3cret", "")["X-Slack-Request-Timestamp"]) - time.time()) < 5


def test_stop_releases_server():
    sim = SimSlack().start()
    url = sim.base_url
    sim.stop()
    with pytest.raises(RuntimeError):
        sim.base_url
    with pytest.raises(Exception):
        urlopen(Request(url + "auth.test", data=b"", method="POST"), timeout=1)
