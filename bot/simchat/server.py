"""A loopback fake of the Google Chat API, of Google's certificate endpoint and of a service account's token
endpoint, speaking the real wire format so googleapiclient and google-auth talk to it unchanged."""
from __future__ import annotations

import copy
import html
import json
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from bot.simchat.keys import TestKey

__all__ = ["SimChat", "ChatMessage", "Call", "CHAT_ISSUER", "CHAT_SCOPE"]

CHAT_ISSUER = "chat@system.gserviceaccount.com"
CHAT_SCOPE = "https://www.googleapis.com/auth/chat.bot"
# App authentication with administrator approval: the app creates a space and adds its members.
APP_SPACE_SCOPES = ("https://www.googleapis.com/auth/chat.app.spaces.create", "https://www.googleapis.com/auth/chat.app.memberships")
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
APP_USER = "users/app"
MAX_TEXT = 4096  # characters (UTF-16 code units) in a message's text
MAX_BYTES = 32_000  # a whole message, text and cards
_MESSAGE_ID = re.compile(r"^client-[a-z0-9-]+$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE",
           503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_WIDGETS = ("textParagraph", "decoratedText", "buttonList")
_UPDATABLE = {"text", "cardsV2", "cards_v2", "accessoryWidgets", "accessory_widgets", "attachment"}


@dataclass(frozen=True)
class Call:
    """One request the fake answered: `method` is the API method name (e.g. spaces.messages.create)."""

    method: str
    params: dict[str, str]
    body: Any
    status: int
    at: float


@dataclass
class ChatMessage:
    """A message as it stands in a space."""

    name: str
    space: str
    text: str
    cards_v2: list
    create_time: str
    client_id: str | None = None
    request_id: str | None = None
    markup_syntax: str | None = None
    updated: bool = False
    deleted: bool = False
    history: list[ChatMessage] = field(default_factory=list)
    directory: Mapping[str, str] = field(default_factory=dict, repr=False)

    def resource(self) -> dict[str, Any]:
        """The Message resource as the API returns it."""
        out: dict[str, Any] = {
            "name": self.name, "sender": {"name": APP_USER, "type": "BOT"}, "createTime": self.create_time,
            "text": self.text, "formattedText": self.text, "argumentText": self.text,
            "space": {"name": self.space}, "thread": {"name": f"{self.space}/threads/{self.name.rsplit('/', 1)[1]}"},
        }
        if self.cards_v2:
            out["cardsV2"] = copy.deepcopy(self.cards_v2)
        if self.client_id:
            out["clientAssignedMessageId"] = self.client_id
        if self.updated:
            out["lastUpdateTime"] = self.create_time
        return out

    def plain(self) -> str:
        """The message as a person sees it: the text (mentions as @Name), then each card widget on its line."""
        lines = [_mentions(self.text, self.directory)] if self.text else []
        for card in self.cards_v2:
            for section in (card.get("card") or {}).get("sections") or []:
                for widget in section.get("widgets") or []:
                    lines.extend(_widget_lines(widget))
        return "\n".join(line for line in lines if line)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Every button in the cards: {'text', 'function', 'parameters' (a dict)}."""
        out = []
        for card in self.cards_v2:
            for section in (card.get("card") or {}).get("sections") or []:
                for widget in section.get("widgets") or []:
                    for button in (widget.get("buttonList") or {}).get("buttons") or []:
                        action = button["onClick"]["action"]
                        params = {p["key"]: p["value"] for p in action.get("parameters") or []}
                        out.append({"text": button["text"], "function": action["function"], "parameters": params})
        return out


def _mentions(text: str, directory: Mapping[str, str]) -> str:
    return re.sub(r"<(users/[^>\s]+)>", lambda m: "@" + directory.get(m.group(1), m.group(1)), text)


def _card_text(markup: str) -> str:
    """Chat's card HTML subset as the words a person reads."""
    text = re.sub(r"<br\s*/?>", "\n", markup or "")
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _widget_lines(widget: dict[str, Any]) -> list[str]:
    if "textParagraph" in widget:
        return [_card_text(widget["textParagraph"].get("text", ""))]
    if "decoratedText" in widget:
        item = widget["decoratedText"]
        label = _card_text(item.get("topLabel", ""))
        return [f"{label}: {_card_text(item.get('text', ''))}" if label else _card_text(item.get("text", ""))]
    if "buttonList" in widget:
        return [" ".join(f"[{b.get('text', '')}]" for b in widget["buttonList"].get("buttons") or [])]
    return []


class _Failure(Exception):
    """An answer other than success: an HTTP status with Google's error body, or a dropped connection (0)."""

    def __init__(self, status: int, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message or _STATUS.get(status, "error"), retry_after


@dataclass
class _Rule:
    method: str
    status: int
    remaining: int
    retry_after: float | None
    after: bool


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_cards(cards: Any) -> None:
    """Chat's 400s for a malformed cardsV2 (the shapes VisitSafe uses)."""
    if not isinstance(cards, list):
        raise _Failure(400, "cardsV2 must be a list")
    ids = set()
    for item in cards:
        if not isinstance(item, dict) or not isinstance(item.get("cardId"), str) or not isinstance(item.get("card"), dict):
            raise _Failure(400, "each cardsV2 item needs a cardId and a card")
        if item["cardId"] in ids:
            raise _Failure(400, "cardId must be unique in a message")
        ids.add(item["cardId"])
        for section in item["card"].get("sections") or []:
            for widget in section.get("widgets") or []:
                kinds = [k for k in widget if k in _WIDGETS]
                if len(kinds) != 1 or len(widget) != 1:
                    raise _Failure(400, f"a widget must be exactly one of {', '.join(_WIDGETS)}")
                for button in (widget.get("buttonList") or {}).get("buttons", []):
                    action = ((button.get("onClick") or {}).get("action") or {})
                    params = action.get("parameters") or []
                    if not button.get("text") or not isinstance(action.get("function"), str) or not action["function"]:
                        raise _Failure(400, "a button needs text and onClick.action.function")
                    if not all(isinstance(p, dict) and set(p) == {"key", "value"} and all(isinstance(v, str) for v in p.values()) for p in params):
                        raise _Failure(400, "action parameters are {key, value} strings")


def _check_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Failure(400, "the body must be a Message")
    if len(json.dumps(body, ensure_ascii=False).encode()) > MAX_BYTES:
        raise _Failure(400, "message too large")
    if not isinstance(body.get("text", ""), str) or _length(body.get("text", "")) > MAX_TEXT:
        raise _Failure(400, "text is longer than 4096 characters")
    if body.get("markupSyntax", "MARKUP_SYNTAX_CHAT") not in ("MARKUP_SYNTAX_CHAT", "MARKUP_SYNTAX_MARKDOWN", "MARKUP_SYNTAX_UNSPECIFIED"):
        raise _Failure(400, "unknown markupSyntax")
    if "cardsV2" in body:
        _check_cards(body["cardsV2"])
    if not body.get("text") and not body.get("cardsV2"):
        raise _Failure(400, "a message needs text or cards")


class SimChat:
    """A simulated Google Chat with its people and spaces, for tests and the demo.

    `users`: Chat user names (`users/123`), or a mapping to display names; each has a DM with the app
    unless `no_dm_for(user)`. `spaces`: space names (`spaces/AAA`) the app is a member of, or a mapping
    to display names.
    """

    def __init__(self, users: Iterable[str] | Mapping[str, str] = (), spaces: Iterable[str] | Mapping[str, str] = ()):
        self.directory: dict[str, str] = dict(users) if isinstance(users, Mapping) else {u: u for u in users}
        self.space_names: dict[str, str] = dict(spaces) if isinstance(spaces, Mapping) else {s: s for s in spaces}
        self.chat_key = TestKey.generate(CHAT_ISSUER)
        self.other_key = TestKey.generate("not google")  # signs tokens no published certificate matches
        self.account_key = TestKey.generate("visitsafe service account")
        self.calls: list[Call] = []
        self._lock = threading.RLock()
        self._messages: dict[str, list[ChatMessage]] = {s: [] for s in self.space_names}
        self._dms: dict[str, str] = {}
        self._no_dm: set[str] = set()
        self._rules: list[_Rule] = []
        self._down = False
        self._access_tokens: set[str] = set()
        # Tokens granted the app-space scopes; whether the administrator approved app-created spaces.
        self._app_space_tokens: set[str] = set()
        self.app_spaces_approved = True
        self.members: dict[str, list[str]] = {}
        self._seq = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        for user in self.directory:
            self._dm_space(user)

    # ----- lifecycle -----

    def start(self) -> SimChat:
        """Serve on an ephemeral loopback port; returns self."""
        with self._lock:
            if self._httpd is None:
                httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
                httpd.daemon_threads = True
                httpd.sim = self  # type: ignore[attr-defined]
                self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="simchat", daemon=True)
                self._httpd = httpd
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        with self._lock:
            httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SimChat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError("SimChat is not running; call start() first")
        host, port = httpd.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def base_url(self) -> str:
        """The API endpoint for GOOGLE_CHAT_API_URL (ends in a slash, like https://chat.googleapis.com/)."""
        return self.root

    @property
    def certs_url(self) -> str:
        """Where the signing key's certificate is published ({kid: PEM}), for GOOGLE_CHAT_CERTS_URL."""
        return self.root + "certs"

    @property
    def token_uri(self) -> str:
        """The service account's token endpoint (the key file's `token_uri`)."""
        return self.root + "token"

    # ----- credentials -----

    def service_account_info(self) -> dict[str, str]:
        """A service-account key (as a key file holds it) whose token_uri is this fake."""
        return {
            "type": "service_account", "project_id": "visitsafe-sim", "private_key_id": self.account_key.kid,
            "private_key": self.account_key.private_pem, "client_email": "visitsafe@visitsafe-sim.iam.gserviceaccount.com",
            "client_id": "100000000000000000001", "token_uri": self.token_uri,
        }

    def write_service_account(self, path: str | Path | None = None) -> Path:
        """Write the key file (for GOOGLE_APPLICATION_CREDENTIALS) and return its path."""
        if path is None:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="simchat-")
            path = Path(self._tmp.name) / "service-account.json"
        path = Path(path)
        path.write_text(json.dumps(self.service_account_info()))
        path.chmod(0o600)
        return path

    def credentials(self) -> Any:
        """google-auth service-account credentials for the chat.bot scope, against this fake."""
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(self.service_account_info(), scopes=[CHAT_SCOPE])

    def mint_token(self, audience: str, *, expires_in: int = 3600, issued_at: int | None = None,
                   untrusted: bool = False, **claims: Any) -> str:
        """An RS256 bearer token as Chat sends it: for a project-number audience a JWT from
        chat@system.gserviceaccount.com; for an endpoint-URL audience a Google OIDC ID token whose email is
        that account. Extra claims override (None removes one); `untrusted` signs with an unpublished key."""
        now = int(time.time()) if issued_at is None else issued_at
        payload: dict[str, Any] = {"aud": audience, "iat": now, "exp": now + expires_in}
        if audience.startswith(("http://", "https://")):
            payload.update(iss=GOOGLE_ISSUER, email=CHAT_ISSUER, email_verified=True, sub="113000000000000000000", azp="113000000000000000000")
        else:
            payload["iss"] = CHAT_ISSUER
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return (self.other_key if untrusted else self.chat_key).sign(payload)

    # ----- people, spaces and failures -----

    def add_user(self, user: str, name: str | None = None, *, dm: bool = True) -> None:
        """Add a person to the directory; `dm=False`: they have not installed the app yet."""
        with self._lock:
            self.directory[user] = name or user
            if dm:
                self._no_dm.discard(user)
                self._dm_space(user)
            else:
                self._no_dm.add(user)

    def add_space(self, space: str, name: str | None = None) -> None:
        """A space the app is a member of."""
        with self._lock:
            self.space_names[space] = name or space
            self._messages.setdefault(space, [])

    def no_dm_for(self, user: str) -> None:
        """This person has no DM with the app (findDirectMessage answers 404)."""
        with self._lock:
            self._no_dm.add(user)

    def fail(self, method: str, status: int = 503, times: int = 1, retry_after: float | None = None, *, after: bool = False) -> None:
        """The next `times` calls of `method` (e.g. 'spaces.messages.create', or '*') answer `status`
        (0: the connection drops without an answer). `after=True`: the call takes effect first, then its
        answer is lost (a timeout after the server stored the message)."""
        with self._lock:
            self._rules.append(_Rule(method, status, times, retry_after, after))

    def down(self) -> None:
        """The API and the token endpoint drop every connection (a network outage)."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        """The outage is over."""
        with self._lock:
            self._down = False

    def refuse_app_spaces(self) -> None:
        """The administrator has not approved app-created spaces: spaces.create with app auth answers 403."""
        with self._lock:
            self.app_spaces_approved = False

    def delete(self, message_name: str) -> None:
        """A person deletes a message (a later patch answers 404)."""
        with self._lock:
            found = self._find(message_name)
            if found is not None:
                found.deleted = True

    # ----- inspection -----

    def dm_space(self, user: str) -> str | None:
        """The DM space of a person with the app, if they have one."""
        with self._lock:
            return None if user in self._no_dm else self._dms.get(user)

    def messages(self, space_or_user: str) -> list[ChatMessage]:
        """The messages a space (or a person's DM with the app) shows now, oldest first."""
        with self._lock:
            space = self._dms.get(space_or_user, space_or_user) if space_or_user.startswith("users/") else space_or_user
            return [m for m in self._messages.get(space, []) if not m.deleted]

    def message(self, name: str) -> ChatMessage | None:
        """A message by its resource name (or client-assigned name), deleted or not."""
        with self._lock:
            return self._find(name)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one API method."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # ----- the API -----

    def _dm_space(self, user: str) -> str:
        if user not in self._dms:
            self._seq += 1
            self._dms[user] = f"spaces/dm{self._seq:04d}"
            self._messages[self._dms[user]] = []
        return self._dms[user]

    def _find(self, name: str) -> ChatMessage | None:
        space, _, message_id = name.partition("/messages/")
        for message in self._messages.get(space, []):
            if message.name == name or (message.client_id and message.client_id == message_id):
                return message
        return None

    def _take_rule(self, method: str) -> _Rule | None:
        for rule in self._rules:
            if rule.method in (method, "*") and rule.remaining > 0:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None

    def handle(self, http_method: str, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """Route one request; returns (status, headers, JSON body); status 0 drops the connection."""
        method, args = _route(http_method, path)
        body: Any = None
        if raw and method != "token":
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        with self._lock:
            try:
                if method == "certs":
                    return 200, {"Cache-Control": "public, max-age=3600"}, {self.chat_key.kid: self.chat_key.certificate_pem}
                if self._down:
                    raise _Failure(0)
                if method == "token":
                    return 200, {}, self._token(raw)
                token = self._authorise(headers)
                if method in ("spaces.create", "spaces.members.create", "spaces.setup"):
                    self._may_create_spaces(method, token)
                rule = self._take_rule(method)
                if rule is not None and not rule.after:
                    raise _Failure(rule.status, retry_after=rule.retry_after)
                result = self._dispatch(method, args, query, body)
                if rule is not None:
                    raise _Failure(rule.status, retry_after=rule.retry_after)
                self._record(method, args, query, body, 200)
                return 200, {}, result
            except _Failure as failure:
                self._record(method, args, query, body, failure.status)
                if failure.status == 0:
                    return 0, {}, None
                extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
                error = {"error": {"code": failure.status, "message": failure.message, "status": _STATUS.get(failure.status, "UNKNOWN")}}
                return failure.status, extra, error

    def _record(self, method: str, args: dict[str, str], query: dict[str, str], body: Any, status: int) -> None:
        self.calls.append(Call(method, {**args, **query}, copy.deepcopy(body), status, time.time()))

    def _authorise(self, headers: Mapping[str, str]) -> str:
        scheme, _, token = (headers.get("Authorization") or headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self._access_tokens:
            raise _Failure(401, "Request had invalid authentication credentials.")
        return token

    def _may_create_spaces(self, method: str, token: str) -> None:
        """As Google: spaces.setup is for user authentication only; spaces.create and members.create by the app
        need the chat.app.* scopes and the administrator's one-time approval."""
        if method == "spaces.setup" or token not in self._app_space_tokens:
            raise _Failure(403, "Request had insufficient authentication scopes.")
        if not self.app_spaces_approved:
            raise _Failure(403, "The Chat app is not approved by the administrator to create spaces.")

    def _token(self, raw: bytes) -> dict[str, Any]:
        """The OAuth 2.0 JWT-bearer grant a service account's credentials use."""
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise _Failure(400, "unsupported_grant_type")
        try:
            # google-auth addresses the assertion to Google's token endpoint whatever the key file's token_uri.
            claims = self.account_key.verify(form.get("assertion", ""), audience=[self.token_uri, GOOGLE_TOKEN_AUDIENCE])
        except ValueError:
            raise _Failure(400, "invalid_grant") from None
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes or not scopes <= {CHAT_SCOPE, *APP_SPACE_SCOPES}:
            raise _Failure(400, "invalid_scope")
        token = "simchat-access-" + secrets.token_urlsafe(24)
        self._access_tokens.add(token)
        if set(APP_SPACE_SCOPES) <= scopes:
            self._app_space_tokens.add(token)
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _dispatch(self, method: str, args: dict[str, str], query: dict[str, str], body: Any) -> Any:
        if method == "spaces.findDirectMessage":
            user = query.get("name", "")
            if not user.startswith("users/") or user in self._no_dm or user not in self._dms:
                raise _Failure(404, "Direct message space not found.")
            return {"name": self._dms[user], "spaceType": "DIRECT_MESSAGE", "type": "DM", "singleUserBotDm": True}
        if method == "spaces.messages.create":
            return self._create(args["parent"], query, body)
        if method == "spaces.create":
            return self._create_space(body)
        if method == "spaces.members.create":
            return self._add_member(args["parent"], body)
        if method in ("spaces.messages.get", "spaces.messages.patch", "spaces.messages.delete"):
            found = self._find(args["name"])
            if found is None or found.deleted:
                raise _Failure(404, "Message not found.")
            if method == "spaces.messages.patch":
                self._patch(found, query, body)
            elif method == "spaces.messages.delete":
                found.deleted = True
                return {}
            return found.resource()
        raise _Failure(404, "Method not found.")

    def _create(self, space: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        if space not in self._messages:
            raise _Failure(404, "Space not found.")
        messages = self._messages[space]
        request_id, client_id = query.get("requestId"), query.get("messageId")
        if request_id:  # as Chat documents: an existing request id returns the message it created
            for existing in messages:
                if existing.request_id == request_id:
                    return existing.resource()
        if client_id is not None and (not _MESSAGE_ID.match(client_id) or len(client_id) > 63):
            raise _Failure(400, "messageId must start with client- and hold at most 63 lowercase letters, digits and hyphens")
        if client_id and any(m.client_id == client_id for m in messages):
            raise _Failure(409, "A message with this messageId already exists.")
        _check_body(body)
        self._seq += 1
        message = ChatMessage(
            name=f"{space}/messages/m{self._seq:06d}.m{self._seq:06d}", space=space, text=body.get("text", ""),
            cards_v2=copy.deepcopy(body.get("cardsV2") or []), client_id=client_id, request_id=request_id,
            create_time=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            markup_syntax=body.get("markupSyntax"), directory=self.directory,
        )
        messages.append(message)
        return message.resource()

    def _create_space(self, body: Any) -> dict[str, Any]:
        space = body if isinstance(body, dict) else {}
        if space.get("spaceType") != "SPACE" or not space.get("displayName") or not str(space.get("customer", "")).startswith("customers/"):
            raise _Failure(400, "an app creates a SPACE with a displayName and a customer")
        if space["displayName"] in self.space_names.values():
            raise _Failure(409, "A space with this display name already exists.")
        self._seq += 1
        name = f"spaces/app{self._seq:04d}"
        self.space_names[name] = space["displayName"]
        self._messages[name] = []
        self.members[name] = []
        return {"name": name, "spaceType": "SPACE", "displayName": space["displayName"]}

    def _add_member(self, space: str, body: Any) -> dict[str, Any]:
        member = ((body or {}).get("member") or {}) if isinstance(body, dict) else {}
        user = str(member.get("name", ""))
        if space not in self.members:
            raise _Failure(404, "Space not found.")
        if user not in self.directory or member.get("type") != "HUMAN":
            raise _Failure(400, "member must be a HUMAN user of the domain")
        if user in self.members[space]:
            raise _Failure(409, "The member already exists.")
        self.members[space].append(user)
        return {"name": f"{space}/members/{user.rsplit('/', 1)[-1]}", "member": member, "state": "JOINED"}

    def _patch(self, message: ChatMessage, query: dict[str, str], body: Any) -> None:
        mask = [f.strip() for f in (query.get("updateMask") or "").split(",") if f.strip()]
        if not mask or not set(mask) <= _UPDATABLE:
            raise _Failure(400, "updateMask must name the fields to update (text, cardsV2, …)")
        current = {"text": message.text, "cardsV2": message.cards_v2}
        merged = {**current, **{("cardsV2" if f in ("cardsV2", "cards_v2") else f): (body or {}).get("cardsV2" if f in ("cardsV2", "cards_v2") else f) for f in mask}}
        merged = {k: v for k, v in merged.items() if v is not None}
        _check_body(merged)
        before = copy.copy(message)
        before.history = []
        message.history.append(before)
        message.text, message.cards_v2, message.updated = merged.get("text", ""), merged.get("cardsV2") or [], True


def _route(http_method: str, path: str) -> tuple[str, dict[str, str]]:
    """The API method a request calls, and its path arguments."""
    path = unquote(path)
    if path == "/certs":
        return "certs", {}
    if path == "/token":
        return "token", {}
    if http_method == "GET" and path == "/v1/spaces:findDirectMessage":
        return "spaces.findDirectMessage", {}
    if http_method == "POST" and path == "/v1/spaces:setup":
        return "spaces.setup", {}
    if http_method == "POST" and path == "/v1/spaces":
        return "spaces.create", {}
    m = re.fullmatch(r"/v1/(spaces/[^/]+)/members", path)
    if m and http_method == "POST":
        return "spaces.members.create", {"parent": m.group(1)}
    m = re.fullmatch(r"/v1/(spaces/[^/]+)/messages", path)
    if m and http_method == "POST":
        return "spaces.messages.create", {"parent": m.group(1)}
    m = re.fullmatch(r"/v1/(spaces/[^/]+/messages/[^/]+)", path)
    if m:
        verb = {"GET": "get", "PATCH": "patch", "PUT": "patch", "DELETE": "delete"}.get(http_method, "unknown")
        return f"spaces.messages.{verb}", {"name": m.group(1)}
    return f"unknown {http_method} {path}", {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, like the other fakes
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.sim.handle(self.command, url.path, query, self.headers, raw)  # type: ignore[attr-defined]
        if status == 0:  # the connection drops with no answer
            self.close_connection = True
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
