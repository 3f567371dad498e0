# consolebot._fastpath (consolebot/_fastpath.c): optional, built by setup.py when a C compiler is at hand.
from typing import Any

def log_lines(region: bytes, head: bytes) -> tuple[bytes, int]: ...
def lookup(
    block: bytes, cache: dict[bytes, Any], nohit: Any, canon: bool, line0: int | None = None, lead: str = "",
    skip_first: bool = False,
) -> tuple[list[tuple[int, bytes, bytes, Any]], int, bool, list[tuple[int, dict[str, Any], Any]]]: ...
