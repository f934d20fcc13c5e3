"""The Messenger port on Slack: chat.postMessage and chat.update, errors sorted into retry or give up."""
from __future__ import annotations

from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.outbox import Gone, TryLater, Undeliverable
from bot.slack import render
from flows.messages import Message

# Slack errors that mean "try again", even when the HTTP status is 200.
PASSING = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# Errors about the token or the app's rights, never about the message: fixed by a person, then retried.
TOKEN = {
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
    "no_permission", "ekm_access_denied", "team_access_not_granted",
}
# chat.update of a message a person deleted (or can no longer edit): nothing left to rewrite.
GONE = {"message_not_found", "cant_update_message", "edit_window_closed"}
# Marks an alert's post so a restarted process can find it in the channel's history.
METADATA_EVENT = "visitsafe_outbox"
HISTORY_PAGES = 20


class SlackMessenger:
    """Sends neutral messages to Slack through the Web API."""

    def __init__(self, client: WebClient):
        self.client = client

    def post(self, message: Message, outbox_key: str | None = None) -> tuple[str, str]:
        """Post to a channel, or DM a user by id; `outbox_key` goes along in the message's metadata."""
        extra = {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": outbox_key}}} if outbox_key else {}
        response = self._call(self.client.chat_postMessage, channel=message.to, **render.message(message), **extra)
        return response["channel"], response["ts"]

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """Replace a message already posted."""
        self._call(self.client.chat_update, channel=channel, ts=message_ts, **render.message(message))

    def find(self, to: str, outbox_key: str, since: datetime) -> tuple[str, str] | None:
        """(channel, ts) of the message posted to `to` since `since` carrying `outbox_key`, if Slack has it."""
        channel = to
        if to.startswith(("U", "W")):  # a DM: its history lives in the DM channel, not under the user id
            channel = self._call(self.client.conversations_open, users=to)["channel"]["id"]
        cursor = None
        for _ in range(HISTORY_PAGES):
            page = self._call(
                self.client.conversations_history, channel=channel, oldest=f"{since.timestamp():.6f}",
                include_all_metadata=True, limit=200, cursor=cursor,
            )
            for found in page.get("messages") or []:
                metadata = found.get("metadata") or {}
                if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == outbox_key:
                    return channel, found["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
        raise TryLater("history_too_long", maybe_sent=True)  # never guess "not posted"

    @staticmethod
    def _call(method, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise TryLater("ratelimited", float(retry) if retry else None) from None
            if error in TOKEN:
                raise TryLater(error, refused=True) from None
            if status >= 500 or error in PASSING:
                # A server error may come after the message was stored: look before posting again.
                raise TryLater(error or f"http_{status}", maybe_sent=True) from None
            if error in GONE:
                raise Gone(error) from None
            raise Undeliverable(error or f"http_{status}") from None
        except (SlackClientError, OSError) as exc:
            raise TryLater(type(exc).__name__, maybe_sent=True) from None
