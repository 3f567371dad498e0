"""Unattended, read-only capture of many consoles in one event loop.

One ``selectors`` loop (epoll on Linux, never ``select()``) over non-blocking
transports: no thread and no pexpect per console. A socket connects without
blocking inside the loop; an open or close that must wait (``ipmitool sol
activate`` waiting for its banner, a payload being deactivated, a BMC over
pyghmi, a connect script) runs on a few helper threads (``offload.Offload``)
and comes back to the loop when done, so a room of unreachable BMCs after a
power event is tried at once and never stalls the consoles already streaming.
Each console keeps its own transcript; a lost connection is marked as a gap
and retried with exponential backoff and jitter without disturbing the others;
a writer that asks for the console (``consolebot console``, ``recover`` ...)
gets it through the lock: the capture half-closes its connection and reads
what is still on its way inside the loop (the other consoles are read all the
while), closes it, marks the gap, and reconnects when the writer is done.
Capture never sends console data (a telnet option reply is protocol, not data).
"""

from __future__ import annotations

import gc
import os
import random
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolebot.errors import ConsoleBotError, ConsoleClosed, ConsoleUnreachable
from consolebot.locks import CaptureClaim
from consolebot.recognise.classifier import Classifier, hit_event
from consolebot.recognise.events import Event, Hit, as_hits
from consolebot.recognise.timeline import Timeline
from consolebot.runbooks.gcpace import CyclePacer
from consolebot.runbooks.offload import Offload
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Transport

CONNECT_TIMEOUT_S = 10.0
HOUSEKEEPING_S = 0.1  # how often lock requests, reconnects and partial lines are looked at
READ_BATCH_S = 0.06  # read a busy console at most this often (0.04: more CPU; 0.08: p99 latency past 100 ms)
DRAIN_S = 1.0  # at the end, how long the consoles get (together) to deliver what is on its way
YIELD_DRAIN_S = 2.0  # a console yielded to a writer: how long its bytes on their way are read (the others go on)
IDLE_S = 0.3  # quiet this long: an unfinished line (a prompt) is classified
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
BEHIND_S = 1.0  # a round of reads took this long: events and alerts are that late (said once, again if it doubles)
OFFLOAD_THREADS = 64  # at most this many blocking opens and closes (IPMI consoles) wait at once, off the loop
LISTING_FRESH_S = 1.0  # a lock folder's listing is reused once it is this much younger than the folder's last change
CLOSE_WAIT_S = 30.0  # at the end, how long the closes still running off the loop are waited for


@dataclass
class CapturedConsole:
    """One console in the loop: its transport factory, transcript and connection state."""

    name: str
    make_transport: Callable[[], Transport]
    transcript: Transcript
    claim: CaptureClaim | None = None
    on_data: list[Callable[[bytes], None]] = field(default_factory=list)
    connect_hook: Callable[[Transport], None] | None = None  # e.g. a connect script
    state: str = "new"  # new, connecting, connected, yielding, closing, yielded, backoff, closed
    transport: Transport | None = None
    fd: int | None = None  # the descriptor registered with the selector (a closed transport cannot name it)
    next_attempt: float = 0.0
    backoff_s: float = BACKOFF_FIRST_S
    gap_since: float | None = None
    gaps: int = 0
    connects: int = 0
    last_error: str = ""
    yield_reason: str = ""  # while yielding: the gap note written once the connection is drained
    rx_bytes: int = 0
    last_rx: float = 0.0
    classifier: Classifier | None = None
    timeline: Timeline | None = None
    on_event: list[Callable[[CapturedConsole, Event], None]] = field(default_factory=list)
    # alerts: called with the events (in order, a list per call) whose severity is in ``alert_severities`` (None:
    # every event); with a buffered transcript they are held until ``flush()`` wrote their lines (each loop
    # round), so no alert is ever raised for a line that a SIGKILL could still take from the files
    alert: Callable[[CapturedConsole, list[Event]], None] | None = None
    alert_severities: frozenset[str] | None = None
    events: int = 0
    _idle_done: bool = True
    _held_alerts: list[Event] = field(default_factory=list)

    def record(self, data: bytes) -> None:
        if not data:
            return
        self.rx_bytes += len(data)
        self.last_rx = time.monotonic()
        now = time.time()  # the read's time: its log lines' and its events'
        clean = self.transcript.rx(data, now)
        for cb in self.on_data:
            cb(clean)
        if self.classifier is not None and clean:
            self._idle_done = False
            events = self.classifier.feed_hits(clean)
            if events:
                self._events(events, now)

    def flush(self) -> None:
        """Write what the transcript holds, then raise the alerts held for it."""
        self.transcript.flush()
        if self._held_alerts and self.alert is not None:
            held, self._held_alerts = self._held_alerts, []
            self.alert(self, held)

    def idle(self) -> None:
        """The console went quiet: let the classifier look at an unfinished line (a prompt)."""
        if self.classifier is not None and not self._idle_done:
            self._idle_done = True
            self._events(as_hits(self.classifier.idle()))

    def _events(self, hits: list[Hit], now: float | None = None) -> None:
        """Count, place in the timeline, write and alert the events; an event object is made only for an alert or
        an ``on_event`` callback (most events are only counted and written: ``Classifier.feed_hits``).
        """
        self.events += len(hits)
        if self.timeline is not None:
            self.timeline.feed_all(hits)
        self.transcript.record_events(hits, now)  # one write for the lot
        wanted = self.alert_severities
        made = [hit_event(hit) for hit in hits] if self.on_event else []
        if self.alert is not None:
            if made:
                hot = made if wanted is None else [ev for ev in made if ev.severity in wanted]
            else:  # only the events to alert are made
                hot = [hit_event(hit) for hit in hits if wanted is None or hit[1]["severity"] in wanted]
            if hot:
                if self.transcript.buffered:
                    self._held_alerts += hot
                else:
                    self.alert(self, hot)
        for ev in made:
            for cb in self.on_event:
                cb(self, ev)


@dataclass
class CaptureSummary:
    consoles: dict[str, dict[str, object]]
    round_s_max: float = 0.0  # the longest round of reads: how late events could be (see ``BEHIND_S``)


class CaptureLoop:
    """Given consoles, capture them all until ``duration_s`` passes or ``stop()`` is called."""

    def __init__(self, consoles: list[CapturedConsole], rng: random.Random | None = None,
                 flushed: Callable[[], None] | None = None, behind: Callable[[float], None] | None = None) -> None:
        self.consoles = consoles
        # told the length of a round of reads past ``BEHIND_S``: the loop cannot keep up (one core is not enough),
        # so events come that late; the bytes wait in the kernel's buffers meanwhile, nothing is lost
        self.behind = behind
        self.round_s_max = 0.0
        self._behind_said = 0.0
        self.flushed = flushed  # called after each round of flushes (the alerts held for the round were handed on)
        self.selector = selectors.DefaultSelector()
        self.rng = rng or random.Random()
        self._stop = False
        self._started = False  # start() ran (and collected what start-up left)
        self._closed = False
        self._fd_owner: dict[int, CapturedConsole] = {}
        self._offload: Offload | None = None  # started at the first blocking open or close
        self._want_paths: dict[int, tuple[CaptureClaim, Path, str]] = {}  # id(console): (claim, folder, file name)
        self._listings: dict[Path, tuple[int, float, set[str]]] = {}  # folder: (its mtime, when listed, the names)

    def stop(self) -> None:
        self._stop = True

    def _register(self, c: CapturedConsole, fd: int, events: int) -> None:
        self._unregister(c)
        self.selector.register(fd, events, c)
        c.fd = fd

    def _unregister(self, c: CapturedConsole) -> None:
        if c.fd is not None:
            try:
                self.selector.unregister(c.fd)
            except (KeyError, ValueError, OSError):
                pass
            self._fd_owner.pop(c.fd, None)
            c.fd = None

    # -- connection management -------------------------------------------------------------
    def _connect(self, c: CapturedConsole, now: float) -> bool:
        """Connect ``c``; a transport that can connect without blocking is left "connecting" in the loop."""
        if c.claim is not None and not c.claim.try_take():
            if c.state != "yielded":
                c.state = "yielded"
            return False
        transport = c.make_transport()
        start = getattr(transport, "start_connect", None)
        if start is not None and c.connect_hook is None:
            try:
                fd = start()
            except ConsoleBotError as exc:
                self._failed(c, transport, exc, now)
                raise
            c.transport = transport
            c.state = "connecting"
            c.next_attempt = now + CONNECT_TIMEOUT_S
            self._register(c, fd, selectors.EVENT_WRITE)
            return False
        hook = c.connect_hook

        def opening() -> Transport:
            try:
                transport.open()
                if hook is not None:
                    hook(transport)
            except BaseException:
                transport.close()
                raise
            return transport

        # an open that waits (ipmitool's banner, a BMC, a connect script) runs off the loop: see ``_collect``
        c.transport = None
        c.state = "connecting"
        self._off(("open", c), opening, lambda t: t.close())
        return False

    def _off(self, tag: tuple[Any, ...], call: Callable[[], Any], abandon: Callable[[Any], None] | None = None) -> None:
        if self._offload is None:
            self._offload = Offload(OFFLOAD_THREADS)
            self.selector.register(self._offload.fileno(), selectors.EVENT_READ, None)  # data None: the offload
        self._offload.submit(tag, call, abandon)

    def _collect(self, now: float) -> None:
        """Take the blocking opens and closes that finished off the loop."""
        if self._offload is None:
            return
        for tag, value, error in self._offload.results():
            kind, c = tag[0], tag[1]
            assert isinstance(c, CapturedConsole)
            if kind == "close":
                self._closed_off(c, str(tag[2]))
                continue
            if self._closed:  # the loop is ending: close what opened meanwhile (waited for with the other closes)
                if error is None:
                    c.state = "closing"
                    self._off(("close", c, "end"), value.close)
                continue
            if error is None:
                self._connected(c, value, now)
            elif isinstance(error, ConsoleBotError):
                self._failed(c, None, error, now)
                if c.gap_since is None:
                    c.gap_since = now
                c.transcript.note(f"gap: connect failed ({error}); retrying", what="gap.start")
            else:
                raise error  # a bug: as if the open had run here

    def _failed(self, c: CapturedConsole, transport: Transport | None, exc: ConsoleBotError, now: float) -> None:
        self._unregister(c)
        if transport is not None:
            transport.close()
        c.transport = None
        if c.claim is not None:
            c.claim.release()
        c.last_error = str(exc)
        self._schedule_retry(c, now)

    def _finish_connect(self, c: CapturedConsole, now: float) -> None:
        t = c.transport
        assert t is not None
        self._unregister(c)
        try:
            t.finish_connect()  # type: ignore[attr-defined]
        except ConsoleBotError as exc:
            self._failed(c, t, exc, now)
            if c.gap_since is None:
                c.gap_since = now
            c.transcript.note(f"gap: connect failed ({exc}); retrying", what="gap.start")
            return
        self._connected(c, t, now)

    def _connected(self, c: CapturedConsole, transport: Transport, now: float) -> None:
        c.transport = transport
        take = getattr(transport, "take_notes", None)
        for note in take() if callable(take) else []:
            c.transcript.note(note, what="transport.note")
        c.state = "connected"
        c.connects += 1
        c.backoff_s = BACKOFF_FIRST_S
        fd = transport.fileno()
        self._register(c, fd, selectors.EVENT_READ)
        self._fd_owner[fd] = c
        if c.gap_since is not None:
            c.transcript.note(
                f"gap ended: reconnected to {transport.describe()} after {now - c.gap_since:.1f} s",
                what="gap.end",
                gap_s=round(now - c.gap_since, 3),
            )
            c.gap_since = None
        else:
            # (written with the console's first data or the next housekeeping: a thousand consoles connecting at once
            # while the first of them already stream need not wait for three writes each)
            c.transcript.note(f"capture started on {transport.describe()} (read-only)", flush_now=False,
                              what="capture.start")
        # bytes that arrived with the connection
        self._drain(c)

    def _schedule_retry(self, c: CapturedConsole, now: float) -> None:
        c.state = "backoff"
        jitter = self.rng.uniform(0.75, 1.25)
        c.next_attempt = now + c.backoff_s * jitter
        c.backoff_s = min(BACKOFF_MAX_S, c.backoff_s * 2)

    def _disconnect(self, c: CapturedConsole, reason: str, event: str, then: str) -> None:
        """End ``c``'s connection, mark the gap; ``then``: "yielded" (to a writer) or "backoff" (retry).

        A close that waits (an IPMI console deactivating its payload) runs off the loop ("closing"); the
        claim is released, and ``then`` taken, once it is done.
        """
        t = c.transport
        self._unregister(c)
        c.transport = None
        if t is not None and not t.quick_close:
            try:
                while data := t.read_available():  # what arrived: the close cannot take it
                    c.record(data)
            except ConsoleBotError:
                pass
        elif t is not None:
            try:
                c.record(t.drain_close(YIELD_DRAIN_S))
            except ConsoleBotError:
                t.close()
        c.gaps += 1
        c.gap_since = time.monotonic()
        c.transcript.note(f"gap: {reason}", event=event)
        if t is not None and not t.quick_close:
            c.state = "closing"
            self._off(("close", c, then), t.close)
            return
        self._closed_off(c, then)

    def _closed_off(self, c: CapturedConsole, then: str) -> None:
        """The connection of ``c`` is closed: release the claim, then yield or retry."""
        if c.claim is not None:
            c.claim.release()
        if then == "end":  # the loop is ending: nothing more to wait for
            c.state = "closed"
            return
        if then == "yielded":
            c.state = "yielded"
        else:
            self._schedule_retry(c, time.monotonic())

    def _start_yield(self, c: CapturedConsole, reason: str, now: float) -> None:
        """Give the console to a writer without stalling the others.

        The connection is half-closed and stays in the loop ("yielding") until the server closes it too
        (all it sent is read) or ``YIELD_DRAIN_S`` passes; only then is the claim released. A transport
        that cannot half-close gives what it has at once.
        """
        t = c.transport
        start = getattr(t, "start_drain", None)
        if t is None or not callable(start):
            self._disconnect(c, reason, "gap.yield", "yielded")
            return
        self._unregister(c)
        try:
            draining = bool(start())
        except ConsoleBotError:
            draining = False
        if not draining:
            self._disconnect(c, reason, "gap.yield", "yielded")
            return
        c.state = "yielding"
        c.yield_reason = reason
        c.next_attempt = now + YIELD_DRAIN_S
        self._register(c, t.fileno(), selectors.EVENT_READ)

    def _finish_yield(self, c: CapturedConsole) -> None:
        """The yielding connection is drained (or its time is up): close it, mark the gap, release the claim."""
        self._unregister(c)
        if c.transport is not None:
            c.transport.close()
        c.transport = None
        if c.claim is not None:
            c.claim.release()
        c.gaps += 1
        c.gap_since = time.monotonic()
        c.transcript.note(f"gap: {c.yield_reason}", event="gap.yield")
        c.state = "yielded"

    def _drain(self, c: CapturedConsole, once: bool = False) -> None:
        """Record what ``c`` has to read; ``once``: one read (the descriptor said it is readable)."""
        t = c.transport
        if t is None:
            return
        try:
            while True:
                data = t.read_available()
                if not data:
                    return
                c.record(data)
                if once:
                    return  # more left is reported again by the (level-triggered) selector
        except ConsoleClosed as exc:
            self._disconnect(c, f"connection lost ({exc})", "gap.start", "backoff")

    # -- the loop ---------------------------------------------------------------------------------
    def start(self, wait: bool) -> None:
        """Connect every console; without ``wait`` a first failure raises ``ConsoleUnreachable``."""
        # what can be worked out before the consoles stream: the rules' timestamp analysis (else asked by the first
        # line holding a timestamp, ~90 ms for the built-in table), and a collection of what start-up left (``run``
        # sets the rest aside from the cycle collector)
        for c in self.consoles:
            if c.classifier is not None:
                c.classifier.prepare()
        gc.collect()
        self._started = True
        now = time.monotonic()
        failures = []
        for c in self.consoles:
            try:
                if not self._connect(c, now) and c.state == "yielded":
                    c.gap_since = now
                    c.transcript.note("capture waiting: a writer holds the console", what="gap.start")
            except ConsoleBotError as exc:
                failures.append((c, exc))
        # let the non-blocking connects finish (or fail) before deciding
        deadline = time.monotonic() + CONNECT_TIMEOUT_S

        def connecting() -> bool:  # an open off the loop ends by its transport's own deadline
            late = time.monotonic() >= deadline
            return any(c.state == "connecting" and (c.transport is None or not late) for c in self.consoles)

        while not self._stop and connecting():
            for key, _mask in self.selector.select(0.1):
                c = key.data
                if c is None:
                    self._collect(time.monotonic())
                elif c.state == "connecting":
                    self._finish_connect(c, time.monotonic())
                else:
                    self._drain(c)
        for c in self.consoles:
            if c.state == "connecting" and c.transport is not None:
                timeout = ConsoleUnreachable(f"{c.transport.describe()}: no answer within {CONNECT_TIMEOUT_S:g} s")
                self._failed(c, c.transport, timeout, time.monotonic())
            if c.state == "backoff" and c.connects == 0 and not any(f[0] is c for f in failures):
                failures.append((c, ConsoleUnreachable(c.last_error)))
        if failures and not wait and not self._stop:
            self.close()
            first = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise ConsoleUnreachable(f"{first[0].name}: {first[1]}{more}; use --wait to keep trying")
        for c, err in failures:
            c.gap_since = now
            c.transcript.note(f"gap: first connection failed ({err}); retrying", what="gap.start")

    def run(self, duration_s: float | None) -> CaptureSummary:
        """Capture until ``duration_s`` passes or ``stop()`` is called.

        Rounds are paced: after a round that read something, the next waits until ``READ_BATCH_S``
        after it, so a console streaming at line rate is read once per round (a few of its packets
        at a time) instead of once per packet; a quiet loop still wakes at once for the first byte.
        """
        end = None if duration_s is None else time.monotonic() + duration_s
        with CyclePacer(collect=not self._started) as pace:  # full collections would walk all a thousand consoles hold, stalling each
            self._rounds(end, pace)
        return self.summary()

    def _rounds(self, end: float | None, pace: CyclePacer) -> None:
        next_house = 0.0
        next_round = 0.0
        while not self._stop:
            now = time.monotonic()
            pace.tick(now)
            if end is not None and now >= end:
                break
            if now < next_round:
                time.sleep(min(next_round, end if end is not None else next_round) - now)
                continue
            timeout = HOUSEKEEPING_S if end is None else max(0.0, min(HOUSEKEEPING_S, end - now))
            ready = self.selector.select(timeout)
            round_start = time.monotonic()
            if ready:
                next_round = round_start + READ_BATCH_S
            for key, _mask in ready:
                c = key.data
                if c is None:  # opens and closes finished off the loop
                    self._collect(time.monotonic())
                    continue
                if c.state == "connecting":
                    self._finish_connect(c, time.monotonic())
                    continue
                t = c.transport
                if t is None:
                    continue
                try:  # one read: more left is reported again by the (level-triggered) selector
                    data = t.read_available()
                except ConsoleClosed as exc:
                    if c.state == "yielding":  # the server closed its end too: all it sent is ours
                        self._finish_yield(c)
                        continue
                    self._disconnect(c, f"connection lost ({exc})", "gap.start", "backoff")
                    continue
                if data:
                    c.record(data)
            now = time.monotonic()
            if now >= next_house:
                next_house = now + HOUSEKEEPING_S
                self._housekeeping(now)
            if ready:
                self._took(time.monotonic() - round_start)

    def _took(self, round_s: float) -> None:
        """A round of reads took ``round_s``: the data a console sent waited about that long to be read."""
        if round_s > self.round_s_max:
            self.round_s_max = round_s
        if round_s >= BEHIND_S and round_s >= 2 * self._behind_said:
            self._behind_said = round_s
            if self.behind is not None:
                self.behind(round_s)

    def _writers_waiting(self) -> set[int]:
        """The consoles whose lock folder holds a writer's request (one listing per folder, not a file per console)."""
        folders: dict[Path, list[tuple[CapturedConsole, str]]] = {}
        where = self._want_paths
        for c in self.consoles:
            claim = c.claim
            if claim is not None and c.state == "connected":
                known = where.get(id(c))
                if known is None or known[0] is not claim:  # worked out once per claim (Path operations cost)
                    known = where[id(c)] = (claim, claim.want.parent, claim.want.name)
                folders.setdefault(known[1], []).append((c, known[2]))
        out: set[int] = set()  # ids of the consoles
        for folder, members in folders.items():
            names = self._listing(folder)
            if names is None:
                out.update(id(c) for c, _name in members)  # cannot tell: ask each one
                continue
            out.update(id(c) for c, name in members if name in names)
        return out

    def _listing(self, folder: Path) -> set[str] | None:
        """The names in a lock folder (None: it cannot be read), listed again only when it changed.

        A writer's request is a new file there, which changes the folder's modification time; the listing of a
        thousand consoles' lock files is kept while that time stays the same and the listing is more than
        ``LISTING_FRESH_S`` younger than it (a change within the same tick of a coarse clock is not missed).
        """
        try:
            changed_ns = os.stat(folder).st_mtime_ns
        except OSError:
            return None
        known = self._listings.get(folder)
        if known is not None and known[0] == changed_ns and known[1] - changed_ns / 1e9 > LISTING_FRESH_S:
            return known[2]
        listed_at = time.time()
        try:
            names = set(os.listdir(folder))
        except OSError:
            return None
        self._listings[folder] = (changed_ns, listed_at, names)
        return names

    def _housekeeping(self, now: float) -> None:
        asking = self._writers_waiting()
        for c in self.consoles:
            if c.state == "connected":
                c.transcript.tick()
                if now - c.last_rx >= IDLE_S:
                    c.idle()
            c.flush()  # a buffered transcript holds at most one round's writes
            if c.state == "connected":
                pid = c.claim.writer_waiting() if c.claim is not None and id(c) in asking else None
                if pid is not None:
                    self._start_yield(c, f"yielded the console to a writer (pid {pid})", now)
            elif c.state == "yielding":
                if now >= c.next_attempt:
                    self._finish_yield(c)
            elif c.state == "yielded":
                try:
                    self._connect(c, now)
                except ConsoleBotError:
                    pass
            elif c.state == "connecting" and now >= c.next_attempt and c.transport is not None:
                self._failed(c, c.transport, ConsoleUnreachable(f"{c.name}: no answer within {CONNECT_TIMEOUT_S:g} s"),
                             now)
            elif c.state == "backoff" and now >= c.next_attempt:
                try:
                    self._connect(c, now)
                except ConsoleBotError:
                    pass
        if self.flushed is not None:
            self.flushed()

    def summary(self) -> CaptureSummary:
        return CaptureSummary(
            {
                c.name: {
                    "state": c.state,
                    "bytes": c.rx_bytes,
                    "lines": c.transcript.lines,
                    "gaps": c.gaps,
                    "events": c.events,
                    "phase": c.timeline.phase if c.timeline is not None else None,
                    "connects": c.connects,
                    "last_error": c.last_error,
                    "transcript": c.transcript.paths(),
                }
                for c in self.consoles
            },
            round_s_max=round(self.round_s_max, 3),
        )

    def close(self) -> None:
        """Drain and close every connection (together, within ``DRAIN_S``), then every transcript (idempotent)."""
        if self._closed:
            return
        self._closed = True
        draining = selectors.DefaultSelector()
        for c in self.consoles:
            self._unregister(c)
            t = c.transport
            if t is None:
                continue
            if c.state == "connecting":
                t.close()
                c.transport = None
                continue
            start = getattr(t, "start_drain", None)
            try:
                if c.state == "yielding" or (callable(start) and start()):  # (a yielding one is half-closed already)
                    c.record(t.read_available())  # also what the transport holds (ConsoleClosed: that was all)
                    draining.register(t.fileno(), selectors.EVENT_READ, c)
                    continue
                if not t.quick_close:  # what arrived, then a close that waits, off the loop with the others
                    c.transport = None
                    try:
                        while data := t.read_available():
                            c.record(data)
                    except ConsoleBotError:
                        pass
                    c.state = "closing"
                    self._off(("close", c, "end"), t.close)
                    continue
                c.record(t.drain_close(DRAIN_S))
            except ConsoleBotError:
                t.close()
            c.transport = None
        # what the half-closed connections still deliver, until each peer closes or the deadline passes
        deadline = time.monotonic() + DRAIN_S
        while draining.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _mask in draining.select(remaining):
                c = key.data
                t = c.transport
                assert t is not None
                try:
                    c.record(t.read_available())
                except ConsoleBotError:  # the peer closed: all it sent is ours
                    draining.unregister(key.fd)
                    t.close()
                    c.transport = None
        draining.close()
        if self._offload is not None:  # the closes that wait (IPMI payloads deactivated), together
            deadline = time.monotonic() + CLOSE_WAIT_S
            while (any(c.state == "closing" for c in self.consoles)
                   and (remaining := deadline - time.monotonic()) > 0):
                self.selector.select(min(remaining, HOUSEKEEPING_S))
                self._collect(time.monotonic())
            self._offload.close()  # opens still running are closed by their thread when they end
        for c in self.consoles:
            if c.transport is not None:
                c.transport.close()
                c.transport = None
            if c.claim is not None:
                c.claim.release()
            c.transcript.note("capture stopped", what="capture.stop")
            c.flush()  # the held alerts
            c.transcript.close()
            c.state = "closed"
        if self.flushed is not None:
            self.flushed()
        self.selector.close()
