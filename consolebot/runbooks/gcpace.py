"""The cycle collector paced for a long loop that holds much and makes many short-lived objects.

A capture of a thousand consoles keeps a few hundred thousand objects alive (the line memory, the
timelines, the consoles) and makes and drops tens of thousands a second (each read's events). With
CPython's defaults the collector walked every live object in a full collection several times a
second, up to 60 ms each time: every console waited meanwhile. Paced, what survived is set aside
(``gc.freeze``) every ``freeze_s``, so a full collection walks only what the last second made; the
youngest generation is collected every ``young`` allocations instead of 700 (what a read makes is
mostly freed by reference counting before then). Once every ``full_s`` everything is unfrozen and
collected, so cycles set aside meanwhile are freed. The settings are restored when the loop ends.
"""

from __future__ import annotations

import gc
import time
from types import TracebackType

FREEZE_S = 1.0
FULL_S = 600.0
YOUNG = 20_000


class CyclePacer:
    """``with CyclePacer() as pace:`` around a loop that calls ``pace.tick(time.monotonic())`` each turn."""

    def __init__(self, freeze_s: float = FREEZE_S, full_s: float = FULL_S, young: int = YOUNG,
                 collect: bool = True) -> None:
        self.collect = collect  # collect once when entered (False: the caller just did)
        self.freeze_s = freeze_s
        self.full_s = full_s
        self.young = young
        self.full_collections = 0  # the unfreeze-and-collect passes done (each every ``full_s``)
        self._saved: tuple[int, int, int] | None = None
        self._next_freeze = 0.0
        self._next_full = 0.0

    def __enter__(self) -> CyclePacer:
        self._saved = gc.get_threshold()
        if self.collect:
            gc.collect()  # what start-up made and dropped, once; what lives on is set aside
        gc.freeze()
        gc.set_threshold(self.young, self._saved[1], self._saved[2])
        now = time.monotonic()
        self._next_freeze = now + self.freeze_s
        self._next_full = now + self.full_s
        return self

    def tick(self, now: float) -> None:
        if now < self._next_freeze:
            return
        self._next_freeze = now + self.freeze_s
        if now >= self._next_full:
            self._next_full = now + self.full_s
            self.full_collections += 1
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        gc.unfreeze()
        if self._saved is not None:
            gc.set_threshold(*self._saved)
