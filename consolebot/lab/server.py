"""Serve a simulated machine's console over telnet, raw TCP and stdio (asyncio).

Output is broadcast to every connected client, as a console server does; input
from any client goes to the machine. Listens on loopback only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from consolebot.lab.machine import Machine, MachineConfig
from consolebot.transport.telnet_codec import BRK, TelnetCodec, TelnetEvent

LOOPBACK = "127.0.0.1"


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
class Console:
    """One machine and its connected clients."""

    machine: Machine
    writers: list[Callable[[bytes], None]]

    def broadcast(self, data: bytes) -> None:
        for w in list(self.writers):
            try:
                w(data)
            except Exception:
                self.writers.remove(w)


def make_console(config: MachineConfig) -> Console:
    writers: list[Callable[[bytes], None]] = []
    console = Console(machine=None, writers=writers)  # type: ignore[arg-type]
    console.machine = Machine(config, console.broadcast)
    return console


@dataclass
class KvmMenu:
    """An IP-KVM-like port menu in front of the console: user, password, port number.

    Returns True from ``feed`` once the client has picked the console's port.
    """

    send: Callable[[bytes], None]
    port_name: str
    user: str = "admin"
    password: str = "kvmpass"
    state: str = "user"
    line: bytearray = field(default_factory=bytearray)
    given_user: str = ""
    failures: int = 0

    def start(self) -> None:
        self.send(b"\r\nLab IP-KVM serial gateway (simulated)\r\nUsername: ")

    def feed(self, data: bytes) -> tuple[bool, bytes]:
        """Return (attached, bytes left over for the console)."""
        for i, b in enumerate(data):
            if b in (10, 0) and not self.line:
                continue
            if b != 13 and b != 10:
                self.line.append(b)
                if self.state != "password":
                    self.send(bytes([b]))
                continue
            text = self.line.decode(errors="replace")
            self.line.clear()
            self.send(b"\r\n")
            if self.state == "user":
                self.given_user = text
                self.state = "password"
                self.send(b"Password: ")
            elif self.state == "password":
                if self.given_user == self.user and text == self.password:
                    self.state = "menu"
                    self.send(f"  1  {self.port_name}\r\n  2  (no device)\r\nSelect port: ".encode())
                else:
                    self.failures += 1
                    self.state = "user"
                    self.send(b"Access denied\r\nUsername: ")
            elif self.state == "menu":
                if text.strip() == "1":
                    self.send(f"Connected to {self.port_name}. Escape is ~.\r\n".encode())
                    return True, data[i + 1 :].lstrip(b"\n\x00")
                self.send(b"No such port\r\nSelect port: ")
        return False, b""


async def serve_telnet_client(
    console: Console,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    break_seq: bytes | None,
    kvm: dict[str, str] | None = None,
) -> None:
    codec = TelnetCodec("server")
    writer.write(codec.start())

    def send(data: bytes) -> None:
        writer.write(codec.encode(data))

    bfilter = BreakSequenceFilter(break_seq)
    menu: KvmMenu | None = None
    if kvm is not None:
        menu = KvmMenu(send, console.machine.config.console_hostname, kvm["user"], kvm["password"])
        menu.start()
    else:
        console.writers.append(send)
        console.machine.client_connected()
    try:
        while True:
            raw = await reader.read(65536)
            if not raw:
                break
            for item in codec.feed(raw):
                if isinstance(item, TelnetEvent):
                    if item.command == BRK and menu is None:
                        console.machine.on_break()
                elif menu is not None:
                    attached, rest = menu.feed(item)
                    if attached:
                        menu = None
                        console.writers.append(send)
                        console.machine.client_connected()
                        if rest:
                            _feed(console, bfilter, rest)
                else:
                    _feed(console, bfilter, item)
            replies = codec.take_replies()
            if replies:
                writer.write(replies)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if send in console.writers:
            console.writers.remove(send)
            console.machine.client_disconnected()
        writer.close()


def _feed(console: Console, bfilter: BreakSequenceFilter, data: bytes) -> None:
    for part in bfilter.feed(data):
        if part is None:
            console.machine.on_break()
        else:
            console.machine.feed(part)


async def serve_raw_client(
    console: Console, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, break_seq: bytes | None
) -> None:
    bfilter = BreakSequenceFilter(break_seq)
    console.writers.append(writer.write)
    console.machine.client_connected()
    try:
        while True:
            raw = await reader.read(65536)
            if not raw:
                break
            _feed(console, bfilter, raw)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if writer.write in console.writers:
            console.writers.remove(writer.write)
        console.machine.client_disconnected()
        writer.close()


async def serve_stdio(console: Console, break_seq: bytes | None) -> None:
    """Serve the console on this process's stdin/stdout (for ``exec:`` and SSH ForceCommand)."""
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

    bfilter = BreakSequenceFilter(break_seq)
    console.writers.append(send)
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
        _feed(console, bfilter, data)

    loop.add_reader(in_fd, readable)
    console.machine.client_connected()
    console.machine.power_on()
    await done


def _make_raw(fd: int) -> None:
    try:
        import termios
        import tty

        if os.isatty(fd):
            tty.setraw(fd, termios.TCSANOW)
    except Exception:
        pass


async def run_servers(
    config: MachineConfig,
    telnet_port: int | None,
    raw_port: int | None,
    stdio: bool,
    break_seq: bytes | None,
    ready: Callable[[dict[str, int]], None],
    kvm: dict[str, str] | None = None,
) -> None:
    console = make_console(config)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    def _stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop)
    servers: list[asyncio.Server] = []
    ports: dict[str, int] = {}
    if telnet_port is not None:
        srv = await asyncio.start_server(
            lambda r, w: serve_telnet_client(console, r, w, break_seq, kvm), LOOPBACK, telnet_port
        )
        servers.append(srv)
        ports["telnet"] = srv.sockets[0].getsockname()[1]
    if raw_port is not None:
        srv = await asyncio.start_server(lambda r, w: serve_raw_client(console, r, w, break_seq), LOOPBACK, raw_port)
        servers.append(srv)
        ports["raw"] = srv.sockets[0].getsockname()[1]
    if not config.wait_for_client:
        console.machine.power_on()
    ready(ports)
    try:
        if stdio:
            stdio_task = loop.create_task(serve_stdio(console, break_seq))
            await asyncio.wait([stdio_task, stop], return_when=asyncio.FIRST_COMPLETED)
        else:
            await stop
    finally:
        for srv in servers:
            srv.close()
        console.machine.close()
