"""Checks that an HTTP request really comes from Google Chat: the bearer token, with google-auth."""
from __future__ import annotations

import threading
import time
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import id_token

from bot.settings import GOOGLE_CHAT_CERTS as CHAT_CERTS_URL, GOOGLE_OAUTH2_CERTS as GOOGLE_CERTS_URL

CHAT_ISSUER = "chat@system.gserviceaccount.com"
# Project-number audience: a JWT signed by Chat's own service account, checked against its x509 certificates.
# Endpoint-URL audience: a Google-signed OIDC ID token for Chat's service account, checked against Google's certificates.
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
# Certificates rotate daily and are published well ahead: an hour's cache is safe and spares a fetch per request.
CERTS_TTL = 3600.0
# After an unknown key id, fetch again at most this often (a stream of forged tokens must not hammer Google).
REFETCH_GAP = 30.0
MAX_TOKEN = 8192


class ChatAuthError(Exception):
    """The request does not carry a valid token from Google Chat (answer 401 and change nothing).

    `unavailable`: the certificates could not be fetched, so no token can be checked just now.
    """

    def __init__(self, reason: str, *, unavailable: bool = False):
        super().__init__(reason)
        self.unavailable = unavailable


def is_endpoint_url(audience: str) -> bool:
    """True for the endpoint-URL audience type, False for a Cloud project number."""
    return audience.startswith(("https://", "http://"))


def default_certs_url(audience: str) -> str:
    """Where the keys for this audience type are published."""
    return GOOGLE_CERTS_URL if is_endpoint_url(audience) else CHAT_CERTS_URL


class _CachedCerts:
    """A google-auth transport Request that answers GETs of the certs URL from a cache."""

    def __init__(self, ttl: float):
        self._http = google.auth.transport.requests.Request()
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, Any]] = {}

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kwargs: Any) -> Any:
        with self._lock:
            hit = self._cached.get(url)
            if hit is not None and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
        response = self._http(url, method=method, body=body, headers=headers, timeout=timeout or 10, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cached[url] = (time.monotonic(), response)
        return response

    def forget(self, url: str, gap: float) -> bool:
        """Drop the cached certificates if they are older than `gap` seconds; True if dropped."""
        with self._lock:
            hit = self._cached.get(url)
            if hit is None or time.monotonic() - hit[0] < gap:
                return False
            del self._cached[url]
            return True


class ChatVerifier:
    """Verifies the `Authorization: Bearer <JWT>` header of a Google Chat interaction event.

    `audience` is the Cloud project number or the app's endpoint URL, as configured in the Chat API;
    `certs_url` (GOOGLE_CHAT_CERTS_URL) overrides where the signing keys are fetched from.
    """

    def __init__(self, audience: str, certs_url: str | None = None, *, certs_ttl: float = CERTS_TTL):
        if not audience:
            raise ValueError("GOOGLE_CHAT_AUDIENCE is empty: set the Cloud project number or the app's endpoint URL")
        self.audience = audience
        self.certs_url = certs_url or default_certs_url(audience)
        self._request = _CachedCerts(certs_ttl)

    def verify(self, authorization_header: str | None) -> dict[str, Any]:
        """The token's claims if the header carries a valid Chat token for this app; else ChatAuthError."""
        scheme, _, token = (authorization_header or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ChatAuthError("no bearer token")
        if len(token) > MAX_TOKEN or token.count(".") != 2:
            raise ChatAuthError("malformed token")
        try:
            claims = self._decode(token)
        except google.auth.exceptions.TransportError as exc:
            raise ChatAuthError(f"certificates unavailable ({type(exc).__name__})", unavailable=True) from None
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise ChatAuthError(f"invalid token ({_reason(exc)})") from None
        self._check_issuer(claims)
        return dict(claims)

    def _decode(self, token: str) -> Any:
        try:
            return id_token.verify_token(token, self._request, audience=self.audience, certs_url=self.certs_url)
        except ValueError as exc:
            # A key id we do not know may be a key Google has just rotated in: look once more, not more often.
            if "Certificate for key id" in str(exc) and self._request.forget(self.certs_url, REFETCH_GAP):
                return id_token.verify_token(token, self._request, audience=self.audience, certs_url=self.certs_url)
            raise

    def _check_issuer(self, claims: Any) -> None:
        if is_endpoint_url(self.audience):
            if claims.get("iss") not in GOOGLE_ISSUERS:
                raise ChatAuthError("invalid token (issuer is not Google)")
            if claims.get("email") != CHAT_ISSUER or claims.get("email_verified") is False:
                raise ChatAuthError("invalid token (not Google Chat's service account)")
        elif claims.get("iss") != CHAT_ISSUER:
            raise ChatAuthError("invalid token (issuer is not Google Chat)")


def _reason(exc: Exception) -> str:
    """A short reason for a log line (google-auth's messages quote the token's claims, so keep only the start)."""
    text = str(exc).split(".")[0].split(":")[0]
    return text[:60] or type(exc).__name__
