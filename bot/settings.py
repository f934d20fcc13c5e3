"""Deployment settings from the environment (secrets never live in files)."""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API = "https://slack.com/api/"
# Slack's token prefixes, joined here so that no literal in the repository looks like a token to a secret scanner.
BOT_PREFIX, APP_PREFIX = "xo" "xb-", "xa" "pp-"
GOOGLE_CHAT_API = "https://chat.googleapis.com/"
# GOV.UK Notify's API; tests point NOTIFY_BASE_URL at a loopback fake.
NOTIFY_API = "https://api.notifications.service.gov.uk"
# A Notify API key: its name, then the service id and the secret, two UUIDs.
NOTIFY_KEY = re.compile(r".+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Where Google publishes the keys that sign Chat's bearer tokens, per audience type (see bot/gchat/auth.py).
GOOGLE_CHAT_CERTS = "https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com"
GOOGLE_OAUTH2_CERTS = "https://www.googleapis.com/oauth2/v1/certs"

# Where each Slack secret is found, for the message `visitsafe run` prints when one is missing.
WHERE_TO_FIND = {
    "SLACK_BOT_TOKEN": "api.slack.com/apps > your app > OAuth & Permissions > Bot User OAuth Token (install the app first)",
    "SLACK_SIGNING_SECRET": "api.slack.com/apps > your app > Basic Information > App Credentials > Signing Secret",
    "SLACK_APP_TOKEN": "api.slack.com/apps > your app > Basic Information > App-Level Tokens > generate one with connections:write (Socket Mode only)",
}


class Settings(BaseSettings):
    """Environment variables, by their exact names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = SLACK_API
    # The workspace and app requests must come from; when unset, learned at start-up from auth.test and bots.info.
    slack_team_id: str | None = None
    slack_app_id: str | None = None
    # Google Chat: the Cloud project number, or the endpoint URL when the app's audience is set to it.
    google_chat_audience: str | None = None
    # Unset: Chat's x509 certificates for a project number, Google's OAuth2 certificates for an endpoint URL.
    google_chat_certs_url: str | None = None
    google_chat_api_url: str = GOOGLE_CHAT_API
    # A service-account key file; google-auth takes the access token from the key's own token_uri.
    google_application_credentials: Path | None = None
    visitsafe_config: Path = Path("visitsafe.yml")
    visitsafe_db: Path = Path("visitsafe.db")
    port: int = Field(default=3000, ge=1, le=65535)
    # GOV.UK Notify (SMS and email): API keys > Create an API key, in the Notify service's settings.
    notify_api_key: SecretStr | None = None
    notify_base_url: str = NOTIFY_API

    @field_validator("notify_api_key", mode="before")
    @classmethod
    def _notify_key(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not NOTIFY_KEY.fullmatch(value.strip()):
            # Never echo the key: say what shape it should have.
            raise ValueError("is not a GOV.UK Notify API key, which is its name then two ids: name-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx-xxxxxxxx-xxxx-...")
        return value.strip() if isinstance(value, str) else value
    # This server's public https address: for the calendar feed's URL and (Google Chat) download links.
    visitsafe_public_url: str | None = None

    @field_validator("google_chat_audience", "google_application_credentials", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An exported but empty variable is unset (an empty path would otherwise read as the current directory).
        return None if isinstance(value, str) and not value.strip() else value

    def missing_for(self, socket_mode: bool) -> list[str]:
        """The Slack variables still needed to connect in this mode."""
        needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if socket_mode else ["SLACK_SIGNING_SECRET"])
        return [name for name in needed if not getattr(self, name.lower())]

    @property
    def api_url(self) -> str:
        """The Slack Web API base URL, always ending in a slash."""
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"

    def missing_for_chat(self) -> list[str]:
        """The Google Chat variables still needed to serve /gchat/events and send messages."""
        needed = ["GOOGLE_CHAT_AUDIENCE", "GOOGLE_APPLICATION_CREDENTIALS"]
        return [name for name in needed if not getattr(self, name.lower())]

    @property
    def chat_certs_url(self) -> str:
        """GOOGLE_CHAT_CERTS_URL, or the certificates Google signs this audience type's tokens with."""
        if self.google_chat_certs_url:
            return self.google_chat_certs_url
        audience = self.google_chat_audience or ""
        return GOOGLE_OAUTH2_CERTS if audience.startswith(("https://", "http://")) else GOOGLE_CHAT_CERTS

    @property
    def public_url(self) -> str | None:
        """VISITSAFE_PUBLIC_URL, else the scheme and host of a Chat audience set to the endpoint URL; None if neither."""
        if self.visitsafe_public_url and self.visitsafe_public_url.strip():
            return self.visitsafe_public_url.strip().rstrip("/")
        audience = self.google_chat_audience or ""
        if audience.startswith(("https://", "http://")):
            scheme, _, rest = audience.partition("://")
            return f"{scheme}://{rest.split('/', 1)[0]}"
        return None

    @property
    def chat_api_url(self) -> str:
        """The Chat API endpoint, always ending in a slash."""
        url = self.google_chat_api_url
        return url if url.endswith("/") else url + "/"
