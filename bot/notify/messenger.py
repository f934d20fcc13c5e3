"""GOV.UK Notify as a Messenger for `sms:<user>` and `email:<user>` destinations, and the router beside the chat.

Numbers and addresses come from the policy's staff directory when a message is sent, so they are never in the
outbox's target, a log line or /healthz. Each text carries a reference made from its outbox key; after a crash
the dispatcher asks Notify for that reference before sending again (exactly once).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from bot.notify.numbers import BadNumber, e164
from bot.outbox import Messenger, TryLater, Undeliverable
from flows.messages import Message
from flows.policy import Policy
from flows.textalerts import SMS, is_text, person_of

log = logging.getLogger("visitsafe.notify")
NOTIFY_API = "https://api.notifications.service.gov.uk"
# The client logs Notify's answers (URLs with references, its error text): our own lines say what matters.
logging.getLogger("notifications_python_client").setLevel(logging.CRITICAL)
# A text that takes longer than this is retried (after looking its reference up): an alert must not hang.
TIMEOUT_S = 10


@dataclass
class NotifyWatch:
    """Notify's last answer, for /healthz: "ok", or a short code (never a number or any text)."""

    state: str = "unknown"
    sent: int = 0
    failures: int = 0

    def saw(self, state: str) -> None:
        self.state = state
        if state == "ok":
            self.sent += 1
        else:
            self.failures += 1


def _code(exc: APIError) -> str:
    """A short, personal-data-free name for Notify's answer: its status, and what kind of refusal."""
    status = exc.status_code
    errors = exc.message if isinstance(exc.message, list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    kind, words = str(first.get("error", "")), str(first.get("message", "")).lower()
    if "phone_number" in words or "email_address" in words:
        return f"{status} invalid_recipient"
    if "team-only" in words or "trial mode" in words:
        return f"{status} team_only_key"
    if kind == "AuthError":
        return f"{status} key_refused"
    if exc.response is None:
        return "no_answer"
    return f"{status} {kind or 'error'}"


class NotifyMessenger:
    """Sends an outbox message to `sms:<user>` or `email:<user>` through GOV.UK Notify."""

    def __init__(self, api_key: str, base_url: str, policy: Policy, namespace: str, watch: NotifyWatch | None = None,
                 timeout: float = TIMEOUT_S):
        self.client = NotificationsAPIClient(api_key, base_url=base_url, timeout=timeout)
        self.policy = policy
        # References are unique across databases sharing one Notify service.
        self.namespace = namespace[:12]
        self.watch = watch or NotifyWatch()
        self._lock = threading.Lock()  # the client is not thread-safe

    def reference(self, outbox_key: str) -> str:
        """The Notify reference of one logical message."""
        return f"visitsafe:{self.namespace}:{outbox_key}"

    def post(self, message: Message, outbox_key: str | None = None) -> tuple[str, str]:
        """Send; return (destination, Notify's notification id). Raises TryLater or Undeliverable."""
        assert self.policy.notify is not None, "a text without a notify: section in the policy"
        user = person_of(message.to)
        entry = self.policy.staff.get(user)
        reference = self.reference(outbox_key or message.key or "")
        personalisation = {"message": message.text}
        if message.to.startswith(SMS):
            if entry is None or not entry.mobile:
                raise Undeliverable("no mobile in the staff directory")
            try:
                number = e164(entry.mobile)
            except BadNumber:
                raise Undeliverable("mobile in the staff directory is not a number that can be texted") from None
            call: Any = lambda: self.client.send_sms_notification(number, self.policy.notify.sms_template, personalisation, reference)  # type: ignore[union-attr]  # noqa: E731
        else:
            template = self.policy.notify.email_template
            if entry is None or not entry.email or template is None:
                raise Undeliverable("no email in the staff directory, or no notify.email_template")
            subject = message.text.split(". ")[0][:120]
            call = lambda: self.client.send_email_notification(entry.email, template, {**personalisation, "subject": subject}, reference)  # noqa: E731
        answer = self._call(call, sending=True)
        return message.to, str(answer.get("id", ""))

    def find(self, to: str, outbox_key: str, since: datetime) -> tuple[str, str] | None:
        """(destination, notification id) if Notify already holds a message with this key's reference."""
        answer = self._call(lambda: self.client.get_all_notifications(reference=self.reference(outbox_key)), sending=False)
        found = answer.get("notifications") or []
        return (to, str(found[0].get("id", ""))) if found else None

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """A text cannot be changed once sent."""
        raise Undeliverable("an SMS or email cannot be updated")

    def _call(self, call: Any, sending: bool) -> dict[str, Any]:
        try:
            with self._lock:
                answer = call()
        except APIError as exc:
            code = _code(exc)
            self.watch.saw(code)
            status = exc.status_code
            if status == 429:
                raise TryLater(f"notify {code}") from None
            if code.endswith("key_refused"):
                # The key, not the message: like a refused chat token, the alert's other routes go at once.
                raise TryLater(f"notify {code}", refused=True) from None
            if status in (400, 403) and sending:
                raise Undeliverable(f"notify {code}") from None
            # A 5xx or no answer at all (a timeout): Notify may have accepted it, so look before sending again.
            raise TryLater(f"notify {code}", maybe_sent=sending) from None
        self.watch.saw("ok")
        return answer or {}


class Routed:
    """The Messenger the outbox uses: texts (sms:/email:) to GOV.UK Notify, everything else to the chat."""

    def __init__(self, chat: Messenger, notify: NotifyMessenger | None):
        self.chat = chat
        self.notify = notify

    def _for(self, destination: str) -> Any:
        if not is_text(destination):
            return self.chat
        if self.notify is None:
            raise Undeliverable("NOTIFY_API_KEY is not set")
        return self.notify

    def post(self, message: Message, outbox_key: str | None = None) -> tuple[str, str]:
        return self._for(message.to).post(message, outbox_key=outbox_key)  # type: ignore[no-any-return]

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        self._for(channel).update(channel, message_ts, message)

    def find(self, to: str, outbox_key: str, since: datetime) -> tuple[str, str] | None:
        return self._for(to).find(to, outbox_key, since)  # type: ignore[no-any-return]
