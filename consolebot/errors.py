"""The exception taxonomy and the exit codes it maps to.

Each family says whose fault a failure is; the CLI turns it into one line and a
distinct exit code. Messages never carry a secret: they are built from redacted
text only.
"""

from __future__ import annotations

# Exit codes, fixed for every command.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SECRET = 3
EXIT_UNREACHABLE = 4
EXIT_BUSY = 5
EXIT_TARGET = 6
EXIT_VERIFY = 7
EXIT_REFUSED = 8
EXIT_RUN_OWN_FAILURE = 255


class ConsoleBotError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_TARGET

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ConsoleBotError):
    """Your call or configuration is wrong: fix the command line or the file named."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The inventory or another configuration file is wrong."""


class SecretUnavailable(ConsoleBotError):
    """The keyring has no usable backend, is locked, or lacks the entry named."""

    exit_code = EXIT_SECRET


class TransportError(ConsoleBotError):
    """The console or BMC could not be reached or went away."""

    exit_code = EXIT_UNREACHABLE


class ConsoleUnreachable(TransportError):
    """Connection refused, no route, unknown device: check the address and that the peer runs."""


class ConsoleClosed(TransportError):
    """The peer closed the console (EOF)."""


class ConsoleBusy(TransportError):
    """Someone else holds the console (another SOL session, a lock)."""

    exit_code = EXIT_BUSY


class BreakUnsupported(TransportError):
    """This transport cannot carry a serial BREAK; configure a break sequence or use another path."""

    exit_code = EXIT_TARGET


class TargetError(ConsoleBotError):
    """The server did something unexpected: a timeout at a prompt, a panic, a failed login."""

    exit_code = EXIT_TARGET


class PromptTimeout(TargetError):
    """Nothing expected arrived in time."""


class DeathPattern(TargetError):
    """A pattern that ends every wait (a kernel panic) was seen."""


class LoginFailed(TargetError):
    """No candidate password was accepted."""


class NotDelivered(TargetError):
    """An act (BREAK + key) had no acknowledgement."""


class VerificationFailed(ConsoleBotError):
    """An act ran but its effect could not be proven."""

    exit_code = EXIT_VERIFY


class Refused(ConsoleBotError):
    """consolebot refused: identity mismatch or not confirmed."""

    exit_code = EXIT_REFUSED
