"""Connect scripts: chat-style expect/send steps kept as data in ``expect_scripts/``.

Format (one step per line; ``#`` starts a comment; words are split like a shell
does, so quote text with spaces; C escapes ``\\r \\n \\t \\e \\xHH ^C`` are
decoded; ``{name}`` is replaced by a variable the caller passes, from the
inventory):

    timeout SECONDS             default timeout_s for the following expects
    expect TEXT [SECONDS]       wait for literal TEXT
    expect-re REGEX [SECONDS]   wait for a regular expression (bytes)
    send TEXT                   send TEXT (add \\r yourself for Enter)
    send-secret REF             send a secret from the keyring, then Enter;
                                REF is keyring:HOST/USER or keyring:HOST/USER#N
    break                       send a serial BREAK
    abort TEXT                  from here on, TEXT ends the script with an error
    settle SECONDS              wait until the console is quiet for SECONDS

A secret never appears in the script, the transcript or the dry-run listing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from consolebot.errors import (
    ConfigError,
    DeathPattern,
    PromptTimeout,
    TargetError,
    TransportError,
    UsageError,
)
from consolebot.escapes import decode_escapes
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
VERBS = {"timeout", "expect", "expect-re", "send", "send-secret", "break", "abort", "settle"}


@dataclass(frozen=True)
class Step:
    verb: str
    args: tuple[str, ...]
    lineno: int


@dataclass(frozen=True)
class ChatScript:
    """A parsed connect script."""

    name: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str, name: str = "<script>") -> ChatScript:
        """Given a script's text, return it parsed; raise ``ConfigError`` naming the line."""
        steps = []
        for lineno, line in enumerate(text.splitlines(), 1):
            try:
                words = shlex.split(line, comments=True, posix=True)
            except ValueError as exc:
                raise ConfigError(f"{name}:{lineno}: {exc}") from None
            if not words:
                continue
            verb, args = words[0], tuple(words[1:])
            if verb not in VERBS:
                raise ConfigError(f"{name}:{lineno}: unknown step {verb!r}; use one of {', '.join(sorted(VERBS))}")
            want = {"timeout": (1, 1), "expect": (1, 2), "expect-re": (1, 2), "send": (1, 1),
                    "send-secret": (1, 1), "break": (0, 0), "abort": (1, 1), "settle": (1, 1)}[verb]
            if not want[0] <= len(args) <= want[1]:
                raise ConfigError(f"{name}:{lineno}: {verb} takes {want[0]}..{want[1]} arguments, got {len(args)}")
            if verb in ("timeout", "settle") or (verb in ("expect", "expect-re") and len(args) == 2):
                try:
                    float(args[-1])
                except ValueError:
                    raise ConfigError(f"{name}:{lineno}: {args[-1]!r} is not a number of seconds") from None
            if verb == "send-secret" and not args[0].startswith(("keyring:", "{")):
                raise ConfigError(
                    f"{name}:{lineno}: send-secret takes a keyring reference (keyring:HOST/USER), never a literal"
                )
            if verb in ("expect", "send", "abort"):
                try:
                    decode_escapes(args[0], "script text", True)
                except UsageError as exc:
                    raise ConfigError(f"{name}:{lineno}: {exc}") from None
            if verb == "expect-re":
                try:
                    re.compile(args[0].encode())
                except re.error as exc:
                    raise ConfigError(f"{name}:{lineno}: bad regular expression: {exc}") from None
            steps.append(Step(verb, args, lineno))
        return cls(name, tuple(steps))

    @classmethod
    def load(cls, path: Path) -> ChatScript:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"connect script {path}: {exc.strerror}") from None
        return cls.parse(text, str(path))

    def _subst(self, step: Step, text: str, variables: Mapping[str, str]) -> str:
        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise ConfigError(f"{self.name}:{step.lineno}: no value for {{{m.group(1)}}} (set it in the "
                                  "inventory entry's console.script_vars or with --var NAME=VALUE)")
            return variables[m.group(1)]

        return _VAR.sub(repl, text)

    def _args(self, step: Step, variables: Mapping[str, str]) -> list[str]:
        """The step's arguments with variables filled in; a send-secret must end up a keyring reference."""
        args = [self._subst(step, a, variables) for a in step.args]
        if step.verb == "send-secret" and not args[0].startswith("keyring:"):
            raise ConfigError(
                f"{self.name}:{step.lineno}: send-secret needs a keyring reference (keyring:HOST/USER), "
                f"and {step.args[0]} gave none"
            )
        return args

    def secret_refs(self, variables: Mapping[str, str] | None = None) -> list[str]:
        """The keyring references the script's ``send-secret`` steps use, in order, each once.

        Raise ``ConfigError`` (naming the line) for a missing variable or a send-secret that is no reference.
        """
        refs: list[str] = []
        for step in self.steps:
            if step.verb == "send-secret":
                ref = self._args(step, variables or {})[0]
                if ref not in refs:
                    refs.append(ref)
        return refs

    def plan(self, variables: Mapping[str, str] | None = None) -> list[str]:
        """The steps as they would run, in the script's own syntax, secrets as ``***`` (for ``--dry-run``).

        Raise ``ConfigError`` (naming the line) for a missing variable, before anything is sent.
        """
        variables = variables or {}
        return [f"{self.name}:{step.lineno} {_describe(step.verb, self._args(step, variables))}" for step in self.steps]

    def run(
        self,
        session: Session,
        resolve: Callable[[str], Secret],
        variables: Mapping[str, str] | None = None,
        default_timeout_s: float = 10.0,
    ) -> list[str]:
        """Run the script on ``session``; return a log of the steps done, with what each expect saw (no secrets).

        Every variable is checked before the first step. Raise ``TargetError`` naming the script line and
        what it awaited when an expect times out or an abort text (or a kernel panic) shows first, and the
        transport's own error (``ConsoleClosed``, ...) with the same prefix when the console goes away.
        """
        variables = variables or {}
        self.plan(variables)  # a missing variable fails here, not half-way through a login
        timeout_s = default_timeout_s
        done: list[str] = []
        aborts: list[bytes] = []
        for step in self.steps:
            args = self._args(step, variables)
            where = f"{self.name}:{step.lineno}"
            line = f"{where} {_describe(step.verb, args)}"
            if step.verb == "timeout":
                timeout_s = float(args[0])
            elif step.verb in ("expect", "expect-re"):
                wait_s = float(args[1]) if len(args) == 2 else timeout_s
                pattern: bytes | re.Pattern[bytes] = (
                    decode_escapes(args[0], "script text", True) if step.verb == "expect" else re.compile(args[0].encode())
                )
                awaited = f"{step.verb} {_quote(args[0])}"
                try:
                    with session.abort_on(*aborts):
                        r = session.expect([pattern], wait_s)
                except PromptTimeout as exc:
                    tail = str(exc).partition("; last output: ")[2] or "''"
                    raise PromptTimeout(f"{where}: {awaited} not seen within {wait_s:g} s on "
                                        f"{session.transport.describe()}; last output: {tail}") from None
                except DeathPattern as exc:
                    raise TargetError(f"{where}: aborted while awaiting {awaited}: {exc}") from None
                except TransportError as exc:
                    raise type(exc)(f"{where}: while awaiting {awaited}: {exc}") from None
                line += f"  -> saw {r.text()!r}"
            elif step.verb == "send":
                session.send(decode_escapes(args[0], "script text", True))
            elif step.verb == "send-secret":
                session.send_secret(resolve(args[0]))
            elif step.verb == "break":
                session.send_break()
            elif step.verb == "abort":
                aborts.append(decode_escapes(args[0], "script text", True))
            elif step.verb == "settle":
                session.settle(float(args[0]), max(timeout_s, float(args[0]) * 4))
            done.append(line)
            session.note(f"connect script {where}: {step.verb} done")
        return done


def _quote(text: str) -> str:
    """``text`` as the script would write it: in double quotes, escapes left as written."""
    return '"' + text.replace('"', '\\"') + '"'


def _describe(verb: str, args: list[str]) -> str:
    """One step in the script's syntax; a send-secret shows only its reference and ``***``."""
    if verb == "send-secret":
        return f"send-secret {args[0]}  (sends *** then Enter)"
    if verb in ("send", "expect", "expect-re", "abort"):
        return " ".join([verb, _quote(args[0]), *args[1:]])
    return " ".join([verb, *args])
