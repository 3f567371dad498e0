"""The transport interface every console path implements.

A transport moves bytes and BREAKs; it knows nothing of prompts or events.
Contract (checked by ``tests/test_transport_contract.py`` against every transport):

* ``open()`` connects, raising ``ConsoleUnreachable`` (exit 4) or ``ConsoleBusy`` (exit 5).
  It never discards input that arrived before the first read.
* ``fileno()`` is a descriptor that becomes readable when ``read_available()``
  may have something (data or protocol). An event loop waits on it with poll/epoll.
* ``read_available()`` never blocks: it returns the console bytes available
  now, possibly ``b""`` (only protocol bytes arrived), and raises
  ``ConsoleClosed`` at end of stream.
* ``read(max_bytes, timeout_s)`` waits up to ``timeout_s`` for at least one
  console byte and returns ``b""`` on timeout.
* ``write(data)`` sends console bytes (escaping what the protocol needs).
* ``send_break()`` sends a serial BREAK or raises ``BreakUnsupported``; a
  transport that cannot carry one does not declare ``Ability.BREAK``.
* ``close()`` is idempotent.
"""

from __future__ import annotations

import enum
import selectors
import time
from abc import ABC, abstractmethod

from consolebot.errors import BreakUnsupported


class Ability(enum.Enum):
    BREAK = "break"  # can deliver a serial BREAK to the target
    EXCLUSIVE = "exclusive"  # the open is exclusive (a second opener is refused)
    WRITE = "write"  # can send console data
    POLLABLE = "pollable"  # fileno() is a real descriptor


class Transport(ABC):
    """Base class: subclasses implement the primitives, this class the waiting."""

    scheme: str = ""
    abilities: frozenset[Ability] = frozenset({Ability.WRITE, Ability.POLLABLE})
    # close() never waits (a socket): an event loop may call it inline; else it is run off the loop
    quick_close: bool = False

    def __init__(self) -> None:
        self._closed = True
        self._pending = b""

    # -- primitives -----------------------------------------------------
    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def fileno(self) -> int: ...

    @abstractmethod
    def _read_available(self) -> bytes:
        """Non-blocking: console bytes available now; ``ConsoleClosed`` at EOF."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """One line naming the peer, never a secret."""

    def _send_break(self) -> None:
        raise BreakUnsupported(f"{self.describe()}: this transport cannot send a serial BREAK")

    # -- derived behaviour ------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def has(self, ability: Ability) -> bool:
        return ability in self.abilities

    def send_break(self) -> None:
        """Send a serial BREAK, or raise ``BreakUnsupported`` naming the transport."""
        if Ability.BREAK not in self.abilities:
            raise BreakUnsupported(
                f"{self.describe()}: BREAK cannot travel over this transport; "
                "use telnet, a serial device, rfc2217, IPMI SOL or configure a break sequence"
            )
        self._send_break()

    def read_available(self) -> bytes:
        """Never blocks: the console bytes available now (maybe ``b""``)."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._read_available()

    def read(self, max_bytes: int = 65536, timeout_s: float = 0.0) -> bytes:
        """Wait up to ``timeout_s`` for at least one console byte; return at most
        ``max_bytes`` of them, or ``b""`` on timeout."""
        data = self.read_available()
        if not data and timeout_s > 0:
            end = time.monotonic() + timeout_s
            with selectors.DefaultSelector() as sel:
                sel.register(self.fileno(), selectors.EVENT_READ)
                while not data:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        break
                    if sel.select(remaining):
                        data = self.read_available()
        if len(data) > max_bytes:
            self._pending = data[max_bytes:] + self._pending
            data = data[:max_bytes]
        return data

    def drain_close(self, timeout_s: float = 1.0) -> bytes:
        """Close, returning the console bytes still on their way (so a yielding capture loses none).

        The default reads what is available now; stream transports override it to
        half-close and read until the peer's end of stream.
        """
        chunks = []
        try:
            while data := self.read_available():
                chunks.append(data)
        except Exception:
            pass
        self.close()
        return b"".join(chunks)

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
