"""Redaction of known secrets, for whole texts and for byte streams split anywhere.

Every secret consolebot knows (sent with ``send_secret``, read from the keyring)
is registered with one :class:`Redactor`. Everything that leaves memory (raw and
text transcripts, JSON lines, exception messages, reports) passes through it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK_BYTES = b"***"

# Fragments shorter than this at the edge of a cut-out text are not masked
# (masking every trailing "a" would destroy the text).
_EDGE_MIN = 3


class Redactor:
    """Given secrets, replace each of their occurrences with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: list[bytes] = []
        self._pattern: re.Pattern[bytes] | None = None
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        """Register one secret (its UTF-8 and Latin-1 encodings)."""
        if not secret:
            return
        forms = {secret.encode("utf-8")}
        try:
            forms.add(secret.encode("latin-1"))
        except UnicodeEncodeError:
            pass
        with self._lock:
            for form in forms:
                if form not in self._secrets:
                    self._secrets.append(form)
            self._secrets.sort(key=len, reverse=True)
            self._pattern = re.compile(b"|".join(re.escape(s) for s in self._secrets))

    @property
    def secrets(self) -> tuple[bytes, ...]:
        return tuple(self._secrets)

    @property
    def active(self) -> bool:
        """Is there any secret to redact?"""
        return self._pattern is not None

    @property
    def max_len(self) -> int:
        return max((len(s) for s in self._secrets), default=0)

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def redact_bytes(self, data: bytes, *, edges: bool = False) -> bytes:
        """Return ``data`` with every secret replaced.

        With ``edges``, also mask a fragment of a secret cut off at either end of
        ``data`` (for text cut out of a longer stream, such as an error's tail).
        """
        pattern = self._pattern
        if pattern is None:
            return data
        out = pattern.sub(MASK_BYTES, data)
        if edges:
            out = self._mask_edges(out)
        return out

    def redact_text(self, text: str, *, edges: bool = False) -> str:
        return self.redact_bytes(text.encode("utf-8", "surrogateescape"), edges=edges).decode(
            "utf-8", "surrogateescape"
        )

    def _mask_edges(self, data: bytes) -> bytes:
        head = 0
        tail = 0
        for s in self._secrets:
            for k in range(min(len(s) - 1, len(data)), _EDGE_MIN - 1, -1):
                if k > tail and data.endswith(s[:k]):
                    tail = k
                if k > head and data.startswith(s[-k:]):
                    head = k
        if head + tail >= len(data) and (head or tail):
            return MASK_BYTES
        if tail:
            data = data[: len(data) - tail] + MASK_BYTES
        if head:
            data = MASK_BYTES + data[head:]
        return data

    def holdback(self, data: bytes) -> int:
        """Return how many trailing bytes of ``data`` could start a secret."""
        best = 0
        for s in self._secrets:
            for k in range(min(len(s) - 1, len(data)), best, -1):
                if data.endswith(s[:k]):
                    best = k
                    break
        return best


class StreamRedactor:
    """Given a byte stream in chunks split anywhere, emit it redacted.

    Bytes that could be the start of a secret are held back until the next chunk
    decides; ``flush()`` (at close) emits whatever is held.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if self.redactor._pattern is None:
            if self._held:
                data, self._held = self._held + data, b""
            return data
        buf = self.redactor.redact_bytes(self._held + data)
        keep = self.redactor.holdback(buf)
        if keep:
            self._held = buf[-keep:]
            return buf[:-keep]
        self._held = b""
        return buf

    @property
    def held(self) -> int:
        return len(self._held)

    def flush(self) -> bytes:
        out, self._held = self._held, b""
        return out
