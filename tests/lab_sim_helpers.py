"""Helpers for the simulator's own tests: the site in a thread, consoles over telnet, transcript events.

``LabSim(tmp, *flags)`` parses ``consolebot lab serve`` flags with the real parser and runs the real
``SiteServer`` in a background thread on free loopback ports, with fast defaults (boot lines 1 ms
apart, login failure delay 0.05 s, time scale 0.01); ``sim.console(host)`` is a telnet ``Session``,
``sim.bmc(host)`` a ``LabBmc``; ``sim.acts(host)`` / ``sim.sent(host)`` read the simulator's logs.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolebot.cli.main import build_parser
from consolebot.power.lab_bmc import LabBmc
from consolebot.secrets.redact import Redactor
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from consolebot.transport.telnet import TelnetTransport

TRANSCRIPTS = Path(__file__).resolve().parent / "fixtures" / "transcripts"
START_TIMEOUT_S = 10.0
FAST = ("--line-delay-ms", "1", "--login-fail-delay-s", "0.05", "--time-scale", "0.01")
# events a console client prints, not the server
CLIENT_EVENTS = {"SOL_BANNER", "CONSOLE_SERVER_BANNER", "SOL_BREAK_SENT", "CONSOLE_SERVER_BREAK", "SOL_CLOSED"}


def lab_args(*argv: str) -> Any:
    return build_parser().parse_args(["lab", "serve", *argv])


class LabSim:
    """The simulated site in this process (a thread with its own event loop)."""

    def __init__(self, tmp: Path, *flags: str, env: dict[str, str] | None = None, fast: bool = True) -> None:
        from consolebot.cli.lab import build_server

        self.tmp = tmp
        self.folder = tmp / "lab"
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = ["--port", "0", "--send-log", str(self.folder / "send-{host}.jsonl"),
                "--act-log", str(self.folder / "act-{host}.jsonl"), *(FAST if fast else ()), *flags]
        self.server = build_server(lab_args(*argv), env=env or {"CONSOLEBOT_LAB_PASSWORD": "labpass"})
        self.ports: dict[str, Any] = {}
        self.sessions: list[Session] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"simulator did not start: {self._error!r}")
        if self._error is not None:
            raise RuntimeError(f"simulator failed: {self._error!r}")

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(desc: dict[str, Any]) -> None:
                self.ports = desc
                self._ready.set()

            await self.server.run(ready, self._stop, handle_signals=False)

        try:
            asyncio.run(run())
        except BaseException as exc:  # surfaced by __init__ / stop
            self._error = exc
            self._ready.set()

    def port(self, host: str, kind: str) -> int:
        return int(self.ports["hosts"][host][kind])

    def machine(self, host: str = "deleuze") -> Any:
        return self.server.consoles[host].machine

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the simulator's loop and return its result."""
        assert self._loop is not None
        done = threading.Event()
        box: list[Any] = []

        def go() -> None:
            box.append(fn())
            done.set()

        self._loop.call_soon_threadsafe(go)
        done.wait(5)
        return box[0] if box else None

    def console(self, host: str = "deleuze", name: str | None = None, panic_is_death: bool = False) -> Session:
        t = TelnetTransport("127.0.0.1", self.port(host, "telnet"))
        t.open()
        kw: dict[str, Any] = {} if panic_is_death else {"death_patterns": ()}
        s = Session(t, Transcript(self.tmp / "transcripts", name or host, Redactor()), Redactor(), **kw)
        self.sessions.append(s)
        return s

    def bmc(self, host: str = "deleuze") -> LabBmc:
        return LabBmc("127.0.0.1", self.port(host, "bmc"))

    def acts(self, host: str = "deleuze") -> list[dict[str, Any]]:
        path = self.folder / f"act-{host}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def sent(self, host: str = "deleuze") -> bytes:
        path = self.folder / f"send-{host}.jsonl"
        if not path.exists():
            return b""
        return b"".join(json.loads(x)["text"].encode("latin-1") for x in path.read_text().splitlines())

    def stop(self) -> None:
        for s in self.sessions:
            try:
                s.close()
            except Exception:
                pass
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> LabSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Expected:
    index: int
    kind: str
    text: bytes


def unescape(text: str) -> bytes:
    out = text.replace("\\\\", "\x00BS").replace("\\x1b", "\x1b").replace("\\r", "\r").replace("\\n", "\n")
    out = out.replace("\\t", "\t").replace("\x00BS", "\\")
    return out.encode("latin-1")


def expected_events(name: str, hostname: str) -> list[Expected]:
    """The server-side events of ``tests/fixtures/transcripts/NAME.expected`` (fs01 -> ``hostname``)."""
    out = []
    for line in (TRANSCRIPTS / f"{name}.expected").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[1] in CLIENT_EVENTS:
            continue
        out.append(Expected(int(cols[0]), cols[1], unescape(cols[2].replace("fs01", hostname))))
    return out


def assert_in_order(data: bytes, events: list[Expected]) -> None:
    """Every event's exact substring occurs, each at or after the previous one's position."""
    pos = 0
    for ev in events:
        i = data.find(ev.text, pos)
        assert i >= 0, f"event {ev.index} {ev.kind} {ev.text!r} not found after byte {pos}: ...{data[pos:pos + 300]!r}"
        pos = i
    return None


def typed_commands(name: str) -> list[str]:
    """The commands typed at a root prompt in a transcript ``NAME.log``."""
    data = (TRANSCRIPTS / f"{name}.log").read_bytes().decode("latin-1")
    return re.findall(r"root@fs01:~# ([^\r\n\[]+)\r\n", data)


def prompt_of(host: str) -> bytes:
    return f"root@{host}:~# ".encode()


def login(s: Session, host: str, password: str = "labpass", timeout_s: float = 20.0, at_prompt: bool = False) -> None:
    """Log in as root (``at_prompt``: the login prompt was already read)."""
    if not at_prompt:
        s.expect([f"{host} login: ".encode()], timeout_s)
    s.sendline("root")
    s.expect([b"Password: "], 5)
    s.sendline(password)
    s.expect([prompt_of(host)], 5)


KERNEL_LINE = re.compile(rb"\[\s*\d+\.\d+\] [^\r\n]*(?:\r*\n|$)")


def run(s: Session, host: str, command: str, timeout_s: float = 10.0, raw: bool = False) -> str:
    """Type ``command`` at the root prompt; return what it printed (CR LF -> LF), the echo removed and
    kernel messages taken out (unless ``raw``)."""
    s.sendline(command)
    r = s.expect([prompt_of(host)], timeout_s)
    data = r.before if raw else KERNEL_LINE.sub(b"", r.before)
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    first = text.find("\n")
    return text[first + 1 :] if first >= 0 else ""


def wait_until(s: Session, host: str, command: str, predicate: Any, timeout_s: float = 15.0) -> str:
    """Run ``command`` until ``predicate(output)`` holds (each run awaits the prompt; no fixed sleeps)."""
    import time

    end = time.monotonic() + timeout_s
    while True:
        out = run(s, host, command)
        if predicate(out):
            return out
        if time.monotonic() > end:
            raise AssertionError(f"{command!r} never satisfied the condition; last output: {out!r}")
        s.read_for(0.05)


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        yield json.loads(line)
