"""Google Chat bearer tokens: only a token Chat signed for this app passes (google-auth, both audience types)."""
from __future__ import annotations

import base64
import json
import time

import pytest

from bot.gchat.auth import ChatAuthError, ChatVerifier
from bot.simchat import SimChat

PROJECT = "123456789012"
ENDPOINT = "https://visitsafe.example.org/gchat/events"


@pytest.fixture(scope="module")
def sim():
    with SimChat() as running:
        yield running


@pytest.fixture
def verifier(sim):
    return ChatVerifier(PROJECT, sim.certs_url)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_token_chat_signed_for_this_project_passes(sim, verifier):
    claims = verifier.verify(bearer(sim.mint_token(PROJECT)))
    assert claims["iss"] == "chat@system.gserviceaccount.com" and claims["aud"] == PROJECT


def test_an_endpoint_url_audience_takes_google_oidc_tokens_for_chats_account(sim):
    verifier = ChatVerifier(ENDPOINT, sim.certs_url)
    claims = verifier.verify(bearer(sim.mint_token(ENDPOINT)))
    assert claims["email"] == "chat@system.gserviceaccount.com" and claims["iss"] == "https://accounts.google.com"


def test_an_endpoint_url_token_for_another_account_is_refused(sim):
    verifier = ChatVerifier(ENDPOINT, sim.certs_url)
    with pytest.raises(ChatAuthError, match="service account"):
        verifier.verify(bearer(sim.mint_token(ENDPOINT, email="someone@example.iam.gserviceaccount.com")))
    with pytest.raises(ChatAuthError, match="issuer"):
        verifier.verify(bearer(sim.mint_token(ENDPOINT, iss="https://evil.example.com")))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "bearer not-a-jwt", "Bearer a.b"])
def test_a_missing_or_malformed_header_is_refused(verifier, header):
    with pytest.raises(ChatAuthError):
        verifier.verify(header)


def test_an_expired_token_is_refused(sim, verifier):
    token = sim.mint_token(PROJECT, issued_at=int(time.time()) - 7200, expires_in=3600)
    with pytest.raises(ChatAuthError, match="invalid token"):
        verifier.verify(bearer(token))


def test_a_token_for_another_audience_is_refused(sim, verifier):
    with pytest.raises(ChatAuthError, match="invalid token"):
        verifier.verify(bearer(sim.mint_token("999999999999")))
    with pytest.raises(ChatAuthError):
        ChatVerifier(ENDPOINT, sim.certs_url).verify(bearer(sim.mint_token(ENDPOINT + "/other")))


def test_a_token_from_another_issuer_is_refused(sim, verifier):
    with pytest.raises(ChatAuthError, match="issuer"):
        verifier.verify(bearer(sim.mint_token(PROJECT, iss="attacker@example.iam.gserviceaccount.com")))


def test_a_token_signed_by_another_key_is_refused(sim, verifier):
    with pytest.raises(ChatAuthError, match="invalid token"):
        verifier.verify(bearer(sim.mint_token(PROJECT, untrusted=True)))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_tampered_token_is_refused(sim, verifier):
    header, payload, signature = sim.mint_token(PROJECT).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = ".".join([header, _b64({**claims, "aud": "999999999999", "exp": claims["exp"] + 86400}), signature])
    with pytest.raises(ChatAuthError, match="invalid token"):
        ChatVerifier("999999999999", sim.certs_url).verify(bearer(forged))
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    with pytest.raises(ChatAuthError):
        verifier.verify(bearer(unsigned))


def test_unreachable_certificates_refuse_the_request_and_say_so():
    verifier = ChatVerifier(PROJECT, "http://127.0.0.1:9/certs")
    with SimChat() as other:
        token = other.mint_token(PROJECT)
    with pytest.raises(ChatAuthError) as refused:
        verifier.verify(bearer(token))
    assert refused.value.unavailable
