"""Local simulated GOV.UK Notify API for tests and the demo."""

from bot.simnotify.server import Sent, SimNotify

__all__ = ["Sent", "SimNotify"]
