"""The transcript: every byte received, redacted, in three files written as data arrives.

For a console named NAME in folder DIR:

* ``DIR/NAME.raw``: the received bytes exactly, except that each known secret
  is replaced by ``***`` (also when it was split across reads).
* ``DIR/NAME.log``: one line per console line, ``<UTC ISO-8601> <tag> <text>``.
  Tag ``|`` is a complete line; ``<`` a partial line written after
  ``partial_flush_s`` of quiet (a prompt) or once it holds ``LINE_MAX_BYTES``,
  continued on the next line; ``!`` a
  note of consolebot's (a gap, a reconnect). Control bytes in the text are
  written as ``\\xHH`` and a backslash as ``\\\\``, so the text is reversible.
  CR LF, CR CR LF, LF and a bare CR each end a line.
* ``DIR/NAME.jsonl``: one JSON object per line: acts (``tx``, ``break``), notes
  and events, each with ``t`` (UTC ISO-8601) and ``type``.

Files are opened with ``O_APPEND`` and written with ``write(2)`` as lines
complete, so a SIGKILL loses nothing already received. A capture of many
consoles opens its transcripts with ``buffered=True`` instead: each file's
writes are gathered in memory and written in one ``write(2)`` by ``flush()``,
which the capture loop calls every housekeeping round (``HOUSEKEEPING_S``,
0.1 s, longer only while the loop is behind), and which also happens at every
note (a gap, a disconnect, a reconnect), on ``close()`` (the end, SIGINT,
SIGTERM), before a rotation or reopen, and once a file holds
``BUFFER_MAX_BYTES``. The capture's alerts wait for that flush. So a SIGKILL
(or an OOM kill, a power cut) of a capture loses at most what a busy console
sent in its last round, ~0.1 s: bytes the capture had read from the connection
but not yet written, whose lines no alert, note or report had acknowledged
either. A console whose output paused (a prompt) has everything on disk.
Interactive sessions (``consolebot console``, the runbooks) are not buffered.

When ``NAME.raw`` passes ``rotate_bytes``, the three files are renamed
``NAME.raw.1`` ... (older ones shift up to ``.keep``) and new ones are started. ``reopen()`` (on SIGHUP,
for logrotate) reopens the files by name.
"""

from __future__ import annotations

import codecs
import datetime
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consolebot.paths import ensure_local_dir
from consolebot.recognise.events import json_tail
from consolebot.secrets.redact import Redactor, StreamRedactor

if TYPE_CHECKING:
    from consolebot.recognise.events import Event, Hit

_REOPEN_GENERATION = 0
_LINE_END = re.compile(rb"\r++\n?|\n")  # CR LF, CR CR LF, LF, a bare CR (run): one line end each


def _on_sighup(signum: int, frame: object) -> None:
    global _REOPEN_GENERATION
    _REOPEN_GENERATION += 1


def install_sighup_reopen() -> None:
    """Make SIGHUP reopen every transcript's files (for logrotate)."""
    signal.signal(signal.SIGHUP, _on_sighup)


_SECOND: tuple[int, str] = (-1, "")  # the last whole second formatted, for utc_iso
_MILLI: tuple[int, str] = (-1, "")  # the last millisecond formatted (a loop round reads many consoles in one)


def utc_iso(t: float | None = None) -> str:
    """Given a time (default now), return it as UTC ISO-8601 with milliseconds: ``2024-05-01T12:00:00.123Z``."""
    global _SECOND, _MILLI
    us = round((time.time() if t is None else t) * 1_000_000)
    ms = us // 1000
    if ms == _MILLI[0]:
        return _MILLI[1]
    sec, frac = divmod(us, 1_000_000)
    known, text = _SECOND
    if sec != known:
        text = datetime.datetime.fromtimestamp(sec, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND = (sec, text)
    out = f"{text}.{frac // 1000:03d}Z"
    _MILLI = (ms, out)
    return out


_HEADS: dict[bytes, tuple[str, bytes]] = {}  # tag -> (the time text, the log line head made of it and the tag)


def _head(t: float, tag: bytes) -> bytes:
    """``<utc_iso(t)> <tag> `` as bytes, made once per millisecond and tag."""
    iso = utc_iso(t)
    known = _HEADS.get(tag)
    if known is not None and known[0] is iso:
        return known[1]
    head = iso.encode() + b" " + tag + b" "
    _HEADS[tag] = (iso, head)
    return head


_NEEDS_ESCAPE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f-\xff\\\\]")
_ESCAPES = {o: f"\\x{o:02x}" for o in [*range(0, 9), *range(10, 32), 127]}
_ESCAPES[ord("\\")] = "\\\\"
_ESCAPES.update({0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)})  # invalid UTF-8 bytes


# the same escapes for a block of whole lines, in a few C-speed passes over it: CR and LF are kept (they are
# the line ends); the backslash first (the escapes added next hold backslashes), then each control byte that
# occurs (found by deleting every other byte), then invalid UTF-8 when a byte is not ASCII
# the bytes a block's escaping leaves alone but CR and LF (deleted by ``bytes.translate``: what remains is the line
# ends and what needs escaping)
_PLAIN = bytes(o for o in range(128) if o == 9 or (32 <= o < 127 and o != 92))
_CRLFS = [b"\r\n" * n for n in range(64)]
_BYTE_ESCAPES = {bytes([o]): text.encode() for o, text in _ESCAPES.items() if o < 128 and o not in (10, 13, 92)}
_NOT_CONTROL = bytes(o for o in range(256) if bytes([o]) not in _BYTE_ESCAPES)  # deleted: the controls remain


def _hex_invalid_utf8(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return "".join(f"\\x{b:02x}" for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("consolebot-hex", _hex_invalid_utf8)


def escape_block(data: bytes) -> bytes:
    """``escape_text`` of each line of ``data`` with its line ends (CR, LF) kept: the block as written to the log."""
    out = data.replace(b"\\", b"\\\\") if b"\\" in data else data
    controls = out.translate(None, _NOT_CONTROL)
    if controls:
        for one in set(controls):
            b = bytes((one,))
            out = out.replace(b, _BYTE_ESCAPES[b])
    if not out.isascii():
        out = out.decode("utf-8", "consolebot-hex").encode()
    return out


def log_lines_py(region: bytes, head: bytes) -> tuple[bytes, int]:
    """Given complete console lines (each ends with a CR run, with or without an LF after it, or an LF) and a log
    line's head, return each line as the log writes it (the head, the text escaped, LF) and their number.

    ``consolebot._fastpath.log_lines`` does the same in one C pass, when it was built.
    """
    # every line end becomes LF + the next line's head; the last one's head is cut off again
    rest = region.translate(None, _PLAIN)  # one pass: the line ends and the bytes to escape
    n = len(rest) >> 1
    if n < 64 and rest == _CRLFS[n] and region.count(b"\r\n") == n:  # the usual: CR LF ends, nothing to escape
        body = region.replace(b"\r\n", b"\n" + head)
    else:
        if rest.strip(b"\r\n"):
            region = escape_block(region)
        if b"\r" in rest:
            while b"\r\r" in region:  # a run of CRs, with or without an LF after it, is one line end
                region = region.replace(b"\r\r", b"\r")
            region = region.replace(b"\r\n", b"\n")
            if b"\r" in region:
                region = region.replace(b"\r", b"\n")  # a bare CR
        n = region.count(b"\n")
        body = region.replace(b"\n", b"\n" + head)
    return head + body[: len(body) - len(head)], n


try:
    from consolebot._fastpath import log_lines
except ImportError:  # not built (no C compiler at install): the same in Python
    log_lines = log_lines_py


def rx_lines_py(data: bytes, line: bytes, pending_cr: bool, now: float) -> tuple[bytes | None, int, bytes, bool]:
    """Given received bytes, the line left unended before them (it holds no line end), whether the read before
    ended with a CR, and the time: return the log lines ``data`` completes (``line`` first; each headed with the
    time and ``|``; None when it completes none), their number, the line it leaves unended, and whether it ended
    with a CR (an LF or more CRs starting the next read continue that line end: they start no line).

    ``consolebot._fastpath.rx_lines`` does the same in C, when it was built.
    """
    if pending_cr:
        data = data.lstrip(b"\r")
        if not data:
            return None, 0, line, True  # only more CRs: the line end may still go on (with an LF) in the next read
        pending_cr = False
        if data[:1] == b"\n":
            data = data[1:]
    if not data:
        return None, 0, line, False
    cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1  # after the last line end
    if not cut:
        return None, 0, line + data, False
    text, n = log_lines_py(line + data[:cut] if line else data[:cut], _head(now, b"|"))
    return text, n, data[cut:], cut == len(data) and data[-1] == 13


try:
    from consolebot._fastpath import rx_lines
except ImportError:  # not built: the same in Python
    rx_lines = rx_lines_py


def event_line(hit: Hit, start: str) -> str:
    """Given an event as a hit and the start of its JSON line (``{"t": ..., "type": "event", ``), return its JSON
    line with its LF (as ``Transcript.record("event", **ev.to_json())`` writes it, but the time written).
    """
    n, attrs, made = hit
    if made is None:  # the template holds the line's text
        return f'{start}{attrs["_jpre"]}{n:d}, {attrs["_jpost"]}\n'
    if type(made) is str:  # the line's one timestamp (no escaping needed), the text around it as remembered
        return f'{start}{attrs["_jpre"]}{n:d}, "text": "{attrs["_jhead"]}{made}{attrs["_jtail"]}{attrs["json_tail"]}\n'
    ev: Event = made  # type: ignore[assignment]
    when = f'"time": {_JSTR(ev.time)}, ' if ev.time is not None else ""
    post = attrs.get("_jpost")  # the classifier's, made once per remembered line (see ``json_parts``)
    if post is not None:
        return f'{start}{attrs["_jpre"]}{n:d}, {when}{post}\n'
    tail = ev.json_tail or json_tail(ev.fields, ev.rule)
    return (f'{start}"kind": {_JSTR(ev.kind)}, "severity": {_JSTR(ev.severity)}, '
            f'"line": {n:d}, {when}"text": {_JSTR(ev.text)}, {tail}\n')


def event_lines_py(hits: list[Hit], start: str, line: Callable[[Hit, str], str] = event_line) -> bytes:
    """The JSON lines of events given as hits (``event_line`` of each), together.

    ``consolebot._fastpath.event_lines`` does the same in C, with ``line`` for an event that was made.
    """
    return "".join([line(hit, start) for hit in hits]).encode()


try:
    from consolebot._fastpath import event_lines
except ImportError:  # not built: the same in Python
    event_lines = event_lines_py


_EVENT_START: tuple[str, str] = ("", "")  # (utc_iso, the start of an event's JSON line made of it)
_JSON = json.JSONEncoder(default=str).encode  # what json.dumps(obj, default=str) gives, without a new encoder each time
_JSTR = json.encoder.encode_basestring_ascii


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


LINE_MAX_BYTES = 64 * 1024  # an unended line longer than this is written as a partial line (``<``), continued after
BUFFER_MAX_BYTES = 16 * 1024  # a buffered file holding more than this is written at once (bounds memory)


class _File:
    def __init__(self, path: Path, buffered: bool = False) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.buffered = buffered
        self._held: list[bytes] = []  # buffered writes not yet written, in order
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if self.buffered:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > BUFFER_MAX_BYTES:
                self.flush()
            return
        self._write(data)

    def flush(self) -> None:
        """Write what is held, in one ``write(2)``."""
        held = self._held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            self._held = []
            self._held_bytes = 0
            n = os.write(self.fd, data)  # a regular file takes it all at once (a full disk raises)
            if n < len(data):
                self._write(data[n:])

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.fd >= 0:
            self.flush()
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
        buffered: bool = False,
    ) -> None:
        self.folder = ensure_local_dir(Path(folder))
        self.name = name
        self.redactor = redactor
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self.partial_flush_s = partial_flush_s
        self.buffered = buffered  # see the module's docstring: what a SIGKILL can lose then
        self._stream = StreamRedactor(redactor)
        self._line = b""  # the line not yet ended (it holds no line end)
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
        self._raw = _File(self.raw_path, self.buffered)
        self._log = _File(self.log_path, self.buffered)
        self._jsonl = _File(self.jsonl_path, self.buffered)
        self._raw_size = self._raw.size()  # kept up to date here: no fstat per read

    def _close_files(self) -> None:
        for f in (self._raw, self._log, self._jsonl):
            f.close()  # writes what it holds first

    def flush(self) -> None:
        """Write what the buffered files hold (nothing to do unbuffered)."""
        if self.buffered:
            self._raw.flush()
            self._log.flush()
            self._jsonl.flush()

    def reopen(self) -> None:
        """Close and reopen the files by name (after logrotate moved them)."""
        self._close_files()
        self._open()

    def _check_reopen(self) -> None:
        if self._gen != _REOPEN_GENERATION:
            self._gen = _REOPEN_GENERATION
            self.reopen()

    def _rotate_if_needed(self) -> None:
        self.flush()
        self._raw_size = self._raw.size()
        if self.rotate_bytes <= 0 or self._raw_size < self.rotate_bytes:
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
        if self._gen != _REOPEN_GENERATION:
            self._check_reopen()
        now = time.time() if now is None else now
        self._last_rx = time.monotonic()
        self._last_rx_wall = now
        clean = self._stream.feed(data)
        if clean:
            self._raw.write(clean)
            self.rx_bytes += len(clean)
            self._raw_size += len(clean)
            self._lines(clean, now)
            if self.rotate_bytes > 0 and self._raw_size >= self.rotate_bytes:
                self._rotate_if_needed()
        return clean

    def _lines(self, data: bytes, now: float) -> None:
        """Write the lines ``data`` completes: one ``write(2)``, built without a Python step per line."""
        text, n, self._line, self._pending_cr = rx_lines(data, self._line, self._pending_cr, now)
        if text is not None:
            self._log.write(text)
            self.lines += n
            self._partial_written = False
        if len(self._line) > LINE_MAX_BYTES:  # garbage that never ends a line: written in parts, memory stays bounded
            self._log.write(utc_iso(now).encode() + b" < " + escape_text(self._line).encode() + b"\n")
            self._line = b""

    def tick(self) -> None:
        """Call now and then: writes a partial line after ``partial_flush_s`` of quiet."""
        if self._line and not self._partial_written and time.monotonic() - self._last_rx >= self.partial_flush_s:
            self._log.write(utc_iso(self._last_rx_wall).encode() + b" < " + escape_text(self._line).encode() + b"\n")
            self._line = b""
            self._partial_written = True

    # -- acts, notes, events ---------------------------------------------------------------
    def record(self, record_type: str, /, flush_now: bool = True, **fields: Any) -> None:
        """Write one JSON line (redacted); a buffered transcript writes what it holds at once unless not ``flush_now``."""
        self._check_reopen()
        obj = {"t": utc_iso(), "type": record_type, **fields}
        self._jsonl.write(self.redactor.redact_text(_JSON(obj)).encode() + b"\n")
        if self.buffered and flush_now:
            self.flush()  # acts and notes (gaps, reconnects) are rare and worth having on disk at once

    def record_events(self, hits: list[Hit], now: float | None = None) -> None:
        """Write one JSON line per event (as ``record("event", **ev.to_json())`` would), in one ``write(2)``, stamped
        ``now`` (default: the time now; a capture gives the time its read was recorded with ``rx``).

        The events come as hits (``Classifier.feed_hits``, ``events.as_hits``); an unmade one is written from the
        JSON its remembered line's template holds.
        """
        if self._gen != _REOPEN_GENERATION:
            self._check_reopen()
        global _EVENT_START
        iso = utc_iso(now)
        if _EVENT_START[0] is not iso:
            _EVENT_START = (iso, f'{{"t": {_JSTR(iso)}, "type": "event", ')
        start = _EVENT_START[1]
        text = event_lines(hits, start, event_line)
        if text:
            self._jsonl.write(self.redactor.redact_bytes(text) if self.redactor.active else text)

    def tx(self, data: bytes) -> None:
        self.record("tx", text=data.decode("utf-8", "backslashreplace"), bytes=len(data))

    def tx_secret(self, label: str) -> None:
        self.record("tx", secret=label, text="***")

    def note(self, text: str, /, flush_now: bool = True, **fields: Any) -> None:
        """A note of consolebot's (gap, reconnect): in the text log and the JSON lines (``flush_now``: see ``record``)."""
        clean = self.redactor.redact_text(text)
        self._log.write(utc_iso().encode() + b" ! " + escape_text(clean.encode()).encode() + b"\n")
        self.record("note", flush_now, text=clean, **fields)

    def close(self) -> None:
        tail = self._stream.flush()
        if tail:
            self._raw.write(tail)
            self._line += tail
        if self._line:
            self._log.write(utc_iso(self._last_rx_wall).encode() + b" < " + escape_text(self._line).encode() + b"\n")
            self._line = b""
        self._close_files()

    def __repr__(self) -> str:
        return f"Transcript({self.folder}/{self.name}, {self.rx_bytes} bytes)"
