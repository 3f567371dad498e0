"""Gate a destructive act: ``--yes``, or a typed confirmation on a terminal, else refuse (exit 8)."""

from __future__ import annotations

import sys
from typing import TextIO

from consolebot.errors import Refused


def confirm(host: str, what: str, yes: bool, stdin: TextIO | None = None, stderr: TextIO | None = None) -> str:
    """Return how the act was confirmed; raise ``Refused`` when it was not."""
    if yes:
        return "--yes"
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if not stdin.isatty():
        raise Refused(f"{what} on {host} needs confirmation: pass --yes (no terminal to ask on)")
    stderr.write(f"consolebot: about to {what} on {host}. Type the host name to confirm: ")
    stderr.flush()
    answer = stdin.readline().strip()
    if answer != host:
        raise Refused(f"{what} on {host} not confirmed")
    return "typed confirmation"
