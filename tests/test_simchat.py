"""SimChat speaks Google Chat's wire format: what googleapiclient and google-auth expect, and what Chat refuses."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httplib2
import pytest
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.gchat.auth import ChatAuthError, ChatVerifier
from bot.simchat import SimChat
from bot.simchat.driver import ChatDriver

OFFICE, SAM = "spaces/OFFICE", "users/101"
PROJECT = "123456789012"


@pytest.fixture
def sim():
    with SimChat(users={SAM: "Sam Visitor"}, spaces=[OFFICE]) as running:
        yield running


def chat(sim, credentials=None):
    http = AuthorizedHttp(credentials or sim.credentials(), http=httplib2.Http(timeout=10))
    return build("chat", "v1", http=http, client_options={"api_endpoint": sim.base_url}, static_discovery=True, cache_discovery=False)


def status_of(request) -> int:
    with pytest.raises(HttpError) as error:
        request.execute()
    return error.value.resp.status


def test_the_bundled_discovery_document_reaches_the_fake(sim):
    space = chat(sim).spaces().findDirectMessage(name=SAM).execute()
    assert space["name"] == sim.dm_space(SAM) and space["spaceType"] == "DIRECT_MESSAGE"


def test_requests_without_a_token_from_the_token_endpoint_are_refused(sim):
    http = httplib2.Http(timeout=10)
    service = build("chat", "v1", http=http, client_options={"api_endpoint": sim.base_url}, static_discovery=True, cache_discovery=False)
    assert status_of(service.spaces().messages().create(parent=OFFICE, body={"text": "hi"})) == 401
    assert sim.messages(OFFICE) == []


def test_a_request_id_returns_the_message_it_created(sim):
    messages = chat(sim).spaces().messages()
    first = messages.create(parent=OFFICE, body={"text": "hi"}, requestId="r1", messageId="client-abc").execute()
    again = messages.create(parent=OFFICE, body={"text": "hi"}, requestId="r1", messageId="client-abc").execute()
    assert first["name"] == again["name"] and len(sim.messages(OFFICE)) == 1
    assert messages.get(name=f"{OFFICE}/messages/client-abc").execute()["name"] == first["name"]
    assert status_of(messages.create(parent=OFFICE, body={"text": "hi"}, requestId="r2", messageId="client-abc")) == 409


@pytest.mark.parametrize("body, message_id", [
    ({"text": "x" * 4097}, None),
    ({"text": "hi"}, "custom-name"),
    ({"text": "hi"}, "client-UPPER"),
    ({"text": "hi", "cardsV2": [{"card": {}}]}, None),
    ({"text": "hi", "cardsV2": [{"cardId": "c", "card": {"sections": [{"widgets": [{"buttonList": {"buttons": [{"text": "OK"}]}}]}]}}]}, None),
    ({}, None),
])
def test_what_chat_refuses_is_refused(sim, body, message_id):
    assert status_of(chat(sim).spaces().messages().create(parent=OFFICE, body=body, messageId=message_id)) == 400


def test_a_patch_needs_an_update_mask_and_changes_only_its_fields(sim):
    messages = chat(sim).spaces().messages()
    name = messages.create(parent=OFFICE, body={"text": "before"}).execute()["name"]
    assert status_of(messages.patch(name=name, body={"text": "after"})) == 400
    messages.patch(name=name, updateMask="text", body={"text": "after"}).execute()
    assert [m.text for m in sim.messages(OFFICE)] == ["after"] and sim.message(name).history[0].text == "before"


def test_failures_are_injected_per_method_with_retry_after(sim):
    sim.fail("spaces.messages.create", 429, times=2, retry_after=3)
    messages = chat(sim).spaces().messages()
    for _ in range(2):
        with pytest.raises(HttpError) as error:
            messages.create(parent=OFFICE, body={"text": "hi"}).execute()
        assert error.value.resp.status == 429 and error.value.resp["retry-after"] == "3"
    messages.create(parent=OFFICE, body={"text": "hi"}).execute()
    assert [c.status for c in sim.calls_to("spaces.messages.create")] == [429, 429, 200]


def test_tokens_minted_by_the_sim_pass_google_auth_against_its_certs(sim):
    assert ChatVerifier(PROJECT, sim.certs_url).verify("Bearer " + sim.mint_token(PROJECT))["aud"] == PROJECT
    with pytest.raises(ChatAuthError):
        ChatVerifier(PROJECT, sim.certs_url).verify("Bearer " + sim.mint_token(PROJECT, untrusted=True))


class _App(BaseHTTPRequestHandler):
    """A stand-in for /gchat/events: verifies the bearer token, records the event."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            self.server.verifier.verify(self.headers.get("Authorization"))
            status, answer = 200, {"text": f"got {body['type']}"}
            self.server.events.append(body)
        except ChatAuthError:
            status, answer = 401, {"error": "unauthorized"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def app(sim):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.verifier, server.events = ChatVerifier(PROJECT, sim.certs_url), []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_driver_sends_authorised_interaction_events_in_chats_shapes(sim, app):
    driver = ChatDriver(f"http://127.0.0.1:{app.server_address[1]}/gchat/events", sim, PROJECT)
    assert driver.command(SAM, "/out", "2h 12 Oak Road").text == "got MESSAGE"
    driver.click(SAM, "ack", "42", space=OFFICE)
    driver.submit(SAM, "visit_submit", {"where": "12 Oak Road", "companions": ["users/1", "users/2"]})
    driver.added(SAM, OFFICE)
    command, click, submit, added = app.events
    annotation = command["message"]["annotations"][0]
    assert annotation["type"] == "SLASH_COMMAND" and annotation["slashCommand"]["commandName"] == "/out"
    assert command["message"]["argumentText"].strip() == "2h 12 Oak Road" and command["user"]["name"] == SAM
    assert command["space"]["name"] == sim.dm_space(SAM) and command["message"]["slashCommand"]["commandId"]
    assert click["type"] == "CARD_CLICKED" and click["common"]["invokedFunction"] == "ack"
    assert click["common"]["parameters"] == {"value": "42"} and click["space"]["name"] == OFFICE
    assert submit["isDialogEvent"] and submit["dialogEventType"] == "SUBMIT_DIALOG"
    assert submit["common"]["formInputs"]["companions"] == {"stringInputs": {"value": ["users/1", "users/2"]}}
    assert added["type"] == "ADDED_TO_SPACE"


def test_the_driver_can_send_a_bad_token_which_the_app_refuses(sim, app):
    driver = ChatDriver(f"http://127.0.0.1:{app.server_address[1]}/gchat/events", sim, PROJECT)
    assert driver.send({"type": "MESSAGE"}, authorization="").status == 401
    assert driver.send({"type": "MESSAGE"}, token=sim.mint_token("999")).status == 401
    assert app.events == []
