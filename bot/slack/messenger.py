"""The Messenger port on Slack: chat.postMessage and chat.update, errors sorted into retry or give up."""
from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.outbox import TryLater, Undeliverable
from bot.slack import render
from flows.messages import Message

# Slack errors that mean "try again", even when the HTTP status is 200.
PASSING = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class SlackMessenger:
    """Sends neutral messages to Slack through the Web API."""

    def __init__(self, client: WebClient):
        self.client = client

    def post(self, message: Message) -> tuple[str, str]:
        """Post to a channel, or DM a user by id."""
        response = self._call(self.client.chat_postMessage, channel=message.to, **render.message(message))
        return response["channel"], response["ts"]

    def update(self, channel: str, message_ts: str, message: Message) -> None:
        """Replace a message already posted."""
        self._call(self.client.chat_update, channel=channel, ts=message_ts, **render.message(message))

    @staticmethod
    def _call(method, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise TryLater("rate limited", float(retry) if retry else None) from None
            if status >= 500 or error in PASSING:
                raise TryLater(f"slack {status} {error}".strip()) from None
            raise Undeliverable(error or f"http {status}") from None
        except (SlackClientError, OSError) as exc:
            raise TryLater(type(exc).__name__) from None
