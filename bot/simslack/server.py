"""A local simulated Slack Web API server for end-to-end tests and demos."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from bot.doctor import MANIFEST_SCOPES
from urllib.parse import parse_qs, urlsplit

__all__ = ["Call", "Posted", "SharedFile", "ViewRecord", "SimSlack", "sign_request"]

# Keys whose form-encoded values are JSON documents on the real wire.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")

# What the app's token is granted unless a test says otherwise: the bot scopes app_manifest.yml asks for.
# An app installed from its manifest is granted what the manifest asks for.
GRANTED_SCOPES = MANIFEST_SCOPES

# Realistic-looking epoch for message timestamps; only ordering matters.
_TS_EPOCH = 1_700_000_000


@dataclass(frozen=True)
class Call:
    """One recorded Web API request."""

    method: str
    params: dict
    token: str | None
    at: float
    failed: bool = False
    status: int = 200
    error: str | None = None


@dataclass
class Posted:
    """A message as it currently appears in a channel."""

    channel: str
    ts: str
    text: str
    blocks: list = field(default_factory=list)
    updated: bool = False
    history: list[Posted] = field(default_factory=list)
    attachments: list = field(default_factory=list)
    thread_ts: str | None = None
    user: str | None = None
    metadata: dict | None = None

    def plain(self) -> str:
        """Render the message as a person sees it: the blocks when there are any (Slack then shows
        `text` only in notifications), else the text; one item per line."""
        lines = _render_blocks(self.blocks) if self.blocks else ([self.text] if self.text else [])
        for attachment in self.attachments:
            if isinstance(attachment, dict):
                if attachment.get("text"):
                    lines.append(str(attachment["text"]))
                lines.extend(_render_blocks(attachment.get("blocks") or []))
        return "\n".join(lines)


@dataclass
class ViewRecord:
    """One views.open / views.update / views.push as shown to a user."""

    method: str
    id: str
    view: dict
    user: str | None = None
    trigger_id: str | None = None
    external_id: str | None = None
    hash: str = ""


@dataclass
class SharedFile:
    """A file uploaded with files.getUploadURLExternal and shared with completeUploadExternal."""

    id: str
    filename: str
    length: int
    content: bytes = b""
    title: str | None = None
    channel: str | None = None
    comment: str | None = None


class _ApiError(Exception):
    """A Slack-style logical error answered as ok=false with HTTP 200."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class _FailRule:
    """A pending injected failure."""

    method: str | None
    status: int
    remaining: int
    retry_after: int | None
    error: str


@dataclass
class _Reply:
    """An HTTP reply ready to write."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def sign_request(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Return headers signing body the way Slack signs requests (v0 HMAC-SHA256)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    base = f"v0:{ts}:{text}".encode("utf-8")
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _text_of(obj: Any) -> str:
    """Return the text of a text object or a bare string."""
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj) if obj else ""


def _label(element: Any) -> str | None:
    """Return a button-style label like [Approve] for an interactive element."""
    if isinstance(element, dict) and element.get("type") == "button":
        return f"[{_text_of(element.get('text'))}]"
    return None


def _rich_text(node: Any) -> str:
    """Flatten a rich_text element tree into a string."""
    if isinstance(node, dict):
        if node.get("type") in ("text", "link") and "text" in node:
            return str(node["text"])
        if node.get("type") == "user":
            return f"<@{node.get('user_id', '')}>"
        return "".join(_rich_text(child) for child in node.get("elements") or [])
    if isinstance(node, list):
        return "".join(_rich_text(child) for child in node)
    return ""


def _render_blocks(blocks: Any) -> list[str]:
    """Render Block Kit blocks to plain-text lines."""
    lines: list[str] = []
    if not isinstance(blocks, list):
        return lines
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("header", "section"):
            if block.get("text"):
                lines.append(_text_of(block["text"]))
            lines.extend(_text_of(f) for f in block.get("fields") or [])
            accessory = _label(block.get("accessory"))
            if accessory:
                lines.append(accessory)
        elif kind == "context":
            texts = [_text_of(e) for e in block.get("elements") or [] if isinstance(e, dict) and "text" in e]
            lines.extend(t for t in texts if t)
        elif kind == "actions":
            labels = [lab for lab in map(_label, block.get("elements") or []) if lab]
            if labels:
                lines.append(" ".join(labels))
        elif kind == "input":
            if block.get("label"):
                lines.append(_text_of(block["label"]))
        elif kind == "rich_text":
            text = _rich_text(block)
            if text:
                lines.append(text)
    return [line for line in lines if line]


def _decode_json_fields(params: dict) -> dict:
    """Turn JSON-string values of block-ish fields into Python objects."""
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass  # Leave malformed input as sent so tests can see it.
    return params


def _dm_channel(channel: str) -> str:
    """Map a user id to its stable DM channel id; leave other ids unchanged."""
    if channel[:1] in ("U", "W"):
        return "D" + channel
    return channel


class _Handler(BaseHTTPRequestHandler):
    """Routes /api/<method> requests to the owning SimSlack."""

    server_version = "SimSlack/1.0"

    def do_POST(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
        """Handle a Web API call sent as POST."""
        self._serve()

    def do_GET(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
        """Handle a Web API call sent as GET with query parameters."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet; tests and the demo print their own output."""

    def _serve(self) -> None:
        """Parse the request, dispatch it and write the reply."""
        url = urlsplit(self.path)
        if url.path.startswith("/upload/"):  # where files.getUploadURLExternal says to send a file's bytes
            length = int(self.headers.get("Content-Length") or 0)
            sim_: SimSlack = self.server.sim  # type: ignore[attr-defined]
            self._write(sim_._receive_upload(url.path[len("/upload/"):], self.rfile.read(length) if length else b""))
            return
        if not url.path.startswith("/api/"):
            self._write(_Reply(404, b"Not Found", "text/plain; charset=utf-8"))
            return
        method = url.path[len("/api/"):]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        params.update(self._parse_body(raw))
        token = params.pop("token", None)
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        sim: SimSlack = self.server.sim  # type: ignore[attr-defined]
        sim._wait_if_hung(method)  # outside the lock: a hung method must not hold up the others
        self._write(sim._handle(method, _decode_json_fields(params), token))

    def _parse_body(self, raw: bytes) -> dict:
        """Decode a JSON or form-encoded body into a dict."""
        if not raw:
            return {}
        text = raw.decode("utf-8", errors="replace")
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype or text.lstrip()[:1] == "{":
            try:
                data = json.loads(text)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def _write(self, reply: _Reply) -> None:
        """Send the status line, headers and body."""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the caller is gone (e.g. a process killed mid-call): nobody to answer


class SimSlack:
    """In-process fake of the Slack Web API that slack_sdk.WebClient can talk to."""

    def __init__(
        self,
        users: dict[str, dict] | None = None,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "B0001",
        team_id: str = "T0001",
        app_id: str = "A1",
        team: str = "VisitSafe Sim",
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """Create a server; token, if given, is the only token accepted; message ts follow `clock` (epoch seconds)."""
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.app_id = app_id
        self.team = team
        self._expected_token = token
        self._lock = threading.RLock()
        self._users: dict[str, dict] = copy.deepcopy(users or {})
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # The last ts survives reset() so timestamps stay unique for the server's life.
        self._clock = clock
        self._last_ts = 0.0
        self._refused_token: str | None = None
        self._reply_delays: dict[str, float] = {}
        self._held_replies = 0
        self._view_seq = 0
        self._trigger_seq = 0
        # Methods made to hang: method (None = any) -> seconds; one event releases every hung call.
        self._hangs: dict[str | None, float] = {}
        self._release = threading.Event()
        self._clear_state()
        self._lost_channels: set[str] = set()
        # Set-up faults `visitsafe doctor` looks for: channel shapes, refused DMs and the granted scopes.
        self._channel_shapes: dict[str, dict[str, bool]] = {}
        self._refused_dms: dict[str, str] = {}
        self.scopes: tuple[str, ...] = GRANTED_SCOPES
        self._methods: dict[str, Callable[[dict], dict]] = {
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ----- lifecycle -----

    def start(self) -> SimSlack:
        """Start serving on an ephemeral localhost port; returns self."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            httpd.daemon_threads = True
            httpd.sim = self  # type: ignore[attr-defined]
            # A short poll interval keeps stop() (and so each test teardown) fast.
            thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="simslack", daemon=True
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving and release the port (and any hung call)."""
        self.unhang()
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SimSlack:
        """Start the server for a with-block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server at the end of a with-block."""
        self.stop()

    @property
    def base_url(self) -> str:
        """Base URL to hand to WebClient(base_url=...), ending in /api/."""
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError("SimSlack is not running; call start() first")
        host, port = httpd.server_address[:2]
        return f"http://{host}:{port}/api/"

    # ----- directory and triggers -----

    def add_user(self, user_id: str, name: str, phone: str | None = None, **extra: Any) -> None:
        """Add or replace a user in the directory served by users.info."""
        with self._lock:
            self._users[user_id] = {"name": name, "phone": phone, **extra}

    def new_trigger_id(self, user: str) -> str:
        """Issue a trigger_id tied to user, so views.open records who saw the view."""
        with self._lock:
            self._trigger_seq += 1
            trigger = f"{self._trigger_seq}.{_TS_EPOCH}.{secrets.token_hex(8)}"
            self._triggers[trigger] = user
            return trigger

    # ----- failure injection -----

    def fail(
        self,
        method: str | None,
        status: int = 429,
        times: int = 1,
        retry_after: int | None = None,
        error: str = "ratelimited",
    ) -> None:
        """Make the next `times` calls to method (None = any) answer with status."""
        with self._lock:
            self._fail_rules.append(_FailRule(method, status, times, retry_after, error))

    def delete_message(self, channel_or_user: str, ts: str) -> None:
        """A person deletes a message: chat.update of it then answers message_not_found."""
        with self._lock:
            channel = _dm_channel(channel_or_user)
            self._channels[channel] = [p for p in self._channels.get(channel, []) if p.ts != ts]

    def clear_failures(self) -> None:
        """Forget failures injected by fail() and not yet used up: Slack has recovered."""
        with self._lock:
            self._fail_rules = []

    def lose_channel(self, channel: str) -> None:
        """Posts to this channel fail with not_in_channel, as when the bot was removed from it."""
        with self._lock:
            self._lost_channels.add(channel)

    def set_channel(self, channel: str, *, private: bool = True, member: bool = True) -> None:
        """Shape a channel for conversations.info (by default every channel is private with the bot in it)."""
        with self._lock:
            self._channel_shapes[channel] = {"private": private, "member": member}
            if member:
                self._lost_channels.discard(channel)
            else:
                self._lost_channels.add(channel)

    def deactivate(self, user: str) -> None:
        """A person's account is deactivated: users.info says deleted, DMs to them fail."""
        with self._lock:
            self._users[user] = {**self._users.get(user, {"name": user}), "deleted": True}
            self._refused_dms[user] = "user_disabled"

    def refuse_dm(self, user: str, error: str = "user_not_visible") -> None:
        """conversations.open and chat.postMessage to this person fail with `error`."""
        with self._lock:
            self._refused_dms[user] = error

    def grant_scopes(self, scopes: list[str] | tuple[str, ...]) -> None:
        """The scopes the token has, as named in each answer's x-oauth-scopes header."""
        with self._lock:
            self.scopes = tuple(scopes)

    def hang(self, method: str | None, seconds: float) -> None:
        """Make calls to method (None = any) wait `seconds` before answering, until unhang() or stop()."""
        with self._lock:
            if not self._hangs:
                self._release = threading.Event()
            self._hangs[method] = seconds

    def unhang(self) -> None:
        """Answer every hung call now and stop hanging."""
        with self._lock:
            self._hangs = {}
            self._release.set()

    def _wait_if_hung(self, method: str) -> None:
        """Hold this call for as long as its method is made to hang."""
        with self._lock:
            seconds = self._hangs.get(method, self._hangs.get(None))
            release = self._release
        if seconds:
            release.wait(seconds)

    def refuse_token(self, error: str = "invalid_auth") -> None:
        """Answer every call HTTP 200 {"ok": false, "error": error} until accept_token(), as Slack does for a revoked token."""
        with self._lock:
            self._refused_token = error

    def accept_token(self) -> None:
        """Undo refuse_token()."""
        with self._lock:
            self._refused_token = None

    def delay_replies(self, method: str, seconds: float) -> None:
        """Answer `method` `seconds` late, after the call has taken effect (0 to stop): a slow Slack."""
        with self._lock:
            self._reply_delays[method] = seconds

    @property
    def held_replies(self) -> int:
        """Calls that have taken effect but whose answer is still being held back by delay_replies()."""
        with self._lock:
            return self._held_replies

    def down(self) -> None:
        """Answer every call with 503 until up() is called."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        """Undo down()."""
        with self._lock:
            self._down = False

    def reset(self) -> None:
        """Forget calls, messages, views and pending failures; keep users and the server."""
        with self._lock:
            self._clear_state()

    # ----- inspection -----

    @property
    def calls(self) -> list[Call]:
        """A copy of every recorded call, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls to one method, oldest first."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def messages(self, channel_or_user: str) -> list[Posted]:
        """Current messages in a channel, or in a user's DM when given a user id."""
        with self._lock:
            return copy.deepcopy(self._channels.get(_dm_channel(channel_or_user), []))

    def ephemerals(self, user: str) -> list[Posted]:
        """Ephemeral messages shown to user, oldest first."""
        with self._lock:
            return copy.deepcopy([p for p in self._ephemerals if p.user == user])

    def views(self, user: str | None = None) -> list[ViewRecord]:
        """Opened, pushed and updated views in order, optionally for one user."""
        with self._lock:
            return copy.deepcopy([v for v in self._view_log if user is None or v.user == user])

    def inbox(self) -> dict[str, list[Posted]]:
        """Every channel's current messages keyed by channel id."""
        with self._lock:
            return copy.deepcopy(self._channels)

    # ----- request handling -----

    def _clear_state(self) -> None:
        """Reset all recorded and simulated state."""
        self._homes: dict[str, ViewRecord] = {}
        self._calls: list[Call] = []
        self._channels: dict[str, list[Posted]] = {}
        self._ephemerals: list[Posted] = []
        self._view_log: list[ViewRecord] = []
        self._live_views: dict[str, ViewRecord] = {}
        self._triggers: dict[str, str] = {}
        self._fail_rules: list[_FailRule] = []
        self._down = False
        self._members: dict[str, list[str]] = {}  # group DMs opened: channel id -> members
        self._opened: set[str] = set()
        self._files: dict[str, SharedFile] = {}  # uploaded files by id

    def _handle(self, method: str, params: dict, token: str | None) -> _Reply:
        """Answer one call (late, if delay_replies() says so)."""
        reply = self._answer(method, params, token)
        with self._lock:
            delay = self._reply_delays.get(method, 0.0)
            self._held_replies += delay > 0
        if delay > 0:
            time.sleep(delay)
            with self._lock:
                self._held_replies -= 1
        return reply

    def _answer(self, method: str, params: dict, token: str | None) -> _Reply:
        """Answer one call and record it; the lock keeps state and log in step."""
        with self._lock:
            recorded = copy.deepcopy(params)
            injected = self._take_failure(method)
            if injected is not None:
                status, reply, error = injected
                self._record(method, recorded, token, failed=True, status=status, error=error)
                return reply
            try:
                self._check_token(token)
                handler = self._methods.get(method)
                if handler is None:
                    raise _ApiError("unknown_method")
                body = {"ok": True, **handler(params)}
            except _ApiError as exc:
                body = {"ok": False, "error": exc.code}
            self._record(method, recorded, token, status=200, error=body.get("error"))
            reply = _json_reply(200, body)
            if body.get("ok"):  # Slack names the token's scopes on every call it accepts
                reply.headers["x-oauth-scopes"] = ",".join(self.scopes)
            return reply

    def _take_failure(self, method: str) -> tuple[int, _Reply, str] | None:
        """Consume a matching injected failure, if any."""
        if self._down:
            return 503, _text_reply(503), "service_unavailable"
        for rule in self._fail_rules:
            if rule.remaining > 0 and rule.method in (None, method):
                rule.remaining -= 1
                self._fail_rules = [r for r in self._fail_rules if r.remaining > 0]
                if rule.status >= 500:
                    return rule.status, _text_reply(rule.status), rule.error
                reply = _json_reply(rule.status, {"ok": False, "error": rule.error})
                if rule.retry_after is not None:
                    reply.headers["Retry-After"] = str(rule.retry_after)
                return rule.status, reply, rule.error
        return None

    def _check_token(self, token: str | None) -> None:
        """Mimic Slack's auth errors so a missing or wrong token is caught early."""
        if not token:
            raise _ApiError("not_authed")
        if self._expected_token is not None and token != self._expected_token:
            raise _ApiError("invalid_auth")
        if self._refused_token:
            raise _ApiError(self._refused_token)

    def _record(self, method: str, params: dict, token: str | None, **flags: Any) -> None:
        """Append a call to the log."""
        self._calls.append(Call(method=method, params=params, token=token, at=time.time(), **flags))

    def _next_ts(self) -> str:
        """Return a unique, increasing Slack-style ts from the clock (so `oldest` filters as on Slack)."""
        self._last_ts = max(round(self._clock(), 6), round(self._last_ts + 0.0001, 6))
        return f"{self._last_ts:.6f}"

    def _next_hash(self) -> str:
        """Return a fresh view hash."""
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    # ----- methods -----

    def _auth_test(self, params: dict) -> dict:
        """auth.test."""
        return {
            "url": "https://visitsafe-sim.slack.com/",
            "team": self.team,
            "user": "visitsafe",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _bots_info(self, params: dict) -> dict:
        """bots.info: the app this bot belongs to."""
        if params.get("bot") != self.bot_id:
            raise _ApiError("bot_not_found")
        return {"bot": {"id": self.bot_id, "deleted": False, "name": "VisitSafe", "app_id": self.app_id, "user_id": self.bot_user_id}}

    def _message_body(self, posted: Posted) -> dict:
        """The message object Slack echoes back for posts and updates."""
        body = {
            "type": "message",
            "subtype": "bot_message",
            "text": posted.text,
            "blocks": posted.blocks,
            "ts": posted.ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
        }
        if posted.attachments:
            body["attachments"] = posted.attachments
        if posted.thread_ts:
            body["thread_ts"] = posted.thread_ts
        return body

    def _chat_post_message(self, params: dict) -> dict:
        """chat.postMessage; a user id as channel means their DM."""
        channel = params.get("channel")
        if not channel:
            raise _ApiError("channel_not_found")
        if channel in self._lost_channels:
            raise _ApiError("not_in_channel")
        if channel in self._refused_dms:
            raise _ApiError(self._refused_dms[channel])
        text, blocks, attachments = params.get("text"), params.get("blocks"), params.get("attachments")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        posted = Posted(
            channel=_dm_channel(channel),
            ts=self._next_ts(),
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            thread_ts=params.get("thread_ts") or None,
            metadata=params.get("metadata") if isinstance(params.get("metadata"), dict) else None,
        )
        self._channels.setdefault(posted.channel, []).append(posted)
        return {"channel": posted.channel, "ts": posted.ts, "message": self._message_body(posted)}

    def _chat_update(self, params: dict) -> dict:
        """chat.update; omitted text or blocks are kept, as on real Slack."""
        channel = params.get("channel")
        if not channel:
            raise _ApiError("channel_not_found")
        resolved = _dm_channel(channel)
        target = next((p for p in self._channels.get(resolved, []) if p.ts == params.get("ts")), None)
        if target is None:
            raise _ApiError("message_not_found")
        if all(params.get(key) is None for key in ("text", "blocks", "attachments")):
            raise _ApiError("no_text")
        previous = copy.deepcopy(target)
        previous.history = []
        target.history.append(previous)
        if params.get("text") is not None:
            target.text = params["text"]
        if params.get("blocks") is not None:
            target.blocks = params["blocks"]
        if params.get("attachments") is not None:
            target.attachments = params["attachments"]
        target.updated = True
        return {
            "channel": resolved,
            "ts": target.ts,
            "text": target.text,
            "message": self._message_body(target),
        }

    def _chat_post_ephemeral(self, params: dict) -> dict:
        """chat.postEphemeral."""
        channel, user = params.get("channel"), params.get("user")
        if not channel:
            raise _ApiError("channel_not_found")
        if not user:
            raise _ApiError("user_not_in_channel")
        text, blocks, attachments = params.get("text"), params.get("blocks"), params.get("attachments")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        posted = Posted(
            channel=_dm_channel(channel),
            ts=self._next_ts(),
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            thread_ts=params.get("thread_ts") or None,
            user=user,
        )
        self._ephemerals.append(posted)
        return {"message_ts": posted.ts}

    def _view_body(self, record: ViewRecord) -> dict:
        """The view object Slack echoes back."""
        body = copy.deepcopy(record.view)
        body.update(
            {
                "id": record.id,
                "team_id": self.team_id,
                "hash": record.hash,
                "external_id": record.external_id or "",
                "state": {"values": {}},
                "root_view_id": record.id,
                "app_id": "A0001",
                "bot_id": self.bot_id,
            }
        )
        return body

    def _require_view(self, params: dict) -> dict:
        """Return the view payload or raise invalid_arguments."""
        view = params.get("view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        return view

    def _show_view(self, method: str, params: dict) -> dict:
        """Shared body of views.open and views.push."""
        trigger = params.get("trigger_id")
        if not trigger:
            raise _ApiError("invalid_trigger_id")
        view = self._require_view(params)
        self._view_seq += 1
        record = ViewRecord(
            method=method,
            id=f"V{self._view_seq:04d}",
            view=view,
            user=self._triggers.get(trigger),
            trigger_id=trigger,
            external_id=view.get("external_id") or None,
            hash=self._next_hash(),
        )
        self._live_views[record.id] = record
        self._view_log.append(record)
        return {"view": self._view_body(record)}

    def _views_open(self, params: dict) -> dict:
        """views.open."""
        return self._show_view("views.open", params)

    def _views_publish(self, params: dict) -> dict:
        """views.publish: a user's App Home tab."""
        user = params.get("user_id")
        if not user:
            raise _ApiError("invalid_arguments")
        view = self._require_view(params)
        if view.get("type") != "home":
            raise _ApiError("invalid_arguments")
        self._view_seq += 1
        record = ViewRecord(method="views.publish", id=f"V{self._view_seq:04d}", view=view, user=user,
                            trigger_id=None, external_id=None, hash=self._next_hash())
        self._view_log.append(record)
        self._homes[user] = record
        return {"view": self._view_body(record)}

    def home(self, user: str) -> dict | None:
        """The App Home view last published for a user."""
        with self._lock:
            record = self._homes.get(user)
            return copy.deepcopy(record.view) if record else None

    def _views_push(self, params: dict) -> dict:
        """views.push."""
        return self._show_view("views.push", params)

    def _views_update(self, params: dict) -> dict:
        """views.update by view_id or external_id, honouring hash like Slack."""
        view = self._require_view(params)
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if view_id:
            current = self._live_views.get(view_id)
        elif external_id:
            current = next((v for v in self._live_views.values() if v.external_id == external_id), None)
        else:
            raise _ApiError("invalid_arguments")
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current.hash:
            raise _ApiError("hash_conflict")
        record = ViewRecord(
            method="views.update",
            id=current.id,
            view=view,
            user=current.user,
            trigger_id=current.trigger_id,
            external_id=view.get("external_id") or current.external_id,
            hash=self._next_hash(),
        )
        self._live_views[record.id] = record
        self._view_log.append(record)
        return {"view": self._view_body(record)}

    def _conversations_open(self, params: dict) -> dict:
        """conversations.open for a DM (or a group DM when several users are given)."""
        users = params.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if not users:
            if params.get("channel"):
                return {"no_op": True, "already_open": True, "channel": {"id": params["channel"]}}
            raise _ApiError("users_list_not_supplied")
        ids = [u.strip() for u in users.split(",") if u.strip()]
        refused = next((self._refused_dms[u] for u in ids if u in self._refused_dms), None)
        if refused:
            raise _ApiError(refused)
        if len(ids) == 1:
            channel = {"id": _dm_channel(ids[0]), "is_im": True, "user": ids[0]}
        else:
            channel = self._open_mpim(ids)
        already = channel["id"] in self._channels or channel["id"] in self._opened
        self._opened.add(channel["id"])
        return {"no_op": already, "already_open": already, "channel": channel}

    def _open_mpim(self, ids: list[str]) -> dict:
        """A group DM of these people and the bot (the caller), the same one for the same people, as on Slack."""
        if len(set(ids)) > 8:
            raise _ApiError("too_many_users")
        unknown = [u for u in ids if u not in self._users]
        if unknown:
            raise _ApiError("user_not_found")
        members = sorted({*ids, self.bot_user_id})
        channel_id = "G" + hashlib.sha1(",".join(members).encode()).hexdigest()[:10].upper()
        self._members[channel_id] = members
        return {"id": channel_id, "is_mpim": True, "is_private": True}

    def members(self, channel: str) -> list[str]:
        """Who is in a group DM opened through conversations.open (the bot included), sorted; [] if none."""
        with self._lock:
            return list(self._members.get(channel, []))

    def _conversations_history(self, params: dict) -> dict:
        """conversations.history: newest first, after `oldest`, paged by cursor; metadata only when asked for."""
        channel = params.get("channel") or ""
        if not channel or channel[:1] in ("U", "W"):  # a user id is not a channel: open the DM first
            raise _ApiError("channel_not_found")
        oldest = float(params.get("oldest") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 999))
        start = int(params.get("cursor") or 0)
        newest_first = [p for p in reversed(self._channels.get(channel, [])) if float(p.ts) > oldest]
        page = newest_first[start:start + limit]
        with_metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        messages = []
        for posted in page:
            body = self._message_body(posted)
            if with_metadata and posted.metadata:
                body["metadata"] = posted.metadata
            messages.append(body)
        more = start + limit < len(newest_first)
        return {"messages": messages, "has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _conversations_info(self, params: dict) -> dict:
        """conversations.info: a private channel the bot is not in is, as on Slack, channel_not_found."""
        channel = params.get("channel") or ""
        if channel[:1] not in ("C", "G"):
            raise _ApiError("channel_not_found")
        shape = self._channel_shapes.get(channel, {"private": True, "member": channel not in self._lost_channels})
        if shape["private"] and not shape["member"]:
            raise _ApiError("channel_not_found")
        return {"channel": {"id": channel, "is_channel": True, "is_private": shape["private"], "is_member": shape["member"],
                            "is_archived": False, "name": channel.lower()}}

    def _users_info(self, params: dict) -> dict:
        """users.info from the directory given to the constructor."""
        user_id = params.get("user")
        if user_id == self.bot_user_id:
            return {"user": _user_object(user_id, {"name": "VisitSafe"}, self.team_id, is_bot=True)}
        entry = self._users.get(user_id or "")
        if entry is None:
            raise _ApiError("user_not_found")
        return {"user": _user_object(user_id, entry, self.team_id)}

    # ----- files (issue 14: /visits export and report) -----

    def files(self, channel_or_user: str) -> list[SharedFile]:
        """Files shared in a channel, or in a user's DM when given a user id, oldest first."""
        with self._lock:
            return copy.deepcopy([f for f in self._files.values() if f.channel == _dm_channel(channel_or_user)])

    def _files_get_upload_url(self, params: dict) -> dict:
        """files.getUploadURLExternal: a file id and where to send its bytes."""
        if not params.get("filename") or not str(params.get("length") or "").isdigit():
            raise _ApiError("invalid_arguments")
        file_id = f"F{len(self._files) + 1:08d}"
        self._files[file_id] = SharedFile(file_id, str(params["filename"]), int(params["length"]))
        return {"upload_url": f"{self.base_url.removesuffix('/api/')}/upload/{file_id}", "file_id": file_id}

    def _receive_upload(self, file_id: str, body: bytes) -> _Reply:
        """The bytes of a file, POSTed to its upload URL (Slack answers 200 "OK - <length>")."""
        with self._lock:
            found = self._files.get(file_id)
            if found is None:
                return _text_reply(404)
            found.content = body
        return _Reply(200, f"OK - {len(body)}".encode(), "text/plain; charset=utf-8")

    def _files_complete_upload(self, params: dict) -> dict:
        """files.completeUploadExternal: the uploaded files are shared in one conversation (or kept private)."""
        files = params.get("files")
        listed = json.loads(files) if isinstance(files, str) else files
        channel = params.get("channel_id")
        if channel and channel.startswith("D") and channel not in self._opened:
            raise _ApiError("channel_not_found")
        shared = []
        for entry in listed or []:
            found = self._files.get(entry.get("id"))
            if found is None or len(found.content) != found.length:
                raise _ApiError("file_not_found" if found is None else "file_upload_size_mismatch")
            found.title, found.channel, found.comment = entry.get("title"), channel, params.get("initial_comment")
            shared.append({"id": found.id, "title": found.title, "name": found.filename})
        return {"files": shared}


def _user_object(user_id: str, entry: dict, team_id: str, is_bot: bool = False) -> dict:
    """Build a users.info user object from a directory entry."""
    real_name = entry.get("name") or user_id
    handle = entry.get("handle") or real_name.lower().replace(" ", ".")
    profile = {
        "real_name": real_name,
        "display_name": entry.get("display_name", real_name),
        "phone": entry.get("phone") or "",
    }
    if entry.get("email"):
        profile["email"] = entry["email"]
    return {
        "id": user_id,
        "team_id": team_id,
        "name": handle,
        "real_name": real_name,
        "deleted": bool(entry.get("deleted")),
        "is_bot": is_bot or bool(entry.get("is_bot")),
        "tz": entry.get("tz", "Europe/London"),
        "profile": profile,
    }


def _json_reply(status: int, body: dict) -> _Reply:
    """A JSON reply in Slack's content type."""
    return _Reply(status, json.dumps(body).encode("utf-8"), "application/json; charset=utf-8")


def _text_reply(status: int) -> _Reply:
    """A plain-text reply like an upstream proxy error page."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _Reply(status, f"{status} {phrase}".encode("utf-8"), "text/plain; charset=utf-8")
