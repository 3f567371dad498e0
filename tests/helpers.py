"""Test-only transports (never shipped)."""

from __future__ import annotations

import socket

from consolebot.errors import ConsoleClosed
from consolebot.transport.base import Ability, Transport


class SocketPairTransport(Transport):
    """One end of a socketpair; the test drives the other end (``peer``)."""

    scheme = "socketpair"
    abilities = frozenset({Ability.WRITE, Ability.POLLABLE})

    def __init__(self) -> None:
        super().__init__()
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)

    def open(self) -> None:
        self._closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def _read_available(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return b""
        if not data:
            raise ConsoleClosed("socketpair: closed")
        return data

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()
        self._closed = True

    def describe(self) -> str:
        return "socketpair://test"
