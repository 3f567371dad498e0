"""Blocking transport calls (an IPMI console's open or close) run off the capture loop, on a few threads.

Opening ``ipmitool sol activate`` waits for its banner (up to its ``open_timeout_s``, 20 s on a BMC that
does not answer); closing it waits for the payload to be deactivated; pyghmi's open and close wait on the
BMC. Done inside one selector loop, each would stall every other console for that long: after a power
event, a room of unreachable BMCs would be connected one after the other. ``Offload`` runs such a call on
one of at most ``threads`` daemon threads (started as they are needed) and hands its result back through a
pipe the loop waits on with the consoles (``fileno()``), so the loop only ever sees finished calls
(``results()``). The threads only wait (in system calls that release the interpreter lock): the loop's
reads go on meanwhile.

A call that finishes after ``close()`` is not handed back: its ``abandon`` callback gets its value (to close
a transport nobody will read).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Tag = tuple[Any, ...]
Job = tuple[Tag, Callable[[], Any], Callable[[Any], None] | None]


class Offload:
    """Given at most ``threads`` threads, run blocking calls and collect ``(tag, value, exception)``."""

    def __init__(self, threads: int = 64) -> None:
        self.max_threads = threads
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: deque[tuple[Tag, Any, BaseException | None]] = deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # jobs submitted and not yet finished (guarded by the lock)
        self._closed = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def fileno(self) -> int:
        """Readable when a call finished: then call ``results()``."""
        return self._r

    @property
    def busy(self) -> int:
        return self._busy

    def submit(self, tag: Tag, call: Callable[[], Any], abandon: Callable[[Any], None] | None = None) -> None:
        """Run ``call()`` on a thread; its result comes back from ``results()`` tagged ``tag``."""
        thread = None
        with self._lock:
            if self._closed:
                raise RuntimeError("offload closed")
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < self.max_threads:
                thread = threading.Thread(target=self._worker, name=f"consolebot-offload-{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
        self._jobs.put((tag, call, abandon))
        if thread is not None:
            thread.start()

    def results(self) -> list[tuple[Tag, Any, BaseException | None]]:
        """The calls finished since the last time, in the order they finished."""
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def _worker(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            tag, call, abandon = job
            value: Any = None
            error: BaseException | None = None
            try:
                value = call()
            except BaseException as exc:  # handed to the loop, which decides (a bug is raised there)
                error = exc
            with self._lock:
                self._busy -= 1
                if not self._closed:
                    self._done.append((tag, value, error))
                    try:
                        os.write(self._w, b".")
                    except BlockingIOError:
                        pass  # the pipe is full of wake-ups already
                    continue
            if abandon is not None and error is None:
                try:
                    abandon(value)
                except Exception:  # nobody is left to tell
                    pass

    def close(self) -> None:
        """Hand back nothing more; the threads end when their call is done (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = len(self._threads)
        for _ in range(threads):
            self._jobs.put(None)
        os.close(self._r)
        os.close(self._w)
