"""Power through ``ipmitool chassis power`` (status, on, off, reset, cycle, diag) and the BMC's GUID.

Each act is one ipmitool run on the power user's own session (``-L OPERATOR``: chassis control
needs no more), the password in ipmitool's environment only (``-E``). The cipher suite falls back
once, as in :class:`~consolebot.power.ipmi_common.Ipmitool`, and ``notes`` says so.

Messages: ``Set Chassis Power Control to X failed: <completion code>`` is the BMC refusing the act
(``TargetError``, exit 6; for ``diag``, "NMI not supported by this BMC"); anything else that fails
(no answer, no session) is ``TransportError`` (exit 4).
"""

from __future__ import annotations

import re

from consolebot.errors import TransportError
from consolebot.power.ipmi_common import GET_SYSTEM_GUID, BmcRefused, BmcTarget, ChassisPower, Ipmitool

_STATUS = re.compile(r"Chassis Power is (on|off)", re.IGNORECASE)
_REFUSED = re.compile(r"Set Chassis Power Control to [^:\n]* failed: *(?P<reason>[^\n]*)", re.IGNORECASE)


class IpmitoolPower(ChassisPower):
    """Given a BMC target (the power user), act on the chassis power with ipmitool."""

    name = "ipmitool"
    native_cycle = True

    def __init__(self, target: BmcTarget, *, program: str = "ipmitool", poll_interval_s: float = 0.5,
                 command_timeout_s: float = 30.0) -> None:
        super().__init__(target, poll_interval_s)
        self.tool = Ipmitool(target, program, privilege="OPERATOR", timeout_s=command_timeout_s,
                             who="ipmitool power")

    def take_notes(self) -> list[str]:
        notes, self.tool.notes = self.tool.notes, []
        return notes

    def describe(self) -> str:
        return f"ipmitool://{self.target.describe()}"

    def _status(self) -> str:
        r = self.tool.check("chassis", "power", "status")
        m = _STATUS.search(r.stdout)
        if m is None:
            raise TransportError(f"{self.describe()}: unexpected answer to power status: {r.text[:120]!r}")
        return m.group(1).lower()

    def _control(self, act: str) -> None:
        r = self.tool.run("chassis", "power", act)
        if r.returncode == 0:
            return
        m = _REFUSED.search(r.text)
        if m is not None:
            raise BmcRefused(m.group("reason").strip() or "no reason given")
        raise TransportError(f"{self.describe()}: power {act}: {r.last_error()}")

    def _guid(self) -> bytes:
        return self.tool.raw(*GET_SYSTEM_GUID)
