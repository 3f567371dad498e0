"""What a command prints: human lines, or with ``--json`` a last line holding one object."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from consolebot.secrets.redact import Redactor


class Output:
    """Given ``json_mode``, print progress and the final result the way the user asked.

    Human lines go to stdout; in JSON mode they go to stderr so that stdout holds
    only the result object on its last line. Everything passes the redactor.
    """

    def __init__(
        self,
        json_mode: bool = False,
        redactor: Redactor | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.redactor = redactor or Redactor()
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def _clean(self, text: str) -> str:
        return self.redactor.redact_text(text)

    def say(self, text: str) -> None:
        """A human line (stdout, or stderr in JSON mode)."""
        stream = self.stderr if self.json_mode else self.stdout
        print(self._clean(text), file=stream, flush=True)

    def warn(self, text: str) -> None:
        print("consolebot: warning: " + self._clean(text), file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print("consolebot: error: " + self._clean(text), file=self.stderr, flush=True)

    def emit(self, obj: dict[str, Any], flush: bool = True) -> None:
        """One JSON object on its own line (used by commands that stream objects)."""
        line = json.dumps(obj, sort_keys=False, default=str)
        if self.redactor.secrets:
            line = self._clean(line)
        self.stdout.write(line + "\n")
        if flush:
            self.stdout.flush()

    def result(self, ok: bool, **evidence: Any) -> None:
        """The command's result: the last line in JSON mode, nothing more otherwise."""
        if self.json_mode:
            self.emit({"ok": ok, **evidence})
        else:
            self.stdout.flush()
