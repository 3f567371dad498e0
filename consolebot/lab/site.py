"""The simulated site: its machines, and what one host sees of another (AFS, domtool, DNS).

Mire and Outpost are AFS clients of Deleuze's fileserver and domtool slaves of its
domtool-server. A host served alone assumes the others are healthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consolebot.lab.machine import Machine


@dataclass
class Site:
    machines: dict[str, Machine] = field(default_factory=dict)

    def add(self, m: Machine) -> None:
        self.machines[m.profile.name] = m

    def deleuze(self) -> Machine | None:
        return self.machines.get("deleuze")

    def afs_available(self) -> bool:
        """Whether Deleuze's fileserver serves volumes (True when Deleuze is not simulated here)."""
        d = self.deleuze()
        if d is None:
            return True
        if not d.powered and not d.first_connect_done:
            # Deleuze waits for its first client to show its boot; until then the site is as the scenario says
            return d.scenario == "clean"
        return d.powered and d.fileserver is not None and d.fileserver.available()

    def resolve(self, name: str) -> Machine | None:
        """A machine by host name, console hostname or alias (short or qualified)."""
        for m in self.machines.values():
            if m.answers_to(name):
                return m
        return None

    def slave_ok(self, host: str) -> bool:
        """A domtool slave answers properly (True when that host is not simulated here)."""
        m = self.machines.get(host)
        if m is None:
            return True
        s = m.services.get("domtool-slave")
        return m.userspace_up() and s is not None and s.running and not s.broken
