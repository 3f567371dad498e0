"""The power interface every backend implements (pyghmi, ipmitool, the simulator's BMC).

An act returns what proves it: ``on``/``off`` are proven by a status read
(``evidence = "status"``, done by the backend itself); ``reset`` and ``cycle``
leave the status "on", so their proof is the next boot on the console
(``evidence = "console-boot"``), and ``diag`` (an NMI) is proven by the NMI
line on the console (``evidence = "console-nmi"``). The caller awaits console
evidence; the backend never claims it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

ACTS = ("status", "on", "off", "reset", "cycle", "diag")
EVIDENCE = {"status": "status", "on": "status", "off": "status", "reset": "console-boot", "cycle": "console-boot",
            "diag": "console-nmi"}


@dataclass(frozen=True)
class PowerResult:
    act: str
    state: str  # "on", "off" or "unknown" (as read after the act)
    evidence: str  # what proves the act: "status", "console-boot", "console-nmi"
    proven: bool  # True when the backend's own evidence (a status read) already proves it
    detail: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)


class PowerBackend(ABC):
    """Given a BMC, act on the chassis power and read its identity."""

    name: str = ""

    @abstractmethod
    def status(self) -> str:
        """Return "on" or "off"; raise ``TransportError`` (exit 4) when the BMC does not answer."""

    @abstractmethod
    def act(self, act: str, timeout_s: float = 30.0) -> PowerResult:
        """Perform ``act`` (one of ``ACTS``); raise ``TargetError`` when the BMC refuses it."""

    @abstractmethod
    def guid(self) -> str:
        """The system GUID the BMC reports, lower-case hex without dashes."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the BMC, never a secret."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the BMC session."""


def normalise_guid(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")
