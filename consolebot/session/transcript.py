"""The transcript: every byte received, redacted, in three files written as data arrives.

For a console named NAME in folder DIR:

* ``DIR/NAME.raw``: the received bytes exactly, except that each known secret
  is replaced by ``***`` (also when it was split across reads).
* ``DIR/NAME.log``: one line per console line, ``<UTC ISO-8601> <tag> <text>``.
  Tag ``|`` is a complete line; ``<`` a partial line written after
  ``partial_flush_s`` of quiet (a prompt), continued on the next line; ``!`` a
  note of consolebot's (a gap, a reconnect). Control bytes in the text are
  written as ``\\xHH`` and a backslash as ``\\\\``, so the text is reversible.
  CR LF, CR CR LF, LF and a bare CR each end a line.
* ``DIR/NAME.jsonl``: one JSON object per line: acts (``tx``, ``break``), notes
  and events, each with ``t`` (UTC ISO-8601) and ``type``.

Files are opened with ``O_APPEND`` and written with ``write(2)`` as lines
complete, so a SIGKILL loses nothing already received. When ``NAME.raw``
passes ``rotate_bytes``, the three files are renamed ``NAME.raw.1`` ... (older
ones shift up to ``.keep``) and new ones are started. ``reopen()`` (on SIGHUP,
for logrotate) reopens the files by name.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from consolebot.paths import ensure_local_dir
from consolebot.secrets.redact import Redactor, StreamRedactor

_REOPEN_GENERATION = 0
_LINE_END = re.compile(rb"\r++\n?|\n")  # CR LF, CR CR LF, LF, a bare CR (run): one line end each


def _on_sighup(signum: int, frame: object) -> None:
    global _REOPEN_GENERATION
    _REOPEN_GENERATION += 1


def install_sighup_reopen() -> None:
    """Make SIGHUP reopen every transcript's files (for logrotate)."""
    signal.signal(signal.SIGHUP, _on_sighup)


def utc_iso(t: float | None = None) -> str:
    dt = datetime.datetime.fromtimestamp(time.time() if t is None else t, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_NEEDS_ESCAPE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f-\xff\\\\]")
_ESCAPES = {o: f"\\x{o:02x}" for o in [*range(0, 9), *range(10, 32), 127]}
_ESCAPES[ord("\\")] = "\\\\"
_ESCAPES.update({0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)})  # invalid UTF-8 bytes


def escape_text(data: bytes) -> str:
    """Given a line's bytes (no line end), return printable text that ``unescape_text`` reverses."""
    if not _NEEDS_ESCAPE.search(data):
        return data.decode("ascii")
    return data.decode("utf-8", "surrogateescape").translate(_ESCAPES)


def unescape_text(text: str) -> bytes:
    """Given text written by ``escape_text``, return the original bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            if text[i + 1] == "\\":
                out.append(92)
                i += 2
                continue
            if text[i + 1] == "x" and i + 3 < len(text) + 1:
                try:
                    out.append(int(text[i + 2 : i + 4], 16))
                    i += 4
                    continue
                except ValueError:
                    pass
        out += ch.encode("utf-8")
        i += 1
    return bytes(out)


class _File:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Transcript:
    """Given a folder, a name and the redactor, record a console."""

    def __init__(
        self,
        folder: Path,
        name: str,
        redactor: Redactor,
        rotate_bytes: int = 64 * 1024 * 1024,
        keep: int = 5,
        partial_flush_s: float = 0.5,
    ) -> None:
        self.folder = ensure_local_dir(Path(folder))
        self.name = name
        self.redactor = redactor
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self.partial_flush_s = partial_flush_s
        self._stream = StreamRedactor(redactor)
        self._line = bytearray()
        self._pending_cr = False
        self._partial_written = False
        self._last_rx = 0.0
        self._last_rx_wall = time.time()
        self._gen = _REOPEN_GENERATION
        self.lines = 0  # complete lines so far (raw line numbering, bare CR counts)
        self.rx_bytes = 0
        self._open()

    @property
    def raw_path(self) -> Path:
        return self.folder / f"{self.name}.raw"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def jsonl_path(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    def paths(self) -> dict[str, str]:
        return {"raw": str(self.raw_path), "log": str(self.log_path), "jsonl": str(self.jsonl_path)}

    def _open(self) -> None:
        self._raw = _File(self.raw_path)
        self._log = _File(self.log_path)
        self._jsonl = _File(self.jsonl_path)

    def _close_files(self) -> None:
        for f in (self._raw, self._log, self._jsonl):
            f.close()

    def reopen(self) -> None:
        """Close and reopen the files by name (after logrotate moved them)."""
        self._close_files()
        self._open()

    def _check_reopen(self) -> None:
        if self._gen != _REOPEN_GENERATION:
            self._gen = _REOPEN_GENERATION
            self.reopen()

    def _rotate_if_needed(self) -> None:
        if self.rotate_bytes <= 0 or self._raw.size() < self.rotate_bytes:
            return
        self._close_files()
        for path in (self.raw_path, self.log_path, self.jsonl_path):
            for i in range(self.keep - 1, 0, -1):
                older = path.with_name(f"{path.name}.{i}")
                if older.exists():
                    os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
            if path.exists():
                os.replace(path, path.with_name(f"{path.name}.1"))
        self._open()

    # -- received bytes ----------------------------------------------------------------
    def rx(self, data: bytes, now: float | None = None) -> bytes:
        """Record received bytes; return them as written (redacted)."""
        self._check_reopen()
        now = time.time() if now is None else now
        self._last_rx = time.monotonic()
        self._last_rx_wall = now
        clean = self._stream.feed(data)
        if clean:
            self._raw.write(clean)
            self.rx_bytes += len(clean)
            self._lines(clean, now)
            self._rotate_if_needed()
        return clean

    def _lines(self, data: bytes, now: float) -> None:
        """Write the lines ``data`` completes (one ``write(2)`` per call)."""
        if self._pending_cr:
            # the previous chunk ended with CR: an LF (or more CRs) continuing that line end is not a new line
            self._pending_cr = False
            data = data.lstrip(b"\r")
            if data[:1] == b"\n":
                data = data[1:]
        if not data:
            return
        parts = _LINE_END.split(data)
        tail = parts.pop()  # the unfinished line ("" when data ended with a line end)
        if data.endswith(b"\r"):
            self._pending_cr = True
        if parts:
            stamp = utc_iso(now).encode()
            first = bytes(self._line) + parts[0]
            self._line.clear()
            out = [self._format(stamp, b"|", first)]
            out += [self._format(stamp, b"|", p) for p in parts[1:]]
            self._log.write(b"".join(out))
        self._line += tail

    def _format(self, stamp: bytes, tag: bytes, line: bytes) -> bytes:
        self.lines += 1
        if self._partial_written:
            self._partial_written = False
        return stamp + b" " + tag + b" " + escape_text(line).encode() + b"\n"

    def tick(self) -> None:
        """Call now and then: writes a partial line after ``partial_flush_s`` of quiet."""
        if self._line and not self._partial_written and time.monotonic() - self._last_rx >= self.partial_flush_s:
            self._log.write(utc_iso(self._last_rx_wall).encode() + b" < " + escape_text(bytes(self._line)).encode() + b"\n")
            self._line.clear()
            self._partial_written = True

    # -- acts, notes, events ---------------------------------------------------------------
    def record(self, record_type: str, /, **fields: Any) -> None:
        """Write one JSON line (redacted)."""
        self._check_reopen()
        obj = {"t": utc_iso(), "type": record_type, **fields}
        line = json.dumps(obj, default=str)
        self._jsonl.write(self.redactor.redact_text(line).encode() + b"\n")

    def tx(self, data: bytes) -> None:
        self.record("tx", text=data.decode("utf-8", "backslashreplace"), bytes=len(data))

    def tx_secret(self, label: str) -> None:
        self.record("tx", secret=label, text="***")

    def note(self, text: str, **fields: Any) -> None:
        """A note of consolebot's (gap, reconnect): in the text log and the JSON lines."""
        clean = self.redactor.redact_text(text)
        self._log.write(utc_iso().encode() + b" ! " + escape_text(clean.encode()).encode() + b"\n")
        self.record("note", text=clean, **fields)

    def close(self) -> None:
        tail = self._stream.flush()
        if tail:
            self._raw.write(tail)
            self._line += tail
        if self._line:
            self._log.write(utc_iso(self._last_rx_wall).encode() + b" < " + escape_text(bytes(self._line)).encode() + b"\n")
            self._line.clear()
        self._close_files()

    def __repr__(self) -> str:
        return f"Transcript({self.folder}/{self.name}, {self.rx_bytes} bytes)"
