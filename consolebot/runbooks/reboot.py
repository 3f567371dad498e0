"""The reboot ladder: each rung only when the previous one produced no reboot evidence.

1. nudge: the host is hung only after at least 3 pokes over 3 s without a prompt (a fresh
   SOL session loses its first burst); a live prompt ends the ladder with "alive".
2. SysRq s, u, b as one rung.
3. NMI (``diag``), only when configured, for a crash dump.
4. power reset. 5. power cycle (4 and 5 only with ``allow_power``).

Reboot evidence is ``boot.start``, or for quiet kernels firmware, boot-loader or init
lines, or a new login prompt after the act. The identity is checked before the first
destructive act. Every rung, its evidence and its timing go to the transcript and the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from consolebot.actions.console import Console
from consolebot.actions.identity import Identity, check_identity
from consolebot.actions.sysrq import send_sysrq
from consolebot.errors import ConsoleBotError, PromptTimeout
from consolebot.inventory.model import Host
from consolebot.power.base import PowerBackend

PROMPTS = ("login.prompt", "shell.prompt", "login.password_prompt")
REBOOT_EVIDENCE = ("boot.start", "boot.firmware", "boot.loader", "init.start", "login.prompt")
RUNGS = {1: "nudge", 2: "sysrq", 3: "nmi", 4: "power-reset", 5: "power-cycle"}


@dataclass
class LadderOptions:
    allow_power: bool = False
    max_rung: int = 5
    nmi: bool = False
    assume_identity: bool = False
    pokes: int = 3
    poke_interval_s: float = 1.0
    reboot_timeout_s: float = 120.0


@dataclass
class RungResult:
    rung: int
    name: str
    outcome: str  # alive, hung, rebooted, not-delivered, disabled, no-evidence, refused, skipped, failed
    evidence: str = ""
    line: int | None = None
    elapsed_s: float = 0.0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LadderResult:
    outcome: str  # alive, rebooted, not-rebooted
    rungs: list[RungResult] = field(default_factory=list)
    identity: Identity | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "rungs": [r.to_json() for r in self.rungs],
            "identity": None if self.identity is None else {"method": self.identity.method, "value": self.identity.value,
                                                              "evidence": self.identity.describe()},
        }


def nudge(console: Console, pokes: int = 3, interval_s: float = 1.0) -> RungResult:
    """Poke Enter ``pokes`` times, ``interval_s`` apart, until a prompt answers."""
    started = time.monotonic()
    mark = console.mark()
    for i in range(max(3, pokes)):
        console.session.sendline()
        try:
            ev = console.wait_for(PROMPTS, interval_s, since=mark)
            console.act("nudge", pokes=i + 1, outcome="alive", evidence=ev.kind, evidence_line=ev.line)
            return RungResult(1, "nudge", "alive", ev.kind, ev.line, round(time.monotonic() - started, 3),
                              f"prompt after {i + 1} poke(s)")
        except PromptTimeout:
            continue
    elapsed = round(time.monotonic() - started, 3)
    console.act("nudge", pokes=max(3, pokes), outcome="hung", elapsed_s=elapsed)
    return RungResult(1, "nudge", "hung", elapsed_s=elapsed, detail=f"no prompt after {max(3, pokes)} pokes over {elapsed:.1f} s")


def await_reboot(console: Console, since: int, timeout_s: float) -> tuple[str, int] | None:
    """Wait for reboot evidence after event index ``since``; return (kind, line) or None."""
    try:
        ev = console.wait_for(REBOOT_EVIDENCE, timeout_s, since=since)
    except PromptTimeout:
        return None
    return ev.kind, ev.line


def run_ladder(console: Console, host: Host, power: PowerBackend | None, opts: LadderOptions) -> LadderResult:
    result = LadderResult("not-rebooted")
    r1 = nudge(console, opts.pokes, opts.poke_interval_s)
    result.rungs.append(r1)
    if r1.outcome == "alive":
        result.outcome = "alive"
        return result
    if opts.max_rung < 2:
        return result
    result.identity = check_identity(console, host, power, opts.assume_identity)
    console.act("identity", method=result.identity.method, value=result.identity.value,
                evidence=result.identity.describe())
    # rung 2: SysRq s, u, b
    started = time.monotonic()
    mark = console.mark()
    keys = send_sysrq(console, "sub")
    last = keys[-1]
    if last.key == "b" and last.ok:
        ev = await_reboot(console, mark, opts.reboot_timeout_s)
        outcome = "rebooted" if ev else "no-evidence"
        r2 = RungResult(2, "sysrq", outcome, ev[0] if ev else "sysrq.ack Resetting", ev[1] if ev else last.line,
                        round(time.monotonic() - started, 3),
                        "; ".join(f"{k.key}: {k.outcome} {k.action}".strip() for k in keys))
    else:
        r2 = RungResult(2, "sysrq", last.outcome, "", last.line, round(time.monotonic() - started, 3),
                        f"key {last.key!r} {last.outcome}; " + "; ".join(f"{k.key}: {k.outcome}" for k in keys))
    console.act("rung", **r2.to_json())
    result.rungs.append(r2)
    if r2.outcome == "rebooted":
        result.outcome = "rebooted"
        return result
    for rung, act in ((3, "diag"), (4, "reset"), (5, "cycle")):
        if rung > opts.max_rung:
            break
        if rung == 3 and not opts.nmi:
            continue
        if not opts.allow_power:
            r = RungResult(rung, RUNGS[rung], "skipped", detail="power acts need --allow-power")
            result.rungs.append(r)
            console.act("rung", **r.to_json())
            break
        if power is None:
            r = RungResult(rung, RUNGS[rung], "skipped", detail="no power backend for this host (no [bmc] in the inventory)")
            result.rungs.append(r)
            console.act("rung", **r.to_json())
            break
        started = time.monotonic()
        mark = console.mark()
        try:
            pr = power.act(act)
        except ConsoleBotError as exc:
            r = RungResult(rung, RUNGS[rung], "failed", detail=str(exc), elapsed_s=round(time.monotonic() - started, 3))
            result.rungs.append(r)
            console.act("rung", **r.to_json())
            continue
        ev = await_reboot(console, mark, opts.reboot_timeout_s)
        r = RungResult(rung, RUNGS[rung], "rebooted" if ev else "no-evidence", ev[0] if ev else pr.evidence,
                       ev[1] if ev else None, round(time.monotonic() - started, 3), pr.detail)
        result.rungs.append(r)
        console.act("rung", **r.to_json())
        if ev:
            result.outcome = "rebooted"
            return result
    return result
