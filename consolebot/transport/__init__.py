"""Console transports: bytes in and out, BREAK, and a descriptor an event loop can wait on."""

from consolebot.transport.base import Ability, Transport

__all__ = ["Ability", "Transport"]
