"""``Secret``: a value that prints as ``***`` everywhere."""

from __future__ import annotations

from typing import Any, NoReturn

MASK = "***"


class Secret:
    """Given a secret string, hold it so that ``str``, ``repr`` and formatting print ``***``.

    ``reveal()`` gives the value back; only the session's ``send_secret`` and the
    child-environment builders call it.
    """

    __slots__ = ("_label", "_value")

    def __init__(self, value: str, label: str = "secret") -> None:
        if not isinstance(value, str):
            raise TypeError("Secret needs a str")
        self._value = value
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._label!r}, {MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __getstate__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")
