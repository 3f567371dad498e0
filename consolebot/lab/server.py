"""Serve the simulated site: per host a telnet port, a raw TCP port, a BMC control port; or stdio.

Output is broadcast to every client attached to a host's console, as a console server does; input
from any of them goes to the machine. A ``--kvm-menu`` puts a port menu in front of every telnet
console, ``--sp-cli`` puts Mire's service processor CLI in front of its console. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consolebot.lab.bmc import serve_bmc_client
from consolebot.lab.config import HostProfile, SimOptions
from consolebot.lab.frontends import KvmMenu, SpCli
from consolebot.lab.machine import Machine
from consolebot.lab.site import Site
from consolebot.transport.telnet_codec import BRK, TelnetCodec, TelnetEvent

LOOPBACK = "127.0.0.1"
SP_ESCAPE = b"\x1b("


class BreakSequenceFilter:
    """Given an in-band break sequence, split input into data and BREAKs."""

    def __init__(self, seq: bytes | None) -> None:
        self.seq = seq
        self._held = b""

    def feed(self, data: bytes) -> list[bytes | None]:
        """Return data chunks, with ``None`` where a BREAK sequence was."""
        if not self.seq:
            return [data]
        buf = self._held + data
        out: list[bytes | None] = []
        while True:
            i = buf.find(self.seq)
            if i < 0:
                break
            if i:
                out.append(buf[:i])
            out.append(None)
            buf = buf[i + len(self.seq) :]
        keep = 0
        for k in range(min(len(self.seq) - 1, len(buf)), 0, -1):
            if buf.endswith(self.seq[:k]):
                keep = k
                break
        if keep:
            self._held = buf[-keep:]
            buf = buf[:-keep]
        else:
            self._held = b""
        if buf:
            out.append(buf)
        return out


@dataclass
class Ports:
    telnet: int | None = None
    raw: int | None = None
    bmc: int | None = None


@dataclass
class HostConsole:
    """One machine and the clients attached to its console."""

    profile: HostProfile
    machine: Machine | None = None
    writers: list[Callable[[bytes], None]] = field(default_factory=list)

    def broadcast(self, data: bytes) -> None:
        for w in list(self.writers):
            try:
                w(data)
            except Exception:
                if w in self.writers:
                    self.writers.remove(w)

    @property
    def m(self) -> Machine:
        assert self.machine is not None
        return self.machine


class ClientConn:
    """One client of a host's telnet/raw port: maybe a front end first, then the console."""

    def __init__(self, server: SiteServer, home: HostConsole, send: Callable[[bytes], None],
                 break_seq: bytes | None, hang_up: Callable[[], None]) -> None:
        self.server = server
        self.home = home
        self.send = send
        self._hang_up = hang_up
        self.bfilter = BreakSequenceFilter(break_seq)
        self.front: KvmMenu | SpCli | None = None
        self.sp: SpCli | None = None
        self.console: HostConsole | None = None

    # -- frontends.Conn --------------------------------------------------------------------------
    def attach_machine(self, machine: Machine, rest: bytes) -> None:
        console = self.server.consoles[machine.profile.name]
        self.front = None
        self.console = console
        console.writers.append(self.send)
        machine.client_connected()
        if rest:
            self.data(rest)

    def enter_host(self, name: str, rest: bytes) -> None:
        console = self.server.consoles[name]
        if self.server.opts.sp_cli and console.profile.sp:
            self.sp = SpCli(self, console.m)
            self.front = self.sp
            self.sp.start()
            if rest:
                self.sp.feed(rest)
            return
        self.attach_machine(console.m, rest)

    def hang_up(self) -> None:
        self._hang_up()

    # -- input ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        opts = self.server.opts
        if opts.kvm_menu:
            names = list(self.server.consoles)
            ports: list[tuple[str, str | None]] = [(self.server.consoles[n].m.console_hostname, n) for n in names]
            if len(ports) == 1:
                ports.append(("(no device)", None))
            self.front = KvmMenu(self, ports, opts.kvm_user, opts.kvm_password)
            self.front.start()
            return
        self.enter_host(self.home.profile.name, b"")

    def data(self, data: bytes) -> None:
        if self.console is None:
            if self.front is not None:
                self.front.feed(data)
            return
        if self.sp is not None and SP_ESCAPE in data:
            before, _, after = data.partition(SP_ESCAPE)
            if before:
                self._to_console(before)
            self.detach()
            self.sp.back()
            self.front = self.sp
            if after:
                self.sp.feed(after)
            return
        self._to_console(data)

    def _to_console(self, data: bytes) -> None:
        assert self.console is not None
        m = self.console.m
        for part in self.bfilter.feed(data):
            if part is None:
                m.on_break()
            else:
                m.feed(part)

    def brk(self) -> None:
        if self.console is not None:
            self.console.m.on_break()

    def detach(self) -> None:
        if self.console is not None:
            if self.send in self.console.writers:
                self.console.writers.remove(self.send)
            self.console.m.client_disconnected()
            self.console = None

    def close(self) -> None:
        self.detach()


class SiteServer:
    """Given options, the hosts to serve and their ports, run the simulated site until stopped."""

    def __init__(self, opts: SimOptions, profiles: list[HostProfile], ports: dict[str, Ports],
                 break_seq: bytes | None = None, stdio: bool = False) -> None:
        self.opts = opts
        self.profiles = profiles
        self.ports = ports
        self.break_seq = break_seq
        self.stdio = stdio
        self.site = Site()
        self.consoles: dict[str, HostConsole] = {}
        self.bound: dict[str, dict[str, int]] = {}
        self.started_s = 0.0

    def _log_path(self, path: str | None, host: str) -> str | None:
        if not path:
            return None
        if "{host}" in path:
            return path.replace("{host}", host)
        if len(self.profiles) == 1:
            return path
        root, ext = os.path.splitext(path)
        return f"{root}.{host}{ext}"

    def build(self) -> None:
        for i, prof in enumerate(self.profiles):
            console = HostConsole(prof)
            console.machine = Machine(prof, self.opts, self.site, console.broadcast, primary=i == 0,
                                      send_log=self._log_path(self.opts.send_log, prof.name),
                                      act_log=self._log_path(self.opts.act_log, prof.name))
            self.site.add(console.machine)
            self.consoles[prof.name] = console

    async def _telnet_client(self, console: HostConsole, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        codec = TelnetCodec("server")
        writer.write(codec.start())

        def send(data: bytes) -> None:
            writer.write(codec.encode(data))

        conn = ClientConn(self, console, send, self.break_seq, writer.close)
        conn.start()
        try:
            while True:
                raw = await reader.read(65536)
                if not raw:
                    break
                for item in codec.feed(raw):
                    if isinstance(item, TelnetEvent):
                        if item.command == BRK:
                            conn.brk()
                    else:
                        conn.data(item)
                replies = codec.take_replies()
                if replies:
                    writer.write(replies)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            conn.close()
            writer.close()

    async def _raw_client(self, console: HostConsole, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        conn = ClientConn(self, console, writer.write, self.break_seq, writer.close)
        conn.start()
        try:
            while True:
                raw = await reader.read(65536)
                if not raw:
                    break
                conn.data(raw)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            conn.close()
            writer.close()

    async def _serve_stdio(self, console: HostConsole) -> None:
        """The primary console on this process's stdin/stdout (for ``exec:`` and an SSH ForceCommand)."""
        loop = asyncio.get_running_loop()
        out_fd = sys.stdout.fileno()
        in_fd = sys.stdin.fileno()
        _make_raw(in_fd)

        def send(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(out_fd, view)
                except BlockingIOError:
                    continue
                view = view[n:]

        conn = ClientConn(self, console, send, self.break_seq, lambda: None)
        done = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(in_fd, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(in_fd)
                if not done.done():
                    done.set_result(None)
                return
            conn.data(data)

        loop.add_reader(in_fd, readable)
        conn.start()
        console.m.start()
        await done
        conn.close()

    async def run(self, ready: Callable[[dict[str, Any]], None], stop: asyncio.Event | None = None,
                  handle_signals: bool = True) -> None:
        t0 = time.monotonic()
        if not self.consoles:
            self.build()
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        servers: list[asyncio.Server] = []
        try:
            for name, console in self.consoles.items():
                p = self.ports.get(name, Ports())
                bound: dict[str, int] = {}
                if p.telnet is not None:
                    srv = await asyncio.start_server(functools.partial(self._telnet_client, console), LOOPBACK,
                                                     p.telnet)
                    servers.append(srv)
                    bound["telnet"] = srv.sockets[0].getsockname()[1]
                if p.raw is not None:
                    srv = await asyncio.start_server(functools.partial(self._raw_client, console), LOOPBACK, p.raw)
                    servers.append(srv)
                    bound["raw"] = srv.sockets[0].getsockname()[1]
                if p.bmc is not None:
                    srv = await asyncio.start_server(functools.partial(serve_bmc_client, console.m), LOOPBACK, p.bmc)
                    servers.append(srv)
                    bound["bmc"] = srv.sockets[0].getsockname()[1]
                self.bound[name] = bound
            for i, console in enumerate(self.consoles.values()):
                if i > 0 or not self.opts.wait_for_client:
                    console.m.start()
            self.started_s = time.monotonic() - t0
            ready(self.describe())
            primary = next(iter(self.consoles.values()))
            if self.stdio:
                stdio_task = loop.create_task(self._serve_stdio(primary))
                stop_task = loop.create_task(stop.wait())
                await asyncio.wait([stdio_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
                for t in (stdio_task, stop_task):
                    t.cancel()
            else:
                await stop.wait()
        finally:
            for srv in servers:
                srv.close()
            for console in self.consoles.values():
                if console.machine is not None:
                    console.machine.close()
            if handle_signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(Exception):
                        loop.remove_signal_handler(sig)

    def describe(self) -> dict[str, Any]:
        """The ready-file JSON: the primary host's ports at the top level, every host under "hosts"."""
        first = next(iter(self.consoles))
        info: dict[str, Any] = dict(self.bound.get(first, {}))
        info["hosts"] = {
            name: {**self.bound.get(name, {}), "console_hostname": c.m.console_hostname, "guid": c.profile.guid}
            for name, c in self.consoles.items()
        }
        return info


def _make_raw(fd: int) -> None:
    try:
        import termios
        import tty

        if os.isatty(fd):
            tty.setraw(fd, termios.TCSANOW)
    except Exception:
        pass
