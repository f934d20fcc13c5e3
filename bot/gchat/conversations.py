"""The private-conversation port on Google Chat: a space of the people and the app, or the policy's fallback space."""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable

import google.auth.exceptions
import httplib2
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from commands.context import CannotOpen
from commands.logsafe import log_failure

log = logging.getLogger("visitsafe.gchat")

# App authentication with the administrator's one-time approval (spaces.setup takes user authentication only).
APP_SPACE_SCOPES = ("https://www.googleapis.com/auth/chat.app.spaces.create", "https://www.googleapis.com/auth/chat.app.memberships")
TIMEOUT = 10.0


class ChatConversations:
    """Opens a space of several people and the app (spaces.create, then spaces.members.create for each, as the app);
    when Chat refuses (app-created spaces not approved by the administrator), the policy's `fallback_space`.
    Called outside any transaction."""

    def __init__(self, credentials: Callable[[], Any], api_url: str, fallback_space: str | None):
        self._credentials = credentials  # made on first use: a key without the app scopes must not stop start-up
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.fallback_space = fallback_space
        self._local = threading.local()

    @classmethod
    def from_service_account_file(cls, path: str, api_url: str, fallback_space: str | None) -> ChatConversations:
        """Authenticated as the app by a service-account key file (GOOGLE_APPLICATION_CREDENTIALS), with the app-space scopes."""
        return cls(lambda: service_account.Credentials.from_service_account_file(path, scopes=list(APP_SPACE_SCOPES)), api_url, fallback_space)

    def __call__(self, members: list[str]) -> str:
        """The space's name (`spaces/…`); the fallback space if Chat would not create one; else CannotOpen."""
        try:
            return self._create(members)
        except CannotOpen as exc:
            if not self.fallback_space:
                raise
            log.warning("could not create a confidential space (%s): using the policy's confidential_fallback_space", exc)
            return self.fallback_space

    def _create(self, members: list[str]) -> str:
        spaces = self._service().spaces()
        # Display names are unique in a domain; this one names no one (the space's members are visible to them anyway).
        body = {"spaceType": "SPACE", "displayName": f"VisitSafe confidential {uuid.uuid4().hex[:8]}", "customer": "customers/my_customer"}
        space = _call(spaces.create(body=body))["name"]
        for user in members:
            _call(spaces.members().create(parent=space, body={"member": {"name": user, "type": "HUMAN"}}))
        return str(space)

    def _service(self) -> Any:
        # httplib2.Http is not thread-safe: one client per thread.
        service = getattr(self._local, "service", None)
        if service is None:
            http = AuthorizedHttp(self._credentials(), http=httplib2.Http(timeout=TIMEOUT))
            service = build("chat", "v1", http=http, client_options={"api_endpoint": self.api_url},
                            static_discovery=True, cache_discovery=False)
            self._local.service = service
        return service


def _call(request: Any) -> Any:
    """Execute one API call; any failure is CannotOpen with a short code (never the answer's text)."""
    try:
        return request.execute(num_retries=0)
    except HttpError as exc:
        raise CannotOpen(f"http_{int(exc.resp.status)}") from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise CannotOpen(type(exc).__name__) from None
    except (httplib2.HttpLib2Error, OSError) as exc:
        log_failure(log, "creating a confidential space", exc)
        raise CannotOpen(type(exc).__name__) from None
