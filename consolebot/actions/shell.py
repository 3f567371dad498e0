"""A shell on a console: a unique prompt, commands framed by markers, exit codes, kernel noise moved out.

``run(cmd)`` sends ``echo <start>; cmd; echo <end>:$?`` on one line, each marker split
by quotes, so that the echo of the typed line never matches. (A syntax error in ``cmd``
stops the whole line: that shows as a timeout, after which Ctrl-C clears the line.) Kernel lines inside the
output (whole, or spliced into the middle of an output line) are taken out of the
output; the recogniser sees them as events anyway.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from consolebot.actions.console import Console
from consolebot.errors import PromptTimeout, TargetError

_KERNEL_LINE = re.compile(rb"\[\s*\d+\.\d+\] [^\r\n]*(?:\r*\n|$)")
_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    output: str
    kernel_lines: tuple[str, ...]
    elapsed_s: float


def _split(word: str) -> str:
    """Write ``word`` so the shell prints it but the typed line does not contain it."""
    half = len(word) // 2
    return f"'{word[:half]}''{word[half:]}'"


class Shell:
    """Given a console at a shell prompt, prepare it and run commands with exit codes."""

    def __init__(self, console: Console, command_timeout_s: float = 60.0) -> None:
        self.console = console
        self.command_timeout_s = command_timeout_s
        self.tag = secrets.token_hex(4)
        self.prompt = f"cb{self.tag}# "
        self.saved_loglevel: int | None = None
        self.count = 0

    def prepare(self, quiet_kernel: bool = False, timeout_s: float = 15.0) -> None:
        """A unique prompt, no history, no line editing or bracketed paste, a wide terminal."""
        s = self.console.session
        s.sendline(f"PS1={_split(self.prompt)}; PS2=''; unset HISTFILE; export TERM=dumb")
        s.expect([self.prompt.encode()], timeout_s)
        for line in ("set +o vi 2>/dev/null; set +o emacs 2>/dev/null; bind 'set enable-bracketed-paste off' "
                     "2>/dev/null; stty cols 500 -ixon 2>/dev/null; true",):
            s.sendline(line)
            s.expect([self.prompt.encode()], timeout_s)
        if quiet_kernel:
            res = self.run("cat /proc/sys/kernel/printk")
            try:
                self.saved_loglevel = int(res.output.split()[0])
            except (ValueError, IndexError):
                self.saved_loglevel = None
            self.run("dmesg -n 1")
            self.console.act("dmesg-level", set=1, saved=self.saved_loglevel)

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult:
        """Run ``command``; return its exit code and clean output. Raise ``TargetError`` on a timeout."""
        self.count += 1
        start = f"CBS{self.tag}{self.count}"
        end = f"CBE{self.tag}{self.count}"
        s = self.console.session
        t0 = time.monotonic()
        s.sendline(f"echo {_split(start)}; {command}; echo {_split(end)}:$?")
        wait_s = timeout_s or self.command_timeout_s
        try:
            s.expect([re.compile(re.escape(start.encode()) + rb"\r*\n")], wait_s)
            r = s.expect([re.compile(re.escape(end.encode()) + rb":(\d+)")], wait_s)
            s.expect([self.prompt.encode()], wait_s)
        except PromptTimeout as exc:
            s.send(b"\x03")
            raise TargetError(f"{self.console.name}: command did not finish within {wait_s:g} s: {exc}") from None
        raw = r.before
        kernel = tuple(m.group().strip().decode("utf-8", "replace") for m in _KERNEL_LINE.finditer(raw))
        body = _KERNEL_LINE.sub(b"", raw)
        body = _ANSI.sub(b"", body).replace(b"\r\n", b"\n").replace(b"\r", b"")
        code = int(r.groups[0] or b"255")
        out = body.decode("utf-8", "replace").strip("\n")
        res = CommandResult(command, code, out, kernel, round(time.monotonic() - t0, 3))
        self.console.act("run", command=command, exit_code=code, kernel_lines=len(kernel), elapsed_s=res.elapsed_s)
        return res

    def logout(self, timeout_s: float = 15.0) -> bool:
        """Restore the console log level, leave the shell, and check the login prompt is back."""
        s = self.console.session
        if self.saved_loglevel is not None:
            try:
                self.run(f"dmesg -n {self.saved_loglevel}")
                self.console.act("dmesg-level", restored=self.saved_loglevel)
            except TargetError:
                pass
        for attempt in (b"exit\r", b"\x03\x04", b"logout\r"):
            mark = self.console.mark()
            s.send(attempt)
            try:
                ev = self.console.wait_for(("login.prompt",), timeout_s / 3, since=mark)
                self.console.act("logout", outcome="login prompt back", evidence_line=ev.line)
                return True
            except PromptTimeout:
                continue
        self.console.act("logout", outcome="FAILED: no login prompt after exit; a root shell may be open")
        return False
