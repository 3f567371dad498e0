"""The interactive console: a person's keyboard on a console, with ssh-like escapes.

At the start of a line, ``~.`` leaves, ``~B`` sends a BREAK, ``~~`` sends one
``~`` and ``~?`` lists the escapes. What the console prints is kept in the
transcript; what the person types is recorded only as a byte count (it may be a
password the keyring does not know).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import termios
import tty
from collections.abc import Iterator
from dataclasses import dataclass

from consolebot.errors import BreakUnsupported, ConsoleClosed
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Transport

HELP = (
    b"\r\nSupported escapes (at the start of a line):\r\n"
    b"  ~.  leave the console\r\n  ~B  send a BREAK (then type the SysRq key within 5 s)\r\n"
    b"  ~~  send one ~\r\n  ~?  this help\r\n"
)


@dataclass
class EscapeParser:
    """Given typed bytes, split them into bytes to send and escape commands."""

    at_line_start: bool = True
    pending: bool = False

    def feed(self, data: bytes) -> list[bytes | str]:
        """Return a list of byte strings to send and command names ('quit', 'break', 'help')."""
        out: list[bytes | str] = []
        buf = bytearray()
        for b in data:
            if self.pending:
                self.pending = False
                if b == ord("."):
                    if buf:
                        out.append(bytes(buf))
                    out.append("quit")
                    return out
                if b in (ord("B"), ord("b")):
                    if buf:
                        out.append(bytes(buf))
                        buf = bytearray()
                    out.append("break")
                    self.at_line_start = False
                    continue
                if b == ord("?"):
                    if buf:
                        out.append(bytes(buf))
                        buf = bytearray()
                    out.append("help")
                    self.at_line_start = True
                    continue
                if b == ord("~"):
                    buf.append(b)
                    self.at_line_start = False
                    continue
                buf += b"~" + bytes([b])
                self.at_line_start = b in (13, 10)
                continue
            if b == ord("~") and self.at_line_start:
                self.pending = True
                continue
            buf.append(b)
            self.at_line_start = b in (13, 10, 21, 3)  # Enter, Ctrl-U, Ctrl-C start a fresh line
        if buf:
            out.append(bytes(buf))
        return out


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def interact(transport: Transport, transcript: Transcript, stdin_fd: int = 0, stdout_fd: int = 1) -> str:
    """Join the person's terminal to the console until ``~.``; return why it ended."""
    parser = EscapeParser()
    sel = selectors.DefaultSelector()
    sel.register(stdin_fd, selectors.EVENT_READ, "in")
    sel.register(transport.fileno(), selectors.EVENT_READ, "console")
    reason = "left with ~."
    typed = 0
    try:
        with raw_terminal(stdin_fd):
            _write_all(stdout_fd, b"[consolebot: attached to " + transport.describe().encode() + b"; ~. leaves, ~? help]\r\n")
            while True:
                for key, _ in sel.select(0.25):
                    if key.data == "console":
                        try:
                            data = transport.read_available()
                        except ConsoleClosed:
                            return "the console closed the connection"
                        if data:
                            _write_all(stdout_fd, transcript.rx(data))
                        continue
                    data = os.read(stdin_fd, 4096)
                    if not data:
                        return "end of input"
                    for item in parser.feed(data):
                        if item == "quit":
                            return reason
                        if item == "break":
                            try:
                                transport.send_break()
                                transcript.record("break", transport=transport.describe(), by="person")
                                _write_all(stdout_fd, b"\r\n[consolebot: BREAK sent]\r\n")
                            except BreakUnsupported as exc:
                                _write_all(stdout_fd, f"\r\n[consolebot: {exc}]\r\n".encode())
                        elif item == "help":
                            _write_all(stdout_fd, HELP)
                        elif isinstance(item, bytes):
                            transport.write(item)
                            typed += len(item)
                transcript.tick()
    finally:
        transcript.record("tx", by="person", bytes=typed)
        sel.close()
