"""Magic SysRq: BREAK plus a key, each confirmed by the kernel's acknowledgement.

The kernel takes the key within about 5 s of a BREAK, and each key needs its own
BREAK. A key is confirmed only by ``sysrq.ack`` ("Emergency Sync", "Emergency
Remount R/O", "Resetting"); "complete" lines are awaited a few seconds at most
(a hung I/O path may never complete them). "This sysrq operation is disabled."
is reported as disabled. No acknowledgement within the deadline is "not
delivered": the BREAK was swallowed on the way, or kernel.sysrq=0 and the key
reached the tty; then no further key is sent, the line is cleared with Ctrl-U,
and success is never claimed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from consolebot.actions.console import Console
from consolebot.errors import PromptTimeout
from consolebot.recognise.events import Event

ACK_KINDS = ("sysrq.ack", "sysrq.disabled", "sysrq.help")
COMPLETES = {"s": "Emergency Sync", "u": "Emergency Remount"}
KEY_ACTIONS = {
    "b": ("Resetting",),
    "s": ("Emergency Sync",),
    "u": ("Emergency Remount",),
    "o": ("Power Off",),
    "e": ("Terminate All Tasks",),
    "i": ("Kill All Tasks",),
    "t": ("Show State",),
    "w": ("Show Blocked State",),
    "m": ("Show Memory",),
    "c": ("Trigger a crash",),
    "l": ("Show backtrace",),
    "r": ("Keyboard mode",),
    "n": ("Nice All RT Tasks",),
}


@dataclass(frozen=True)
class SysrqResult:
    key: str
    outcome: str  # "ack", "disabled", "help" (the key is not bound), "not-delivered"
    action: str = ""
    line: int | None = None
    completed: bool | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ack"


def send_sysrq(console: Console, keys: str, ack_timeout_s: float = 2.5, complete_wait_s: float = 3.0) -> list[SysrqResult]:
    """Send BREAK + key for each key; stop at the first key that is not acknowledged.

    Return one result per key tried (the last may be disabled or not delivered).
    """
    results: list[SysrqResult] = []
    for key in keys:
        mark = console.mark()
        started = time.monotonic()
        if getattr(console.session.transport, "at_line_start", True) is False:
            # The client reads its break escape only at a line start, and would send the Enter that gets it
            # there together with the BREAK: the Enter could then arrive as the SysRq key. Send it first.
            console.session.sendline()
            console.quiet(0.3, 1.5)
            mark = console.mark()
        console.session.send_break()
        console.session.send(key)
        try:
            ev = console.wait_for(ACK_KINDS, ack_timeout_s, since=mark)
        except PromptTimeout:
            console.session.send(b"\x15")  # Ctrl-U: the key may have reached the tty's line
            res = SysrqResult(key, "not-delivered", elapsed_s=round(time.monotonic() - started, 3))
            console.act("sysrq", key=key, outcome=res.outcome, elapsed_s=res.elapsed_s,
                        detail="no acknowledgement: BREAK swallowed on the way, or kernel.sysrq=0")
            results.append(res)
            break
        if ev.kind == "sysrq.disabled":
            res = SysrqResult(key, "disabled", line=ev.line, elapsed_s=round(time.monotonic() - started, 3))
        elif ev.kind == "sysrq.help":
            res = SysrqResult(key, "help", line=ev.line, elapsed_s=round(time.monotonic() - started, 3))
        else:
            action = ev.fields.get("action", "")
            completed: bool | None = None
            if key in COMPLETES:
                wanted = COMPLETES[key]

                def is_done(e: Event, wanted: str = wanted) -> bool:
                    return e.fields.get("action", "").startswith(wanted)

                try:
                    console.wait_for(["sysrq.done"], complete_wait_s, since=mark, predicate=is_done)
                    completed = True
                except PromptTimeout:
                    completed = False  # a hung I/O path may never complete it; the ack is what counts
            expected = KEY_ACTIONS.get(key, ())
            if expected and not action.startswith(expected):
                # an acknowledgement for something else: do not count it as this key's
                res = SysrqResult(key, "not-delivered", action, ev.line, None, round(time.monotonic() - started, 3))
            else:
                res = SysrqResult(key, "ack", action, ev.line, completed, round(time.monotonic() - started, 3))
        console.act("sysrq", key=key, outcome=res.outcome, action=res.action, evidence_line=res.line,
                    completed=res.completed, elapsed_s=res.elapsed_s)
        results.append(res)
        if not res.ok:
            break
    return results
