"""``telnet://HOST:PORT``: console servers, IP-KVM serial gateways, QEMU's telnet chardev.

BREAK is ``IAC BRK``; a console server or QEMU turns it into a serial BREAK.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from consolebot.errors import ConsoleClosed, ConsoleUnreachable
from consolebot.transport.base import Ability, Transport
from consolebot.transport.telnet_codec import BRK, TelnetCodec, TelnetEvent


def connect_tcp(host: str, port: int, timeout_s: float, what: str) -> socket.socket:
    """Given an address, return a connected non-blocking socket or raise ``ConsoleUnreachable``."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        raise ConsoleUnreachable(
            f"{what}: connection refused by {host}:{port}; check the console address and that the server runs"
        ) from None
    except TimeoutError:
        raise ConsoleUnreachable(f"{what}: no answer from {host}:{port} within {timeout_s:g} s") from None
    except socket.gaierror as exc:
        raise ConsoleUnreachable(f"{what}: cannot resolve host {host!r} ({exc.strerror})") from None
    except OSError as exc:
        raise ConsoleUnreachable(f"{what}: cannot connect to {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class TelnetTransport(Transport):
    """Given host and port, speak telnet to a console server."""

    scheme = "telnet"
    abilities = frozenset({Ability.BREAK, Ability.WRITE, Ability.POLLABLE})
    quick_close = True

    def __init__(self, host: str, port: int, connect_timeout_s: float = 10.0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self.codec = TelnetCodec("client")
        self.commands_seen: list[int] = []

    def describe(self) -> str:
        return f"telnet://{self.host}:{self.port}"

    def open(self) -> None:
        self._sock = connect_tcp(self.host, self.port, self.connect_timeout_s, self.describe())
        self._opened()

    def _opened(self) -> None:
        self._closed = False
        self.codec = TelnetCodec("client")
        self._send_raw(self.codec.start())

    # -- a connect that never blocks the capture loop -----------------------------------------------------
    def start_connect(self) -> int:
        """Begin a non-blocking connect; return the descriptor to wait on for writability.

        Raise ``ConsoleUnreachable`` when it fails at once (a bad name, a local refusal).
        """
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConsoleUnreachable(f"{self.describe()}: cannot resolve host {self.host!r} ({exc.strerror})") from None
        family, kind, proto, _c, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise ConsoleUnreachable(f"{self.describe()}: cannot connect: {os.strerror(err)}")
        self._sock = sock
        return sock.fileno()

    def finish_connect(self) -> None:
        """The descriptor became writable: raise ``ConsoleUnreachable`` if the connect failed, else start."""
        assert self._sock is not None
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._sock.close()
            self._sock = None
            what = "connection refused" if err == errno.ECONNREFUSED else os.strerror(err)
            raise ConsoleUnreachable(f"{self.describe()}: {what} by {self.host}:{self.port}; check the console "
                                     "address and that the server runs")
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._opened()

    def fileno(self) -> int:
        if self._sock is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        return self._sock.fileno()

    def _send_raw(self, data: bytes) -> None:
        if self._sock is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view)
            except BlockingIOError:
                import select

                select.poll().poll(50)
                continue
            except OSError as exc:
                self.close()
                raise ConsoleClosed(f"{self.describe()}: connection lost while sending ({exc.strerror})") from None
            view = view[n:]

    def _read_available(self) -> bytes:
        if self._sock is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        chunks: list[bytes] = []
        while True:
            try:
                raw = self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                    raw = b""
                else:
                    raise ConsoleClosed(f"{self.describe()}: {exc.strerror}") from None
            if not raw:
                if chunks:
                    # deliver what we have; EOF is reported on the next call
                    break
                self.close()
                raise ConsoleClosed(f"{self.describe()}: the console server closed the connection")
            items = self.codec.feed(raw)
            if len(raw) < 65536 and not chunks and len(items) == 1 and not self.codec.replies:
                item = items[0]
                if not isinstance(item, TelnetEvent):
                    return item  # the common case: one read of plain data
            for item in items:
                if isinstance(item, TelnetEvent):
                    self.commands_seen.append(item.command)
                else:
                    chunks.append(item)
            if self.codec.replies:
                self._send_raw(self.codec.take_replies())
            if len(raw) < 65536:
                break
        return b"".join(chunks)

    def write(self, data: bytes) -> None:
        self._send_raw(self.codec.encode(data))

    def _send_break(self) -> None:
        self._send_raw(bytes([255, BRK]))

    def start_drain(self) -> bool:
        """Half-close (no more is sent): the peer's end of stream then says all it sent was read.

        For a caller draining many connections at once; return False when the connection is gone.
        """
        if self._sock is None:
            return False
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return False
        return True

    def drain_close(self, timeout_s: float = 1.0) -> bytes:
        """Half-close, then read until the server closes too: every byte it sent is ours."""
        chunks: list[bytes] = []
        if self._sock is None:
            return b""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return b""
        end = time.monotonic() + timeout_s
        while (remaining := end - time.monotonic()) > 0:
            try:
                data = self.read(65536, remaining)
            except ConsoleClosed:
                break
            chunks.append(data)
        self.close()
        return b"".join(chunks)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        self._closed = True
