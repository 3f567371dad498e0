"""Identity before any destructive act: is the console we are on really the host we mean?

A hostname the console shows (a login prompt's host, a shell prompt's host) must be
one of the inventory's console hostnames. When the console shows none (a hung
host), the BMC's system GUID must match the inventory's. A mismatch refuses
(exit 8); with neither available, a destructive act needs ``--assume-identity``.
"""

from __future__ import annotations

from dataclasses import dataclass

from consolebot.actions.console import Console
from consolebot.errors import ConsoleBotError, Refused
from consolebot.inventory.model import Host
from consolebot.power.base import PowerBackend, normalise_guid
from consolebot.power.ipmi_common import guid_matches


@dataclass(frozen=True)
class Identity:
    method: str  # "hostname", "guid", "assumed"
    value: str
    line: int | None = None

    def describe(self) -> str:
        where = f" (transcript line {self.line})" if self.line else ""
        return {"hostname": f"the console shows hostname {self.value!r}{where}",
                "guid": f"the BMC reports system GUID {self.value}",
                "assumed": "assumed by --assume-identity (no hostname on the console, no GUID to compare)"}[self.method]


def hostname_matches(shown: str, names: tuple[str, ...]) -> bool:
    s = shown.lower().rstrip(".")
    for n in names:
        n = n.lower().rstrip(".")
        if s == n or s == n.split(".")[0] or s.split(".")[0] == n:
            return True
    return False


def check_identity(console: Console, host: Host, power: PowerBackend | None, assume: bool) -> Identity:
    """Return the identity evidence for ``host``; raise ``Refused`` on a mismatch or when there is none."""
    shown = None
    for ev in reversed(console.events):
        if ev.kind in ("login.prompt", "shell.prompt") and ev.fields.get("host"):
            shown = ev
            break
    if shown is not None:
        name = shown.fields["host"]
        if not hostname_matches(name, host.console_hostnames):
            expected = ", ".join(host.console_hostnames) or "(none in the inventory)"
            raise Refused(f"{host.name}: the console shows hostname {name!r} (transcript line {shown.line}), "
                          f"not one of {expected}: wrong console? nothing was sent")
        return Identity("hostname", name, shown.line)
    if power is not None and host.bmc is not None and host.bmc.guid and normalise_guid(host.bmc.guid).strip("0"):
        try:
            got = normalise_guid(power.guid())
        except ConsoleBotError as exc:
            if assume:
                return Identity("assumed", "")
            raise Refused(f"{host.name}: no hostname on the console and the BMC GUID could not be read ({exc}); "
                          "pass --assume-identity to act anyway") from None
        want = normalise_guid(host.bmc.guid)
        if not guid_matches(got, want):
            raise Refused(f"{host.name}: the BMC reports system GUID {got}, the inventory says {want}: wrong BMC? "
                          "nothing was sent")
        return Identity("guid", got)
    if assume:
        return Identity("assumed", "")
    raise Refused(f"{host.name}: the console shows no hostname and there is no BMC GUID to compare; "
                  "pass --assume-identity (with --yes) to act anyway")
