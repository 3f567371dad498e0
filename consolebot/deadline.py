"""A monotonic deadline passed down to every wait."""

from __future__ import annotations

import time


class Deadline:
    """Given a budget in seconds, tell how much of it is left. ``None`` means no limit."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self._end = None if timeout_s is None else time.monotonic() + timeout_s

    @property
    def remaining_s(self) -> float | None:
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def cap(self, max_s: float) -> float:
        """Return the smaller of ``max_s`` and what is left."""
        rem = self.remaining_s
        return max_s if rem is None else min(max_s, rem)

    def __repr__(self) -> str:
        return f"Deadline(timeout_s={self.timeout_s!r}, remaining_s={self.remaining_s!r})"
