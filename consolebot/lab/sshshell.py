"""``consolebot lab serve --stdio --host NAME --shell``: the host's SSH path, a shell with no console.

Run as an sshd ``ForceCommand`` (the command is in ``$SSH_ORIGINAL_COMMAND``), with ``-c COMMAND``
or the command as the last arguments (as ``ssh HOST COMMAND``: an inventory's ``[ssh] exec``),
or reading command lines on stdin (a prompt, the shell's own ``PS1``, only when stdin is a terminal).
When a simulator serving that host answers on its control port (``--bmc-port``, else the
inventory's), the login and the commands happen there, on the same state as its console (a new
login is refused or hangs as that host's sshd does, see ``--sshd``); otherwise on a standalone copy
of the host, already up.

``--ssh-refuses``: fail as a refused SSH login does (the ssh client's message, exit 255).
``--ssh-hangs``: accept, then never answer (NSS lookups hanging on a dead AFS server) until the
caller goes away (stdout closed, SIGTERM/SIGINT/SIGHUP) or ``HANG_LIMIT_S`` passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator

from consolebot.lab.config import HostProfile, SimOptions
from consolebot.lab.machine import Machine
from consolebot.lab.shell import ExitShell, Shell
from consolebot.lab.site import Site

HANG_LIMIT_S = 600.0


def refuse(profile: HostProfile) -> int:
    sys.stderr.write(f"root@{profile.console_hostname}: Permission denied (publickey,password).\r\n")
    sys.stderr.flush()
    return 255


def hang() -> int:
    """Hang like an sshd stuck in NSS: until the reader of stdout goes away, a signal, or the limit."""
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLERR | select.POLLHUP)
    end = time.monotonic() + HANG_LIMIT_S
    while not stopped and time.monotonic() < end:
        events = poller.poll(200)
        if any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in events):
            break
    return 255


class Remote:
    """Commands through a running simulator's control channel (state shared with its console)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        self.sock.settimeout(None)
        self.file = self.sock.makefile("rwb")

        self.prompt = ""
        self._closed = False

    def _ask(self, line: str) -> dict[str, object]:
        self.file.write(f"{line}\n".encode())
        self.file.flush()
        raw = self.file.readline()
        if not raw:
            self._closed = True
            return {"ok": False, "exit": 255, "error": "Connection closed by remote host."}
        reply: dict[str, object] = json.loads(raw)
        if "closed by remote host" in str(reply.get("error", "")):
            self._closed = True
        self.prompt = str(reply.get("prompt") or self.prompt)
        return reply

    @property
    def closed(self) -> bool:
        return self._closed

    def login(self) -> int | None:
        """None when the login is accepted; else the exit status of a refused one (after its message)."""
        reply = self._ask("login")
        if reply.get("ok"):
            return None
        sys.stderr.write(str(reply.get("error", "ssh: failed")) + "\r\n")
        sys.stderr.flush()
        return int(str(reply.get("exit", 255)))

    def run(self, line: str) -> tuple[int, str]:
        reply = self._ask(f"ssh {line.strip()}")
        if not reply.get("ok"):
            sys.stderr.write(str(reply.get("error", "ssh: failed")) + "\n")
            return int(str(reply.get("exit", 255))), ""
        return int(str(reply["exit"])), str(reply["output"])


class Local:
    """A standalone copy of the host, already up, for when no simulator is serving it."""

    def __init__(self, profile: HostProfile, opts: SimOptions) -> None:
        from consolebot.lab.commands import MachineSystem

        self.loop = asyncio.new_event_loop()
        self.machine = Machine(profile, opts, Site(), lambda _data: None, primary=True)
        self.loop.run_until_complete(self._up())
        self.shell = Shell(MachineSystem(self.machine, console=False), interactive=False, name="bash")

    @property
    def prompt(self) -> str:
        return self.shell.prompt()

    def login(self) -> int | None:
        return None

    async def _up(self) -> None:
        self.machine.assume_running()

    def run(self, line: str) -> tuple[int, str]:
        out: list[str] = []

        async def go() -> int:
            try:
                return await self.shell.run_line(line, out.append)
            except ExitShell as exc:
                return exc.status

        status = self.loop.run_until_complete(go())
        return status, "".join(out)


def run_shell_mode(profile: HostProfile, opts: SimOptions, control_port: int | None, refuses: bool, hangs: bool,
                   command: str | None) -> int:
    """Return the exit status an SSH client would see."""
    if refuses:
        return refuse(profile)
    if hangs:
        return hang()
    command = command if command is not None else os.environ.get("SSH_ORIGINAL_COMMAND")
    backend: Remote | Local
    try:
        backend = Remote(control_port if control_port is not None else profile.bmc_port)
    except OSError:
        backend = Local(profile, opts)
    refused = backend.login()
    if refused is not None:
        return refused
    if command is not None:
        status, output = backend.run(command)
        sys.stdout.write(output)
        sys.stdout.flush()
        return status
    interactive = os.isatty(sys.stdin.fileno())
    status = 0
    for line in _lines(sys.stdin.fileno()):
        if line in ("exit", "logout"):
            return status
        if line:
            status, output = backend.run(line)
            if isinstance(backend, Remote) and backend.closed:
                return 255
            sys.stdout.write(output)
        if interactive:
            sys.stdout.write(backend.prompt or f"root@{profile.console_hostname}:~# ")
        sys.stdout.flush()
    return status


def _lines(fd: int) -> Iterator[str]:
    """Command lines from ``fd``: ended by CR or LF (a raw terminal sends CR), ^C drops the line so far;
    an empty first item so an interactive shell shows its prompt at once."""
    yield ""
    buf = b""
    while True:
        data = os.read(fd, 4096)
        if not data:
            return
        for b in data:
            c = bytes([b])
            if c == b"\x03":
                buf = b""
                yield ""
            elif c in (b"\r", b"\n"):
                if buf or c == b"\r":
                    yield buf.decode("utf-8", "replace").strip()
                buf = b""
            else:
                buf += c
