"""The door of /slack/events: every request is sized, signed, fresh, unreplayed and from our workspace before Bolt sees it."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from commands.logsafe import log_failure
from storage.store import Store

log = logging.getLogger("visitsafe.gate")

MAX_BODY = 1024 * 1024  # Slack's largest payloads are a few tens of kB
REPLAY_WINDOW_S = 600.0  # Slack's signatures are valid for 5 minutes; keep them a little longer
RELEARN_AFTER_S = 60.0


class Identity:
    """The workspace (team id) and the app (app id) requests must come from: from the environment, else asked of Slack."""

    def __init__(self, client: WebClient, team_id: str | None = None, app_id: str | None = None):
        self.client = client
        self.team_id, self.app_id = team_id or None, app_id or None
        self._lock = threading.Lock()
        self._tried_at = float("-inf")
        self._learning = False

    @property
    def known(self) -> bool:
        return self.team_id is not None and self.app_id is not None

    def learn(self) -> None:
        """Ask auth.test (team id, bot id) and bots.info (app id); a failure leaves them unknown, to retry later."""
        self._tried_at = time.monotonic()
        try:
            if self.team_id is None or self.app_id is None:
                me = self.client.auth_test()
                self.team_id = self.team_id or me.get("team_id")
                if self.app_id is None and me.get("bot_id"):
                    self.app_id = (self.client.bots_info(bot=me["bot_id"]).get("bot") or {}).get("app_id")
        except Exception as exc:  # noqa: BLE001 - Slack unreachable at start-up must not stop the safety net
            log_failure(log, "learning the workspace and app ids", exc)
        finally:
            self._learning = False

    def relearn_in_background(self) -> None:
        """Try again off the request path (no remote call while Slack waits for an answer)."""
        with self._lock:
            if self.known or self._learning or time.monotonic() - self._tried_at < RELEARN_AFTER_S:
                return
            self._learning = True
        threading.Thread(target=self.learn, name="visitsafe-identity", daemon=True).start()


class Refused(Exception):
    """An HTTP refusal: status line and a short plain-text reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _header(environ: dict[str, Any], name: str) -> str | None:
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON document a Slack request carries (an event, a payload=…, or the form fields of a command)."""
    try:
        text = body.decode("utf-8")
        if "json" in content_type:
            doc = json.loads(text)
        else:
            form = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
            doc = json.loads(form["payload"]) if "payload" in form else form
    except (UnicodeDecodeError, ValueError):
        raise Refused("400 Bad Request", "The payload is not JSON.") from None
    if not isinstance(doc, dict):
        raise Refused("400 Bad Request", "The payload is not a JSON object.")
    return doc


def _origin(doc: dict[str, Any]) -> tuple[Any, Any]:
    team = doc.get("team_id")
    if team is None:
        team = (doc.get("team") or {}).get("id") if isinstance(doc.get("team"), dict) else None
    return team, doc.get("api_app_id")


class Gate:
    """Checks a POST to /slack/events; on success leaves the body re-readable for Bolt."""

    def __init__(self, store: Store, signing_secret: str | None, identity: Identity, now_s: Callable[[], float] = time.time):
        self.store = store
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.identity = identity
        self.now_s = now_s
        # Signatures seen by this process in the window: the replay check when the database cannot be written.
        self._seen: dict[str, float] = {}
        self._seen_lock = threading.Lock()

    def check(self, environ: dict[str, Any]) -> Refused | None:
        """None if Bolt may handle the request; else the refusal to answer (nothing has changed)."""
        try:
            self._check(environ)
        except Refused as refusal:
            if refusal.status[:3] not in ("200",):
                log.warning("refused a request to /slack/events: %s", refusal.reason)
            return refusal
        return None

    def _check(self, environ: dict[str, Any]) -> None:
        length_text = environ.get("CONTENT_LENGTH") or "0"
        if not length_text.isascii() or not length_text.isdigit():
            raise Refused("400 Bad Request", "Bad Content-Length.")
        if int(length_text) > MAX_BODY:
            raise Refused("413 Request Entity Too Large", "The request is too large.")
        body = environ["wsgi.input"].read(int(length_text)) if "wsgi.input" in environ else b""
        environ["wsgi.input"] = io.BytesIO(body)  # Bolt reads it again

        timestamp, signature = _header(environ, "X-Slack-Request-Timestamp"), _header(environ, "X-Slack-Signature")
        if self.verifier is None or not timestamp or not signature:
            raise Refused("401 Unauthorized", "The request is not signed.")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise Refused("400 Bad Request", "Bad X-Slack-Request-Timestamp.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("400 Bad Request", "The body is not UTF-8.") from None
        if not self.verifier.is_valid(text, timestamp, signature):
            raise Refused("401 Unauthorized", "Bad or expired signature.")
        if _header(environ, "X-Slack-Retry-Num") is not None:
            # Slack's own retry of an event we already received: acting again would act twice.
            raise Refused("200 OK", "")
        doc = _payload(body, environ.get("CONTENT_TYPE") or "")
        self._check_origin(doc)
        if not self._first_sight(signature):
            raise Refused("401 Unauthorized", "This request was already received (a replay).")

    def _first_sight(self, signature: str) -> bool:
        """Record a signature; False if it was seen within the window, by any process on this database
        or, while the database cannot be written, by this one."""
        now_s = self.now_s()
        with self._seen_lock:
            for old, at in list(self._seen.items()):
                if at < now_s - REPLAY_WINDOW_S:
                    del self._seen[old]
            seen_here = signature in self._seen
            self._seen.setdefault(signature, now_s)
        try:
            with self.store.transaction() as tx:
                return tx.first_sight(signature, now_s, REPLAY_WINDOW_S) and not seen_here
        except Exception as exc:  # noqa: BLE001 - a read-only database must not refuse an /sos: this process still remembers
            log_failure(log, "recording a request signature", exc)
            return not seen_here

    def _check_origin(self, doc: dict[str, Any]) -> None:
        if doc.get("type") == "url_verification" or "ssl_check" in doc:
            return
        if not self.identity.known:
            self.identity.relearn_in_background()
        team, app = _origin(doc)
        for expected, got, what in ((self.identity.team_id, team, "workspace"), (self.identity.app_id, app, "app")):
            # Unknown (Slack unreachable since start-up): the signature alone vouches, an SOS must not be refused.
            if expected is not None and got != expected:
                raise Refused("401 Unauthorized", f"This request is from another {what}.")
