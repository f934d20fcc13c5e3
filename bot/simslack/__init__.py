"""Local simulated Slack Web API for tests and the demo."""

from bot.simslack.server import Call, Posted, SimSlack, ViewRecord, sign_request

__all__ = ["Call", "Posted", "SimSlack", "ViewRecord", "sign_request"]
