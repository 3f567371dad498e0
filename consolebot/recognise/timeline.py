"""The boot timeline: a state machine over events, split into boots.

Phases: unknown (the stream began mid-boot), down, firmware, kernel, init, afs, salvaging, services, login-ready;
panicked; hung (silent past a deadline, live only). A new boot starts at the
first firmware, boot-loader or kernel-banner line after the previous boot got
past its kernel start, or after a restart (``reboot: Restarting system``, SysRq
``Resetting``); a quiet kernel that prints no banner starts one at ``init.start``
after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from consolebot.recognise.events import SEVERITY_RANK, Event, Hit

PHASES = ("unknown", "down", "firmware", "kernel", "init", "afs", "salvaging", "services", "login-ready", "panicked", "hung")


@dataclass
class Boot:
    index: int
    start_line: int
    phase: str = "unknown"  # a boot whose start was not seen (the stream began mid-run)
    kernel: str = ""
    before_salvage: str = ""
    phases: list[tuple[str, int]] = field(default_factory=list)  # (phase, line) in order
    counts: dict[str, int] = field(default_factory=dict)
    worst_severity: str = "info"
    failed_services: list[str] = field(default_factory=list)
    salvage: str = ""  # "", "running", "done"
    end_line: int | None = None
    ended_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "phase": self.phase,
            "kernel": self.kernel,
            "phases": [{"phase": p, "line": n} for p, n in self.phases],
            "events": dict(sorted(self.counts.items())),
            "worst_severity": self.worst_severity,
            "failed_services": self.failed_services,
            "salvage": self.salvage,
            "ended_by": self.ended_by,
            "healthy": self.phase == "login-ready" and SEVERITY_RANK[self.worst_severity] < SEVERITY_RANK["warning"],
        }


# the kinds that can start a boot or change a phase (``feed`` looks further only at these)
_PHASE_KINDS = frozenset({
    "boot.firmware", "boot.loader", "boot.start", "init.start", "afs.start", "afs.salvage.start",
    "afs.salvage.progress", "afs.salvage.done", "service.ok", "service.fail", "login.prompt", "kernel.panic",
    "kernel.restart", "sysrq.ack", "console.silent",
})


_SERVICE_PHASES = ("init", "afs", "kernel")  # the phases a service line moves on to "services"
MAX_BOOTS = 100  # the boots a timeline keeps (the older ones are counted, not kept)


def _counted_only(k: str, fields: dict[str, str], boot: Boot) -> bool:
    """Would ``Timeline.feed`` of this phase kind, in the current boot, only count it (no boot, no phase change)?"""
    phase = boot.phase
    if k == "service.ok":
        return phase not in _SERVICE_PHASES
    if k == "login.prompt":
        return phase in ("login-ready", "panicked")
    if k == "afs.salvage.progress":
        return boot.salvage == "done" or (boot.salvage == "running" and phase == "salvaging")
    if k == "afs.start":
        return phase in ("afs", "salvaging")
    if k == "afs.salvage.done":
        return boot.salvage == "done" and phase != "salvaging"
    if k == "kernel.panic":
        return phase == "panicked"
    if k == "sysrq.ack":
        return not fields.get("action", "").startswith(("Resetting", "Power Off"))
    return False


_timeline_feed: Callable[[Timeline, list[Hit]], None] | None
try:
    from consolebot._fastpath import timeline_feed as _timeline_feed
except ImportError:  # not built (no C compiler at install): the same in Python
    _timeline_feed = None


class Timeline:
    """Given events in order, keep the boots and the current phase."""

    def __init__(self, max_boots: int = MAX_BOOTS) -> None:
        self.boots: list[Boot] = []  # the last ``max_boots`` (a capture runs for months: its memory is bounded)
        self.max_boots = max_boots
        self.boots_dropped = 0  # the older boots no longer kept
        self._worst_dropped = "info"  # the worst severity among them
        self._restarting = False

    @property
    def current(self) -> Boot | None:
        return self.boots[-1] if self.boots else None

    @property
    def phase(self) -> str:
        return self.current.phase if self.current else "down"

    def _new_boot(self, line: int) -> Boot:
        cur = self.current
        if cur is not None and cur.end_line is None:
            cur.end_line = line - 1
            cur.ended_by = cur.ended_by or "a new boot"
        boot = Boot(self.boots_dropped + len(self.boots) + 1, line)
        self.boots.append(boot)
        if len(self.boots) > self.max_boots:
            drop = len(self.boots) - self.max_boots
            for old in self.boots[:drop]:
                if SEVERITY_RANK[old.worst_severity] > SEVERITY_RANK[self._worst_dropped]:
                    self._worst_dropped = old.worst_severity
            del self.boots[:drop]
            self.boots_dropped += drop
        self._restarting = False
        return boot

    def _set(self, boot: Boot, phase: str, line: int) -> str | None:
        if boot.phase == phase:
            return None
        boot.phase = phase
        boot.phases.append((phase, line))
        return phase

    def feed_all(self, hits: list[Hit]) -> None:
        """``feed`` each event (the phase changes are not returned), given as hits (``Classifier.feed_hits``,
        ``events.as_hits``): no event object is made, and one that changes no phase costs little.

        ``consolebot._fastpath.timeline_feed`` takes the same steps in C, when it was built (``feed_all_py``).
        """
        if _timeline_feed is not None:
            _timeline_feed(self, hits)
        else:
            self.feed_all_py(hits)

    def feed_all_py(self, hits: Iterable[Hit]) -> None:
        """``feed_all`` in Python."""
        boots = self.boots
        boot: Boot | None = None
        counts: dict[str, int] = {}
        worst = 0
        rank = SEVERITY_RANK
        for hit in hits:
            attrs = hit[1]
            k = attrs["kind"]
            if boot is None:
                if not boots:
                    self._take(k, attrs["severity"], attrs["fields"], hit[0])
                    continue
                boot = boots[-1]
                counts = boot.counts
                worst = rank[boot.worst_severity]
            if k in _PHASE_KINDS:
                if k == "service.ok" or k == "service.fail":  # the most frequent: a phase change only early on
                    if boot.phase in _SERVICE_PHASES:
                        self._take(k, attrs["severity"], attrs["fields"], hit[0])
                        boot = None
                        continue
                    if k == "service.fail":
                        svc = attrs["fields"].get("service")
                        if svc and svc not in boot.failed_services:
                            boot.failed_services.append(svc)
                elif not _counted_only(k, attrs["fields"], boot):
                    self._take(k, attrs["severity"], attrs["fields"], hit[0])
                    boot = None  # it may have started a boot or changed the worst severity
                    continue
            counts[k] = counts.get(k, 0) + 1
            sev = attrs["severity"]
            if sev != "info" and rank.get(sev, 0) > worst:
                boot.worst_severity = sev
                worst = rank[sev]

    def feed(self, ev: Event) -> str | None:
        """Take one event; return the new phase when it changed."""
        return self._take(ev.kind, ev.severity, ev.fields, ev.line)

    def _take(self, k: str, severity: str, fields: dict[str, str], line: int) -> str | None:
        """``feed`` an event of kind ``k`` on ``line``."""
        if k not in _PHASE_KINDS:
            # most events (service.ok, benign, prompts ...): counted and ranked, the phase stays
            boots = self.boots
            boot = boots[-1] if boots else self._new_boot(line)
            counts = boot.counts
            counts[k] = counts.get(k, 0) + 1
            if severity != "info" and SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK[boot.worst_severity]:
                boot.worst_severity = severity
            return None
        cur = self.current
        fresh = cur is not None and cur.phase == "unknown" and not cur.phases  # nothing seen yet: reuse it
        past_kernel = cur is not None and cur.phase not in ("unknown", "down", "firmware")
        if k in ("boot.firmware", "boot.loader", "boot.start") and not (fresh and not self._restarting):
            if cur is None or self._restarting or cur.end_line is not None or (past_kernel and cur.phase != "kernel") or (
                k == "boot.start" and past_kernel
            ):
                cur = self._new_boot(line)
        elif k == "init.start" and (cur is None or self._restarting):
            cur = self._new_boot(line)
        if cur is None:
            cur = self._new_boot(line)
        cur.counts[k] = cur.counts.get(k, 0) + 1
        if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK[cur.worst_severity]:
            cur.worst_severity = severity
        changed: str | None = None
        if k in ("boot.firmware", "boot.loader"):
            changed = self._set(cur, "firmware", line)
        elif k == "boot.start":
            cur.kernel = fields.get("kernel", "")
            changed = self._set(cur, "kernel", line)
        elif k == "init.start":
            changed = self._set(cur, "init", line)
        elif k == "afs.start" and cur.phase not in ("salvaging",):
            changed = self._set(cur, "afs", line)
        elif k in ("afs.salvage.start", "afs.salvage.progress"):
            if cur.salvage != "done" or k == "afs.salvage.start":
                cur.salvage = "running"
                if cur.phase != "salvaging":
                    cur.before_salvage = cur.phase
                changed = self._set(cur, "salvaging", line)
        elif k == "afs.salvage.done":
            cur.salvage = "done"
            if cur.phase == "salvaging":
                back = cur.before_salvage if cur.before_salvage not in ("", "unknown") else "afs"
                changed = self._set(cur, back, line)
        elif k in ("service.ok", "service.fail") and cur.phase in _SERVICE_PHASES:
            changed = self._set(cur, "services", line)
        elif k == "login.prompt" and cur.phase not in ("panicked",):
            changed = self._set(cur, "login-ready", line)
        elif k == "kernel.panic":
            changed = self._set(cur, "panicked", line)
        elif k == "kernel.restart" or (k == "sysrq.ack" and fields.get("action", "").startswith(("Resetting", "Power Off"))):
            cur.end_line = line
            cur.ended_by = fields.get("action", k)
            self._restarting = True
            changed = self._set(cur, "down", line)
        elif k == "console.silent" and cur.phase not in ("login-ready", "down"):
            changed = self._set(cur, "hung", line)
        if k == "service.fail":
            svc = fields.get("service")
            if svc and svc not in cur.failed_services:
                cur.failed_services.append(svc)
        return changed

    def summary(self) -> dict[str, Any]:
        worst = self._worst_dropped
        for b in self.boots:
            if SEVERITY_RANK[b.worst_severity] > SEVERITY_RANK[worst]:
                worst = b.worst_severity
        out: dict[str, Any] = {"boots": [b.to_json() for b in self.boots], "worst_severity": worst, "phase": self.phase}
        if self.boots_dropped:
            out["boots_dropped"] = self.boots_dropped  # the boots before these (their worst severity is counted)
        return out
