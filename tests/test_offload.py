"""Offload: blocking calls run on a few threads, their results handed back through a pipe the loop waits on."""

from __future__ import annotations

import selectors
import threading

from consolebot.runbooks.offload import Offload


def _wait_results(off: Offload, n: int) -> list[tuple[object, object, BaseException | None]]:
    sel = selectors.DefaultSelector()
    sel.register(off.fileno(), selectors.EVENT_READ)
    got: list[tuple[object, object, BaseException | None]] = []
    while len(got) < n:
        assert sel.select(30), "no result within 30 s"
        got += off.results()
    sel.close()
    return got


def test_results_come_back_tagged_with_their_exceptions_and_threads_are_bounded() -> None:
    off = Offload(threads=2)
    go = threading.Event()
    try:
        def waits(i: int) -> int:
            assert go.wait(30)
            return i * 10

        def fails() -> None:
            raise ValueError("broken")

        for i in range(5):
            off.submit(("w", i), lambda i=i: waits(i))
        off.submit(("f",), fails)
        assert off.busy == 6 and len(off._threads) == 2  # at most two wait at once; the rest queue
        go.set()
        got = _wait_results(off, 6)
    finally:
        off.close()
    values = {tag: value for tag, value, error in got if error is None}
    assert values == {("w", i): i * 10 for i in range(5)}
    errors = [error for tag, _v, error in got if tag == ("f",)]
    assert isinstance(errors[0], ValueError) and off.busy == 0


def test_a_call_ending_after_close_is_abandoned_not_lost() -> None:
    off = Offload(threads=4)
    go, abandoned = threading.Event(), threading.Event()
    seen: list[object] = []

    def waits() -> str:
        assert go.wait(30)
        return "transport"

    def abandon(value: object) -> None:
        seen.append(value)
        abandoned.set()

    off.submit(("open",), waits, abandon)
    off.close()
    go.set()
    assert abandoned.wait(30) and seen == ["transport"]  # e.g. the transport nobody will read is closed
