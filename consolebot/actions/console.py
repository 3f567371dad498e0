"""A console as actions see it: a session with a live recogniser and a record of acts.

Every byte the session receives is classified as it arrives; ``wait_for``
awaits events (never a fixed sleep), and every act lands in the transcript's
JSON lines with its evidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from consolebot.errors import PromptTimeout
from consolebot.recognise.classifier import Classifier
from consolebot.recognise.events import Event
from consolebot.recognise.timeline import Timeline
from consolebot.session.session import Session

QUIET_S = 0.3  # this long without a byte: an unfinished line (a prompt) is classified


class Console:
    """Given a session (and optionally a classifier), keep the events it sees."""

    def __init__(self, session: Session, classifier: Classifier | None = None, name: str = "") -> None:
        self.session = session
        self.name = name
        self.classifier = classifier or Classifier()
        self.timeline = Timeline()
        self.events: list[Event] = []
        self.acts: list[dict[str, Any]] = []
        self._last_rx = time.monotonic()
        self._idle_done = True
        session.subscribe(self._on_data)

    def _on_data(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        self._idle_done = False
        self._take(self.classifier.feed(data))

    def _take(self, events: list[Event]) -> None:
        for ev in events:
            self.events.append(ev)
            self.timeline.feed(ev)
            if self.session.transcript is not None:
                self.session.transcript.record("event", **ev.to_json())

    def idle(self) -> None:
        if not self._idle_done:
            self._idle_done = True
            self._take(self.classifier.idle())

    def mark(self) -> int:
        """A position in the event list: ``wait_for(since=mark)`` sees only later events."""
        return len(self.events)

    def pump(self, timeout_s: float) -> bytes:
        data = self.session.pump(timeout_s)
        if not data and time.monotonic() - self._last_rx >= QUIET_S:
            self.idle()
        return data

    def find(self, kinds: Iterable[str], since: int = 0, predicate: Callable[[Event], bool] | None = None) -> Event | None:
        wanted = set(kinds)
        for ev in self.events[since:]:
            if ev.kind in wanted and (predicate is None or predicate(ev)):
                return ev
        return None

    def wait_for(
        self,
        kinds: Iterable[str],
        timeout_s: float,
        since: int | None = None,
        predicate: Callable[[Event], bool] | None = None,
    ) -> Event:
        """Wait up to ``timeout_s`` for an event of ``kinds`` after ``since``; raise ``PromptTimeout``."""
        kinds = list(kinds)
        start = self.mark() if since is None else since
        end = time.monotonic() + timeout_s
        while True:
            ev = self.find(kinds, start, predicate)
            if ev is not None:
                return ev
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise PromptTimeout(f"{self.name or self.session.transport.describe()}: no {'/'.join(kinds)} "
                                    f"within {timeout_s:g} s")
            self.pump(min(remaining, 0.1))

    def quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Read until ``quiet_s`` without a byte (classifying as it goes); False if ``timeout_s`` ran out."""
        end = time.monotonic() + timeout_s
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last >= quiet_s:
                self.idle()
                return True
            if now >= end:
                return False
            if self.pump(min(quiet_s - (now - last), end - now, 0.1)):
                last = time.monotonic()

    def act(self, act_name: str, /, **fields: Any) -> dict[str, Any]:
        """Record an act and its evidence in the transcript's JSON lines; return the record."""
        rec = {"act": act_name, **fields}
        self.acts.append(rec)
        if self.session.transcript is not None:
            self.session.transcript.record("act", **rec)
        return rec

    def note(self, text: str) -> None:
        self.session.note(text)
