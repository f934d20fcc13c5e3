"""A fake GOV.UK Notify on loopback that checks each request as the real service does, and fails on demand.

Auth: a bearer JWT signed HS256 with the API key's secret, `iss` the service id, `iat` within 30 s of now.
Bodies: /v2/notifications/sms (phone_number, template_id, personalisation, reference, sms_sender_id) and
/v2/notifications/email (email_address, ...), unknown fields refused, the template known and of that type,
every ((placeholder)) personalised, a UK mobile for an SMS. GET /v2/notifications?reference= lists what was sent.
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import jwt

# The real service allows a token's iat to be this far from its own clock either way.
IAT_BOUND_S = 30
PLACEHOLDER = re.compile(r"\(\(([^)]+)\)\)")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SMS_FIELDS = {"phone_number", "template_id", "personalisation", "reference", "sms_sender_id"}
EMAIL_FIELDS = {"email_address", "template_id", "personalisation", "reference", "email_reply_to_id",
                "one_click_unsubscribe_url", "sanitise_content_for"}
# Notify's own words for a recipient a trial or team-only key may not reach.
TEAM_ONLY = "Can’t send to this recipient using a team-only API key"


@dataclass
class Sent:
    """One notification Notify accepted."""

    id: str
    kind: str  # "sms" or "email"
    to: str
    template_id: str
    personalisation: dict[str, Any]
    reference: str | None
    body: str
    subject: str | None
    at: float  # the simulator's clock when accepted


@dataclass
class _Failure:
    status: int
    times: int
    kind: str | None  # "sms", "email", "get" or None for any
    error: str
    message: str
    delay_s: float = 0.0
    after_accepting: bool = False  # accept and record the message, then answer this failure (a lost reply)


@dataclass
class _State:
    sent: list[Sent] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    failures: list[_Failure] = field(default_factory=list)
    down: bool = False
    hang_s: float = 0.0


class SimNotify:
    """A fake Notify service: `api_key()` is a key it accepts; `sent` is what it accepted, in order."""

    def __init__(
        self,
        templates: dict[str, tuple[str, str, str | None]] | None = None,
        team_numbers: set[str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.service_id = str(uuid.uuid4())
        self.secret = str(uuid.uuid4())
        # template id -> (type, body, subject)
        self.templates = dict(templates or {})
        # None: a live key; a set: a team-only (trial) key that may text only these E.164 numbers.
        self.team_numbers = team_numbers
        self.invalid_numbers: set[str] = set()
        # Wall-clock seconds for sent[].at; iat is always checked against the real time, as the client signs with it.
        self.clock = clock
        self._state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ----- set-up -----

    def api_key(self, name: str = "visitsafe") -> str:
        """A key as Notify issues it: `{key name}-{service id}-{secret}`."""
        return f"{name}-{self.service_id}-{self.secret}"

    def add_template(self, kind: str, body: str, subject: str | None = None) -> str:
        """Create a template; returns its id."""
        template_id = str(uuid.uuid4())
        self.templates[template_id] = (kind, body, subject)
        return template_id

    def start(self) -> "SimNotify":
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
                sim._serve(self, "POST")

            def do_GET(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
                sim._serve(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="simnotify", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "SimNotify":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ----- failure injection -----

    def fail(self, status: int, times: int = 1, kind: str | None = None, error: str | None = None,
             message: str = "injected failure", delay_s: float = 0.0, after_accepting: bool = False) -> None:
        """The next `times` matching requests answer `status` (after `delay_s`); `after_accepting`: the message is
        accepted and recorded first, then the reply is this failure (as when a reply is lost)."""
        default = {400: "BadRequestError", 403: "AuthError", 429: "RateLimitError"}.get(status, "Exception")
        with self._lock:
            self._state.failures.append(_Failure(status, times, kind, error or default, message, delay_s, after_accepting))

    def slow(self, seconds: float, times: int = 1, kind: str | None = "sms") -> None:
        """The next `times` sends are accepted and recorded at once, and answered only after `seconds`."""
        self.fail(201, times, kind, delay_s=seconds, after_accepting=True)

    def down(self) -> None:
        """Answer every request 500 until up()."""
        self._state.down = True

    def up(self) -> None:
        self._state.down = False
        with self._lock:
            self._state.failures = []

    def hang(self, seconds: float) -> None:
        """Every request waits this long before it is handled (0: no wait)."""
        self._state.hang_s = seconds

    # ----- what was sent -----

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._state.sent)

    def sms_to(self, number: str) -> list[Sent]:
        """Texts accepted for this E.164 number."""
        return [s for s in self.sent if s.kind == "sms" and s.to == number]

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._state.requests)

    # ----- the service -----

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        status, body = self._answer(method, url.path, parse_qs(url.query), raw, handler.headers.get("Authorization", ""))
        with self._lock:
            self._state.requests.append((method, url.path, status))
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): as with the real service, what was done stays done

    def _answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, auth: str) -> tuple[int, dict[str, Any]]:
        if self._state.hang_s:
            time.sleep(self._state.hang_s)
        kind = {"/v2/notifications/sms": "sms", "/v2/notifications/email": "email"}.get(path) if method == "POST" else None
        if method == "GET" and path == "/v2/notifications":
            kind = "get"
        if kind is None:
            return _error(404, "BadRequestError", "Resource not found")
        if self._state.down:
            return _error(500, "Exception", "Internal server error")
        failure = self._take_failure(kind)
        if failure is not None and not failure.after_accepting:
            time.sleep(failure.delay_s)
            return _error(failure.status, failure.error, failure.message)
        refused = self._check_token(auth)
        if refused:
            return refused
        if kind == "get":
            return self._list(query)
        answer = self._send(kind, raw)
        if failure is not None:
            time.sleep(failure.delay_s)
            if failure.status >= 300:
                return _error(failure.status, failure.error, failure.message)
        return answer

    def _take_failure(self, kind: str) -> _Failure | None:
        with self._lock:
            for rule in self._state.failures:
                if rule.kind in (None, kind) and rule.times > 0:
                    rule.times -= 1
                    self._state.failures = [r for r in self._state.failures if r.times > 0]
                    return rule
        return None

    def _check_token(self, auth: str) -> tuple[int, dict[str, Any]] | None:
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or not token:
            return _error(401, "AuthError", "Unauthorized: authentication token must be provided")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _error(403, "AuthError", "Invalid token: signature, api token not found")
        if header.get("alg") != "HS256":
            return _error(403, "AuthError", "Invalid token: algorithm used is not HS256")
        if claims.get("iss") != self.service_id:
            return _error(403, "AuthError", "Invalid token: service not found")
        if "iat" not in claims:
            return _error(403, "AuthError", "Invalid token: iat field not provided")
        try:
            jwt.decode(token, key=self.secret, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.PyJWTError:
            return _error(403, "AuthError", "Invalid token: signature, api token not found")
        if abs(time.time() - float(claims["iat"])) > IAT_BOUND_S:
            return _error(403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds")
        return None

    def _send(self, kind: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            return _error(400, "ValidationError", "Invalid JSON supplied in POST data")
        if not isinstance(data, dict):
            return _error(400, "ValidationError", "POST data must be a JSON object")
        allowed, recipient = (SMS_FIELDS, "phone_number") if kind == "sms" else (EMAIL_FIELDS, "email_address")
        extra = sorted(set(data) - allowed)
        if extra:
            return _error(400, "ValidationError", f"Additional properties are not allowed ({extra[0]} was unexpected)")
        for name in (recipient, "template_id"):
            if name not in data:
                return _error(400, "ValidationError", f"{name} is a required property")
        if not isinstance(data["template_id"], str) or not UUID_RE.fullmatch(data["template_id"]):
            return _error(400, "ValidationError", "template_id is not a valid UUID")
        personalisation = data.get("personalisation") or {}
        if not isinstance(personalisation, dict):
            return _error(400, "ValidationError", "personalisation is not of type object")
        reference = data.get("reference")
        if reference is not None and not isinstance(reference, str):
            return _error(400, "ValidationError", "reference is not of type string")
        template = self.templates.get(data["template_id"])
        if template is None:
            return _error(400, "BadRequestError", "Template not found")
        if template[0] != kind:
            return _error(400, "BadRequestError", f"{kind} template is not suitable for {template[0]} notification")
        to = data[recipient]
        if not isinstance(to, str):
            return _error(400, "ValidationError", f"{recipient} is not of type string")
        if kind == "sms":
            normalised = _uk_mobile(to)
            if normalised is None or normalised in self.invalid_numbers:
                return _error(400, "ValidationError", "phone_number Not a UK mobile number")
            if self.team_numbers is not None and normalised not in self.team_numbers:
                return _error(400, "BadRequestError", TEAM_ONLY)
            to = normalised
        elif "@" not in to:
            return _error(400, "ValidationError", "email_address Not a valid email address")
        _, body, subject = template
        missing = [p for p in PLACEHOLDER.findall(body + (subject or "")) if p not in personalisation]
        if missing:
            return _error(400, "BadRequestError", f"Missing personalisation: {', '.join(sorted(set(missing)))}")
        fill = lambda text: PLACEHOLDER.sub(lambda m: str(personalisation[m.group(1)]), text)  # noqa: E731
        sent = Sent(str(uuid.uuid4()), kind, to, data["template_id"], personalisation, reference, fill(body),
                    fill(subject) if subject else None, self.clock())
        with self._lock:
            self._state.sent.append(sent)
        content = {"body": sent.body, "from_number": "GOVUK"} if kind == "sms" else {"body": sent.body, "subject": sent.subject, "from_email": "school@notifications.service.gov.uk"}
        return 201, {
            "id": sent.id, "reference": reference, "content": content,
            "uri": f"/v2/notifications/{sent.id}",
            "template": {"id": data["template_id"], "version": 1, "uri": f"/v2/template/{data['template_id']}"},
            "scheduled_for": None,
        }

    def _list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        reference = (query.get("reference") or [None])[0]
        found = [s for s in self.sent if reference is None or s.reference == reference]
        return 200, {
            "notifications": [
                {"id": s.id, "reference": s.reference, "type": s.kind, "status": "delivered",
                 "phone_number" if s.kind == "sms" else "email_address": s.to,
                 "template": {"id": s.template_id, "version": 1}, "body": s.body}
                for s in reversed(found)
            ],
            "links": {"current": "/v2/notifications"},
        }


def _uk_mobile(number: str) -> str | None:
    """Notify's reading of a UK mobile: 07xxx xxxxxx, +44 7xxx, 0044 7xxx; E.164 back, or None. (International: +, 8-15 digits.)"""
    digits = re.sub(r"[\s().-]", "", number)
    if digits.startswith("+") and not digits.startswith("+44"):
        return digits if re.fullmatch(r"\+[1-9][0-9]{7,14}", digits) else None
    digits = re.sub(r"^(\+44|0044|44|0)", "", digits)
    return f"+44{digits}" if re.fullmatch(r"7[0-9]{9}", digits) else None


def _error(status: int, error: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"status_code": status, "errors": [{"error": error, "message": message}]}
