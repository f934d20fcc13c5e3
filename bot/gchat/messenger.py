"""The Messenger port on Google Chat: spaces.messages.create / patch / get, errors sorted into retry or give up."""
from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import uuid
from datetime import datetime
from typing import Any, Mapping

import google.auth.exceptions
import httplib2
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.gchat import render
from bot.outbox import Gone, TryLater, Undeliverable
from flows.messages import Message

log = logging.getLogger("visitsafe.gchat")

CHAT_API = "https://chat.googleapis.com/"
CHAT_SCOPE = "https://www.googleapis.com/auth/chat.bot"
# An API call that has not answered in this long is retried by the outbox (after looking for it first).
TIMEOUT = 10.0


class _NotFound(Exception):
    pass


class _AlreadyExists(Exception):
    pass


def message_ident(key: str, namespace: str = "") -> str:
    """The hex digest naming an outbox row's message in Chat (its requestId and client-assigned id)."""
    return hashlib.sha256(f"{namespace}\x00{key}".encode()).hexdigest()[:40]


def message_id(key: str, namespace: str = "") -> str:
    """The client-assigned messageId for a key: `client-` and 40 hex digits (Chat allows 63 characters)."""
    return "client-" + message_ident(key, namespace)


class ChatMessenger:
    """Sends neutral messages to Google Chat as the app (service-account credentials, chat.bot scope).

    `key_namespace`: mixed into every requestId and message id, so two databases (a fresh install, a restored
    backup) that reuse outbox keys never collide with each other's messages in the same space.
    """

    def __init__(self, credentials: Any, api_url: str = CHAT_API, *, key_namespace: str = "", timeout: float = TIMEOUT,
                 names: Mapping[str, str] | None = None):
        self.credentials = credentials
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.key_namespace = key_namespace
        self.timeout = timeout
        # People's names for cards, which cannot mention anyone (the policy's staff directory).
        self.names = dict(names or {})
        self._local = threading.local()
        self._dms: dict[str, str] = {}
        self._dm_lock = threading.Lock()

    @classmethod
    def from_service_account_file(cls, path: str, api_url: str = CHAT_API, **kwargs: Any) -> ChatMessenger:
        """A messenger authenticated by a service-account key file (GOOGLE_APPLICATION_CREDENTIALS)."""
        credentials = service_account.Credentials.from_service_account_file(str(path), scopes=[CHAT_SCOPE])
        return cls(credentials, api_url, **kwargs)

    # ----- the Messenger port -----

    def post(self, message: Message, outbox_key: str | None = None) -> tuple[str, str]:
        """Post to a space (`spaces/…`) or DM a person (`users/…`); return (space name, message name).

        The requestId and message id come from the outbox key (or the message's own key), so a post repeated
        after a lost answer returns the message already created instead of a second one."""
        key = outbox_key or message.key
        ident = message_ident(key, self.key_namespace) if key else uuid.uuid4().hex
        space = self._space(message.to)
        if space is None:
            raise Undeliverable("no_direct_message: the person has not added the app in Google Chat")
        messages = self._service().spaces().messages()
        request = messages.create(
            parent=space, body=render.message(message, self.names), requestId=f"visitsafe-{ident}", messageId=f"client-{ident}"
        )
        try:
            created = self._call(request, maybe_sent=True)
        except _NotFound:
            if message.to.startswith("users/"):
                self._forget_dm(message.to)  # the DM space has gone: look it up afresh next time
            raise Undeliverable("space_not_found") from None
        except _AlreadyExists:
            # A message with this id is there already (a request id Chat no longer remembers): it is this one.
            created = self._get(f"{space}/messages/client-{ident}")
            if created is None:
                raise TryLater("already_exists_but_not_found", maybe_sent=True) from None
        return space, created["name"]

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """Rewrite a message already posted (`message_ts` is its resource name)."""
        request = self._service().spaces().messages().patch(
            name=message_ts, updateMask="text,cardsV2", body=render.message(message, self.names)
        )
        try:
            self._call(request)
        except _NotFound:
            raise Gone("message_not_found") from None
        except _AlreadyExists:
            raise Undeliverable("already_exists") from None

    def find(self, to: str, outbox_key: str, since: datetime) -> tuple[str, str] | None:
        """(space, message name) of the message posted to `to` with `outbox_key`, if Chat has it.

        The message carries a client-assigned id derived from the key, so one get answers (no history scan)."""
        space = self._space(to)
        if space is None:
            return None  # no DM with the app: nothing can have been posted there
        found = self._get(f"{space}/messages/{message_id(outbox_key, self.key_namespace)}")
        return (space, found["name"]) if found is not None else None

    # ----- helpers -----

    def direct_message_space(self, user: str) -> str | None:
        """The DM space between a person (`users/…`) and the app, or None if they have not added the app."""
        return self._space(user)

    def _space(self, to: str) -> str | None:
        if not to.startswith("users/"):
            if not to.startswith("spaces/"):
                raise Undeliverable(f"not a Chat space or person: {to[:40]!r}")
            return to
        with self._dm_lock:
            cached = self._dms.get(to)
        if cached is not None:
            return cached
        try:
            space = self._call(self._service().spaces().findDirectMessage(name=to))["name"]
        except (_NotFound, _AlreadyExists):
            return None  # not cached: once the person adds the app, the next attempt finds the DM
        with self._dm_lock:
            self._dms[to] = space
        return space

    def _forget_dm(self, user: str) -> None:
        with self._dm_lock:
            self._dms.pop(user, None)

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call(self._service().spaces().messages().get(name=name))
        except (_NotFound, _AlreadyExists):
            return None

    def _service(self) -> Any:
        # httplib2.Http is not thread-safe: one client (and one connection pool) per thread.
        service = getattr(self._local, "service", None)
        if service is None:
            http = AuthorizedHttp(self.credentials, http=httplib2.Http(timeout=self.timeout))
            service = build(
                "chat", "v1", http=http, client_options={"api_endpoint": self.api_url},
                static_discovery=True, cache_discovery=False,
            )
            self._local.service = service
        return service

    @staticmethod
    def _call(request: Any, *, maybe_sent: bool = False) -> Any:
        try:
            return request.execute(num_retries=0)
        except HttpError as exc:
            status = int(exc.resp.status)
            reason = _status_name(exc)
            if status == 429:
                raise TryLater("rate_limited", _retry_after(exc.resp.get("retry-after"))) from None
            if status == 404:
                raise _NotFound(reason) from None
            if status == 409:
                raise _AlreadyExists(reason) from None
            if status == 401:
                raise TryLater("unauthenticated", refused=True) from None
            if status >= 500 or status == 408:
                # A server error may come after the message was stored: look before posting again.
                raise TryLater(f"http_{status}", _retry_after(exc.resp.get("retry-after")), maybe_sent=maybe_sent) from None
            # 400 (a card Chat refuses), 403 (the app is not a member of the space): never accepted as addressed.
            raise Undeliverable(f"http_{status} {reason}".strip()) from None
        except google.auth.exceptions.RefreshError as exc:
            # The token endpoint refused the key (revoked, wrong scope) or could not be reached.
            refused = not getattr(exc, "retryable", False)
            raise TryLater("token_refused" if refused else "token_unavailable", refused=refused) from None
        except (google.auth.exceptions.TransportError, httplib2.HttpLib2Error, socket.timeout, OSError) as exc:
            raise TryLater(type(exc).__name__, maybe_sent=maybe_sent) from None


def _status_name(exc: HttpError) -> str:
    """Google's error status (NOT_FOUND, …) without the message, which may quote what was sent."""
    try:
        return str(json.loads(exc.content).get("error", {}).get("status", ""))[:40]
    except (ValueError, AttributeError, TypeError):
        return ""


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date is ignored: the backoff decides then)."""
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
