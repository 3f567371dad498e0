"""Secrets as a type, their redaction, and the keyring-backed store."""

from consolebot.secrets.redact import Redactor, StreamRedactor
from consolebot.secrets.secret import Secret

__all__ = ["Redactor", "Secret", "StreamRedactor"]
