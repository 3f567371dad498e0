"""Read a console transcript (raw bytes, or consolebot's own text log) and classify it.

consolebot's text log is recognised by its first line (``<UTC ISO-8601> <tag> <text>``);
its timestamps are then reused as event times and its lines rebuilt exactly
(``|`` a complete line, ``<`` a partial line continued on the next one, ``!``
consolebot's own notes, which are skipped).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from consolebot.recognise.classifier import Classifier
from consolebot.recognise.events import Event
from consolebot.recognise.rules import Rule
from consolebot.recognise.timeline import Timeline
from consolebot.session.transcript import unescape_text

_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ([|<!]) ?(.*)$")
READ_BYTES = 1 << 20


@dataclass
class Source:
    """Chunks of console bytes, each with the time it was printed where known."""

    stream: BinaryIO
    text_log: bool
    head: bytes

    def chunks(self, follow: bool = False, poll_s: float = 0.25,
               on_quiet: Callable[[float], None] | None = None) -> Iterator[tuple[bytes, str | None]]:
        carry = b""
        data = self.head
        quiet_since = time.monotonic()
        while True:
            if not data:
                data = self.stream.read(READ_BYTES)
            if not data:
                if not follow:
                    break
                if on_quiet is not None:
                    on_quiet(time.monotonic() - quiet_since)
                time.sleep(poll_s)  # a regular file gives no readiness event; tail -f polls the same way
                continue
            quiet_since = time.monotonic()
            if not self.text_log:
                yield data, None
                data = b""
                continue
            buf = carry + data
            data = b""
            lines = buf.split(b"\n")
            carry = lines.pop()
            for line in lines:
                m = _STAMP.match(line)
                if m is None:
                    continue
                stamp, tag, text = m.group(1).decode(), m.group(2), m.group(3)
                if tag == b"!":
                    continue
                raw = unescape_text(text.decode("utf-8", "replace"))
                yield (raw + b"\n" if tag == b"|" else raw), stamp
        if carry and self.text_log:
            m = _STAMP.match(carry)
            if m is not None and m.group(2) != b"!":
                yield unescape_text(m.group(3).decode("utf-8", "replace")), m.group(1).decode()


def open_source(stream: BinaryIO) -> Source:
    head = stream.read(4096)
    first = head.split(b"\n", 1)[0]
    return Source(stream, bool(_STAMP.match(first)), head)


class Watcher:
    """Given rules, classify chunks and keep the timeline; events carry their capture times."""

    def __init__(self, rules: list[Rule] | None = None, severities: dict[str, str] | None = None) -> None:
        self._now: str | None = None
        self.classifier = Classifier(rules, severities, clock=lambda: self._now)
        self.timeline = Timeline()
        self.count = 0
        self.bytes = 0

    def feed(self, data: bytes, when: str | None) -> list[tuple[Event, str | None, str]]:
        self._now = when
        self.bytes += len(data)
        return self._take(self.classifier.feed(data))

    def idle(self) -> list[tuple[Event, str | None, str]]:
        return self._take(self.classifier.idle())

    def close(self) -> list[tuple[Event, str | None, str]]:
        return self._take(self.classifier.idle() + self.classifier.close())

    def silent(self, seconds: float) -> list[tuple[Event, str | None, str]]:
        ev = Event("console.silent", "warning", self.classifier.line, "", {"seconds": f"{seconds:.0f}"}, self._now,
                   "watch.silent")
        return self._take([ev])

    def _take(self, events: list[Event]) -> list[tuple[Event, str | None, str]]:
        """Feed the timeline; return (event, the phase it changed to or None, the phase after it)."""
        out = []
        for e in events:
            self.count += 1
            changed = self.timeline.feed(e)
            out.append((e, changed, self.timeline.phase))
        return out
