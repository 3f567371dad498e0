"""What may stand in front of a console: an IP-KVM serial gateway's port menu, a service processor's CLI.

Both are documented inventions in the style of the real devices (no vendor text is copied): the KVM
menu is walked by ``consolebot/data/expect_scripts/kvm-menu.chat``, the ILOM-like service processor
by ``sp-console.chat`` (``->`` prompt, ``start /SP/console``, ``(y/n)? ``, ``Serial console started``,
and ``ESC (`` back to the prompt), ``sp-power-state.chat`` (``show /SYS power_state``) and
``sp-power-on.chat`` (``start /SYS``; ``start: Target already started`` when it is on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from consolebot.lab.machine import Machine


class Conn(Protocol):
    """The client connection a front end talks to."""

    def send(self, data: bytes) -> None: ...
    def attach_machine(self, machine: Machine, rest: bytes) -> None: ...
    def enter_host(self, name: str, rest: bytes) -> None: ...
    def hang_up(self) -> None: ...


class LineReader:
    """Echoing line input (CR or LF ends a line, backspace erases)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send
        self.buf = bytearray()
        self.echo = True
        self._last_cr = False

    def feed_one(self, data: bytes) -> tuple[str | None, bytes]:
        """Consume ``data`` up to the first line end; return (the line or None, the bytes not consumed)."""
        for i, b in enumerate(data):
            if b == 10 and self._last_cr:
                self._last_cr = False
                continue
            if b == 0:
                continue
            if b in (13, 10):
                self._last_cr = b == 13
                text = self.buf.decode("utf-8", "replace")
                self.buf.clear()
                self.send(b"\r\n")
                return text, data[i + 1 :]
            self._last_cr = False
            if b in (8, 127):
                if self.buf:
                    self.buf.pop()
                    if self.echo:
                        self.send(b"\x08 \x08")
                continue
            self.buf.append(b)
            if self.echo:
                self.send(bytes([b]))
        return None, b""


@dataclass
class KvmMenu:
    """An IP-KVM-like serial gateway: user, password, then a numbered port list."""

    conn: Conn
    ports: list[tuple[str, str | None]]  # (label, host name or None for an empty port)
    user: str = "admin"
    password: str = "kvmpass"
    state: str = "user"
    given_user: str = ""
    failures: int = 0
    reader: LineReader | None = None

    def start(self) -> None:
        self.reader = LineReader(self.conn.send)
        self.conn.send(b"\r\nLab IP-KVM serial gateway (simulated)\r\nUsername: ")

    def _menu(self) -> bytes:
        rows = "".join(f"  {i}  {label}\r\n" for i, (label, _h) in enumerate(self.ports, start=1))
        return (rows + "Select port: ").encode()

    def feed(self, data: bytes) -> None:
        assert self.reader is not None
        while data:
            text, data = self.reader.feed_one(data)
            if text is None:
                return
            if self.state == "user":
                self.given_user = text
                self.state = "password"
                self.reader.echo = False
                self.conn.send(b"Password: ")
            elif self.state == "password":
                self.reader.echo = True
                if self.given_user == self.user and text == self.password:
                    self.state = "menu"
                    self.conn.send(self._menu())
                else:
                    self.failures += 1
                    self.state = "user"
                    self.conn.send(b"Access denied\r\nUsername: ")
            elif self.state == "menu":
                choice = text.strip()
                if choice.isdigit() and 1 <= int(choice) <= len(self.ports) and self.ports[int(choice) - 1][1]:
                    label, host = self.ports[int(choice) - 1]
                    assert host is not None
                    self.state = "attached"
                    self.conn.send(f"Connected to {label}. Escape is ~.\r\n".encode())
                    self.conn.enter_host(host, data.lstrip(b"\n\x00"))
                    return
                self.conn.send(b"No such port\r\nSelect port: ")


@dataclass
class SpCli:
    """An ILOM-like service processor CLI for one host."""

    conn: Conn
    machine: Machine
    confirm: str = ""  # the command awaiting (y/n)
    reader: LineReader | None = None
    history: list[str] = field(default_factory=list)

    PROMPT = b"-> "

    def start(self) -> None:
        self.reader = LineReader(self.conn.send)
        self.conn.send(b"\r\nLab service processor (simulated, ILOM-like)\r\n"
                       b"Hostname: " + self.machine.profile.name.encode() + b"-sp\r\n\r\n" + self.PROMPT)

    def back(self) -> None:
        """ESC ( typed on the host console: back at the prompt."""
        self.reader = LineReader(self.conn.send)
        self.conn.send(b"\r\nSerial console stopped.\r\n\r\n" + self.PROMPT)

    def feed(self, data: bytes) -> None:
        assert self.reader is not None
        while data:
            text, data = self.reader.feed_one(data)
            if text is None or self._line(text.strip(), data):
                return

    def _line(self, text: str, rest: bytes) -> bool:
        """Handle one line; return True when the connection left the CLI (console attached or closed)."""
        m = self.machine
        m.act("sp", text=text)
        if self.confirm:
            target, self.confirm = self.confirm, ""
            if text.lower() not in ("y", "yes"):
                self.conn.send(self.PROMPT)
                return False
            return self._do(target, rest)
        words = text.split()
        if not words:
            self.conn.send(self.PROMPT)
            return False
        verb = words[0].lower()
        args = [w for w in words[1:] if not w.startswith("-")]
        force = any(w in ("-f", "-force") for w in words[1:])
        script = "-script" in words[1:]
        target = (args[0] if args else "").rstrip("/")
        if verb in ("exit", "logout", "quit"):
            self.conn.hang_up()
            return True
        if verb == "help":
            self.conn.send(b"The help command is used to view information about commands and targets\r\n"
                           b"Commands: cd, exit, help, reset, show, start, stop\r\n\r\n" + self.PROMPT)
            return False
        if verb == "show":
            if target in ("/SYS", "/System"):
                power = "On" if m.powered else "Off"
                self.conn.send(f"\r\n /SYS\r\n    Properties:\r\n        power_state = {power}\r\n\r\n".encode()
                               + self.PROMPT)
            else:
                self.conn.send(f"show: Invalid target {target}\r\n\r\n".encode() + self.PROMPT)
            return False
        if verb in ("start", "stop", "reset") and target in ("/SP/console", "/SYS", "/System"):
            key = f"{verb}{'-force' if force else ''} {target}"
            if script:
                return self._do(key, rest)
            self.confirm = key
            self.conn.send(f"Are you sure you want to {verb} {target} (y/n)? ".encode())
            return False
        self.conn.send(f"Invalid command '{text}' - type help for a list of commands.\r\n\r\n".encode() + self.PROMPT)
        return False

    def _do(self, key: str, rest: bytes) -> bool:
        m = self.machine
        verb, target = key.split(" ", 1)
        if target == "/SP/console":
            if verb.startswith("start"):
                self.conn.send(b"\r\nSerial console started.  To stop, type ESC (\r\n\r\n")
                self.conn.attach_machine(m, rest)
                return True
            self.conn.send(b"Stopping /SP/console\r\n\r\n" + self.PROMPT)
            return False
        if (verb == "start" and m.powered) or (verb.startswith("stop") and not m.powered):
            done = "started" if verb == "start" else "stopped"
            self.conn.send(f"{verb.split('-')[0]}: Target already {done}\r\n\r\n".encode() + self.PROMPT)
            return False
        m.act("bmc", cmd={"start": "on", "stop": "soft", "stop-force": "off", "reset": "reset"}.get(verb, verb),
              via="sp")
        if verb == "start":
            self.conn.send(b"Starting /SYS\r\n\r\n" + self.PROMPT)
            m.power_on()
        elif verb == "stop-force":
            self.conn.send(b"Stopping /SYS immediately\r\n\r\n" + self.PROMPT)
            m.power_off()
        elif verb == "stop":
            self.conn.send(b"Stopping /SYS\r\n\r\n" + self.PROMPT)
            m.soft_off()
        else:
            self.conn.send(b"Performing hard reset on /SYS\r\n\r\n" + self.PROMPT)
            m.reset()
        return False
