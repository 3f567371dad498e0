# consolebot._fastpath (consolebot/_fastpath.c): optional, built by setup.py when a C compiler is at hand.
from collections.abc import Callable
from typing import Any

def log_lines(region: bytes, head: bytes) -> tuple[bytes, int]: ...
def lookup(
    block: bytes, cache: dict[bytes, Any], nohit: Any, canon: bool, line0: int | None = None, lead: str = "",
    skip_first: bool = False,
) -> tuple[list[tuple[int, bytes, bytes, Any]], int, bool, list[tuple[int, dict[str, Any], Any]]]: ...
def event_lines(
    hits: list[tuple[int, dict[str, Any], Any]], start: str, line: Callable[[tuple[int, dict[str, Any], Any], str], str],
) -> bytes: ...
def strip_escapes(raw: bytes, /) -> bytes: ...
def count_hits(
    hits: list[tuple[int, dict[str, Any], Any]], start: int, counts: dict[str, int], phase_kinds: frozenset[str],
    rank: dict[str, int], worst: int, services: bool, failed: list[str],
) -> tuple[int, int]: ...
