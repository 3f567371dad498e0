"""The capture loop's pacing of the cycle collector: survivors set aside, cycles still freed, settings restored."""

from __future__ import annotations

import gc
import time
import weakref

from consolebot.runbooks.gcpace import CyclePacer


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_survivors_are_set_aside_and_cycles_are_freed_at_the_full_pass() -> None:
    before = gc.get_threshold()
    with CyclePacer(freeze_s=1.0, full_s=10.0, young=12_345) as pace:
        assert gc.get_threshold()[0] == 12_345
        start = time.monotonic()
        kept = [[i] for i in range(1000)]  # lives on: set aside at the next freeze
        frozen = gc.get_freeze_count()
        pace.tick(start + 0.5)  # not yet a second
        assert gc.get_freeze_count() == frozen
        pace.tick(start + 1.5)
        assert gc.get_freeze_count() >= frozen + 1000
        lost = _cycle()  # garbage in a cycle, then set aside by a freeze: only the full pass can free it
        pace.tick(start + 3.0)
        gc.collect()
        assert lost() is not None, "a frozen cycle is not looked at by an ordinary collection"
        pace.tick(start + 11.0)  # the full pass: unfrozen, collected, frozen again
        assert lost() is None
        assert pace.full_collections == 1
        assert kept[999] == [999]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
