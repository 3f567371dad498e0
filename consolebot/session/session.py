"""The session: expect and send over any transport, with a faithful redacted transcript.

* ``expect()`` searches a bounded window (pexpect's unbounded default is
  quadratic on long boots) and returns an immutable :class:`ExpectResult`.
* ``send_secret()`` registers the secret with the redactor before a byte is
  sent, records only its label, and is the only place a secret is revealed.
* Death patterns (a kernel panic by default) end any wait at once.
* ``poke()`` sends Enter up to N times until a prompt answers (a fresh SOL
  session often loses its first burst).
* Every byte received goes to the transcript (redacted) and to subscribers
  (the live recognisers), in order, even while nobody is expecting.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from consolebot.errors import ConsoleClosed, DeathPattern, PromptTimeout
from consolebot.secrets.redact import Redactor, StreamRedactor
from consolebot.secrets.secret import Secret
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Transport

Pattern = str | bytes | re.Pattern[bytes]

PANIC_PATTERNS: tuple[Pattern, ...] = (
    b"Kernel panic - not syncing",
    b"---[ end Kernel panic",
)


@dataclass(frozen=True)
class ExpectResult:
    """Which pattern matched, the match text and what came before it (both redacted)."""

    index: int
    pattern: str
    match: bytes
    before: bytes
    groups: tuple[bytes | None, ...] = ()

    def text(self) -> str:
        return self.match.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Compiled:
    source: str
    regex: re.Pattern[bytes] | None
    literal: bytes | None

    @property
    def width(self) -> int:
        return len(self.literal) if self.literal is not None else 0


def compile_pattern(p: Pattern) -> _Compiled:
    """Given a literal (str/bytes) or a compiled bytes regex, return a search object."""
    if isinstance(p, re.Pattern):
        return _Compiled(p.pattern.decode("utf-8", "replace"), p, None)
    lit = p.encode("utf-8") if isinstance(p, str) else p
    if not lit:
        raise ValueError("an empty pattern matches everything")
    return _Compiled(lit.decode("utf-8", "replace"), None, lit)


class Session:
    """Given an open transport, expect and send over it with a transcript."""

    def __init__(
        self,
        transport: Transport,
        transcript: Transcript | None = None,
        redactor: Redactor | None = None,
        search_window_bytes: int = 8192,
        max_buffer_bytes: int = 1 << 20,
        death_patterns: Sequence[Pattern] = PANIC_PATTERNS,
        read_only: bool = False,
    ) -> None:
        self.transport = transport
        self.transcript = transcript
        self.redactor = redactor or (transcript.redactor if transcript else Redactor())
        self.search_window_bytes = search_window_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.read_only = read_only
        self._buf = bytearray()
        self._searched = 0  # buffer offset before which every pattern was already tried
        self._death: list[_Compiled] = [compile_pattern(p) for p in death_patterns]
        self._subscribers: list[Callable[[bytes], None]] = []
        self._sub_stream = StreamRedactor(self.redactor)
        self.rx_total = 0

    # -- plumbing ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[bytes], None]) -> None:
        """Call ``callback`` with every received chunk (redacted), in order."""
        self._subscribers.append(callback)

    def _received(self, data: bytes) -> None:
        self.rx_total += len(data)
        if self.transcript is not None:
            self.transcript.rx(data)
        if self._subscribers:
            clean = self._sub_stream.feed(data)
            if clean:
                for cb in self._subscribers:
                    cb(clean)
        self._buf += data
        if len(self._buf) > self.max_buffer_bytes:
            drop = len(self._buf) - self.max_buffer_bytes
            del self._buf[:drop]
            self._searched = max(0, self._searched - drop)

    def pump(self, timeout_s: float = 0.0) -> bytes:
        """Read what arrives within ``timeout_s`` (at least one chunk if any); return it."""
        try:
            data = self.transport.read(65536, timeout_s)
        except ConsoleClosed:
            if self.transcript is not None:
                self.transcript.tick()
            raise
        if data:
            self._received(data)
        if self.transcript is not None:
            self.transcript.tick()
        return data

    # -- expect ----------------------------------------------------------------------------
    def _search(self, compiled: Sequence[_Compiled], start: int) -> tuple[int, re.Match[bytes] | None, int, int]:
        best: tuple[int, re.Match[bytes] | None, int, int] = (-1, None, -1, -1)
        for i, c in enumerate(compiled):
            if c.literal is not None:
                pos = self._buf.find(c.literal, max(0, start - len(c.literal) + 1))
                if pos >= 0 and (best[0] < 0 or pos < best[2]):
                    best = (i, None, pos, pos + len(c.literal))
            else:
                assert c.regex is not None
                m = c.regex.search(self._buf, max(0, start - self.search_window_bytes))
                if m and (best[0] < 0 or m.start() < best[2]):
                    best = (i, m, m.start(), m.end())
        return best

    def _tail(self, n: int = 400) -> str:
        tail = bytes(self._buf[-n:])
        return self.redactor.redact_bytes(tail, edges=True).decode("utf-8", "replace")

    def expect(self, patterns: Sequence[Pattern] | Pattern, timeout_s: float) -> ExpectResult:
        """Wait up to ``timeout_s`` for the first of ``patterns``.

        Return an :class:`ExpectResult` and consume the buffer up to the match.
        Raise ``PromptTimeout`` (with a redacted tail) on timeout, ``DeathPattern``
        when a death pattern shows first, ``ConsoleClosed`` at end of stream.
        """
        if isinstance(patterns, (str, bytes, re.Pattern)):
            patterns = [patterns]
        compiled = [compile_pattern(p) for p in patterns]
        end = time.monotonic() + timeout_s
        start = self._searched
        while True:
            d = self._search(self._death, start)
            idx, m, s, e = self._search(compiled, start)
            if d[0] >= 0 and (idx < 0 or d[2] <= s):
                line_end = self._buf.find(b"\n", d[3])
                text = bytes(self._buf[d[2] : line_end if line_end >= 0 else d[3]])
                clean = self.redactor.redact_bytes(text, edges=True).decode("utf-8", "replace").strip()
                del self._buf[: d[3]]
                self._searched = 0
                raise DeathPattern(f"{self.transport.describe()}: the console shows {clean!r}")
            if idx >= 0:
                before = bytes(self._buf[:s])
                match = bytes(self._buf[s:e])
                groups = m.groups() if m is not None else ()
                del self._buf[:e]
                self._searched = 0
                red = self.redactor
                return ExpectResult(
                    index=idx,
                    pattern=compiled[idx].source,
                    match=red.redact_bytes(match),
                    before=red.redact_bytes(before, edges=True),
                    groups=tuple(None if g is None else red.redact_bytes(g) for g in groups),
                )
            self._searched = len(self._buf)
            start = self._searched
            remaining = end - time.monotonic()
            if remaining <= 0:
                wanted = ", ".join(repr(c.source) for c in compiled)
                raise PromptTimeout(
                    f"{self.transport.describe()}: none of {wanted} within {timeout_s:g} s; "
                    f"last output: {self._tail(160)!r}"
                )
            self.pump(min(remaining, 0.25))

    def read_for(self, duration_s: float) -> bytes:
        """Keep reading for ``duration_s``; return what arrived (raw, for tests)."""
        end = time.monotonic() + duration_s
        chunks = []
        while (remaining := end - time.monotonic()) > 0:
            chunks.append(self.pump(min(remaining, 0.25)))
        return b"".join(chunks)

    def settle(self, quiet_s: float, timeout_s: float) -> bool:
        """Read until ``quiet_s`` passes with no byte; return False if ``timeout_s`` ran out first."""
        end = time.monotonic() + timeout_s
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last >= quiet_s:
                return True
            if now >= end:
                return False
            if self.pump(min(quiet_s - (now - last), end - now)):
                last = time.monotonic()

    def clear_buffer(self) -> None:
        """Forget what was read (the transcript keeps it)."""
        self._buf.clear()
        self._searched = 0

    @contextlib.contextmanager
    def abort_on(self, *patterns: Pattern) -> Iterator[None]:
        """Within the block, ``patterns`` end any wait with ``DeathPattern``."""
        added = [compile_pattern(p) for p in patterns]
        self._death.extend(added)
        try:
            yield
        finally:
            for c in added:
                self._death.remove(c)

    # -- send -------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError("this session is read-only (capture never sends console data)")

    def send(self, data: str | bytes) -> None:
        """Send text or bytes as they are."""
        self._check_writable()
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if self.transcript is not None:
            self.transcript.tx(self.redactor.redact_bytes(raw))
        self.transport.write(raw)

    def sendline(self, line: str = "") -> None:
        """Send ``line`` and Enter (CR, what a terminal sends)."""
        self.send(line + "\r")

    def send_secret(self, secret: Secret, enter: bool = True) -> None:
        """Send a secret: registered with the redactor first, recorded only by its label."""
        self._check_writable()
        value = secret.reveal()
        self.redactor.add(value)
        if self.transcript is not None:
            self.transcript.tx_secret(secret.label)
        self.transport.write(value.encode("utf-8") + (b"\r" if enter else b""))

    def send_break(self) -> None:
        """Send a serial BREAK (``BreakUnsupported`` where the transport cannot)."""
        self._check_writable()
        self.transport.send_break()
        if self.transcript is not None:
            self.transcript.record("break", transport=self.transport.describe())

    def poke(self, prompts: Sequence[Pattern], tries: int = 3, interval_s: float = 1.0) -> ExpectResult:
        """Send Enter up to ``tries`` times, ``interval_s`` apart, until one of ``prompts`` shows."""
        last: PromptTimeout | None = None
        for _ in range(max(1, tries)):
            self.sendline()
            try:
                return self.expect(prompts, interval_s)
            except PromptTimeout as exc:
                last = exc
        assert last is not None
        raise PromptTimeout(f"no prompt after {tries} pokes {interval_s:g} s apart; {last}")

    def note(self, text: str, **fields: Any) -> None:
        if self.transcript is not None:
            self.transcript.note(text, **fields)

    def close(self) -> None:
        try:
            self.transport.close()
        finally:
            if self.transcript is not None:
                self.transcript.close()

    def __repr__(self) -> str:
        return f"<Session {self.transport.describe()} rx={self.rx_total}>"

