"""A simulated Google Chat (API, certificates, token endpoint) and a driver that plays its people."""

from bot.simchat.server import SimChat

__all__ = ["SimChat"]
