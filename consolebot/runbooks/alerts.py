"""Alerts from capture: events of a chosen severity or worse, to stderr and/or a command hook, as they happen.

The hook is started without waiting (the capture loop never blocks on it), with the event in its
environment: CONSOLEBOT_HOST, CONSOLEBOT_KIND, CONSOLEBOT_SEVERITY, CONSOLEBOT_LINE, CONSOLEBOT_TEXT
(redacted), CONSOLEBOT_TIME. Hooks still running are reaped as they finish; at most ``max_running``
run at once (further alerts still go to stderr, and the skipped hook runs are counted).

Alerts are handed to one thread through a bounded queue: a stderr nobody reads (a full pipe) or a
slow hook can never stall the capture loop; when the queue is full, alerts are dropped and counted.
A capture loop queues each console's alerts as a list (``many``) and wakes the thread once per
round (``kick``): the thread then writes whatever has queued up in one write, instead of taking
the interpreter lock from the loop for every alert (a thousand consoles booting at once raise
thousands of alerts a second).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections import deque
from typing import TextIO

from consolebot.recognise.events import SEVERITIES, SEVERITY_RANK, Event


class Alerter:
    def __init__(self, min_severity: str = "warning", command: str | None = None, stream: TextIO | None = None,
                 max_running: int = 16) -> None:
        self.min_rank = SEVERITY_RANK[min_severity]
        # the severities alerted on, for a caller's one set lookup per event (None: every event, even an
        # unknown severity, which ranks as info)
        self.severities: frozenset[str] | None = (
            None if self.min_rank <= 0 else frozenset(s for s in SEVERITIES if SEVERITY_RANK[s] >= self.min_rank))
        self.argv = shlex.split(command) if command else None
        self.stream = stream if stream is not None else sys.stderr
        self.max_running = max_running
        self.running: list[subprocess.Popen[bytes]] = []
        self.sent = 0
        self.skipped = 0
        self.dropped = 0
        self.max_queued = 20_000  # events: a round of a thousand consoles booting at once raises about a thousand
        self._queue: deque[tuple[str, list[Event]]] = deque()  # append and popleft are atomic
        self._put = 0  # events queued (counted by the loop's thread) ...
        self._taken = 0  # ... and taken (by the alert thread): each counter has one writer
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._worker, name="consolebot-alerts", daemon=True)
        self._thread.start()

    def __call__(self, host: str, ev: Event) -> None:
        """Queue an alert for ``ev`` if it is severe enough, and wake the thread; never blocks."""
        self.many(host, [ev])
        self.kick()

    def many(self, host: str, events: list[Event]) -> None:
        """Queue alerts for those of ``events`` severe enough, without waking the thread (``kick`` does)."""
        rank, least = SEVERITY_RANK, self.min_rank
        hot = [ev for ev in events if rank.get(ev.severity, 0) >= least] if least > 0 else events
        if not hot:
            return
        room = self.max_queued - (self._put - self._taken)
        if room < len(hot):
            self.dropped += len(hot) - max(room, 0)
            hot = hot[: max(room, 0)]
            if not hot:
                return
        self._put += len(hot)
        self._queue.append((host, hot))

    def kick(self) -> None:
        """Let the thread deliver what is queued: a capture loop calls it once per round, after ``many``."""
        if self._queue and not self._wake.is_set():
            self._wake.set()

    def _worker(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            batch: list[tuple[str, Event]] = []
            while self._queue:
                host, events = self._queue.popleft()
                self._taken += len(events)
                batch.extend((host, ev) for ev in events)
            if batch:
                try:
                    self._deliver(batch)
                except Exception:  # an alert must never take the capture down
                    self.dropped += len(batch)
            if self._closing and not self._queue:
                return

    def _deliver(self, batch: list[tuple[str, Event]]) -> None:
        if self.argv is not None:
            for host, ev in batch:  # one at a time, each line before its hook starts (as they happened)
                self.sent += 1
                self.stream.write(self._line(host, ev))
                self.stream.flush()
                self._hook(host, ev)
            return
        self.sent += len(batch)
        self.stream.write("".join(self._line(host, ev) for host, ev in batch))
        self.stream.flush()

    @staticmethod
    def _line(host: str, ev: Event) -> str:
        return f"consolebot: alert: {host} {ev.severity} {ev.kind} line {ev.line}: {ev.text[:200]}\n"

    def _hook(self, host: str, ev: Event) -> None:
        assert self.argv is not None
        self.reap()
        if len(self.running) >= self.max_running:
            self.skipped += 1
            return
        env = dict(os.environ, CONSOLEBOT_HOST=host, CONSOLEBOT_KIND=ev.kind, CONSOLEBOT_SEVERITY=ev.severity,
                   CONSOLEBOT_LINE=str(ev.line), CONSOLEBOT_TEXT=ev.text[:1000], CONSOLEBOT_TIME=ev.time or "")
        try:
            self.running.append(subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except OSError as exc:
            self.stream.write(f"consolebot: warning: alert command failed to start: {exc.strerror}\n")

    def reap(self) -> None:
        self.running = [p for p in self.running if p.poll() is None]

    def close(self, timeout_s: float = 5.0) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        for p in self.running:
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.running = []
