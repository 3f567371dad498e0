"""Magic SysRq as Linux drivers/tty/sysrq.c (drivers/char/sysrq.c before 2.6.36) answers it.

The wording follows the platform's kernel: ``SysRq : `` (<= 3.18), ``sysrq: SysRq : `` (3.19-5.5),
``sysrq: `` (>= 5.6). ``kernel.sysrq`` is a bit mask (1 = everything, 0 = off: the kernel says
nothing and the key reaches the tty). An unbound key prints the help line whatever the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

# Linux SysRq enable bits (Documentation/admin-guide/sysrq.rst).
SYSRQ_LOG = 0x2
SYSRQ_KEYBOARD = 0x4
SYSRQ_DUMP = 0x8
SYSRQ_SYNC = 0x10
SYSRQ_REMOUNT = 0x20
SYSRQ_SIGNAL = 0x40
SYSRQ_BOOT = 0x80
SYSRQ_RTNICE = 0x100

WINDOW_S = 5.0  # the kernel takes the key within 5 s of a BREAK

# key -> (enable bit, action message)
KEYS: dict[str, tuple[int, str]] = {
    "b": (SYSRQ_BOOT, "Resetting"),
    "o": (SYSRQ_BOOT, "Power Off"),
    "s": (SYSRQ_SYNC, "Emergency Sync"),
    "u": (SYSRQ_REMOUNT, "Emergency Remount R/O"),
    "j": (SYSRQ_SYNC, "Emergency Thaw of all frozen filesystems"),
    "e": (SYSRQ_SIGNAL, "Terminate All Tasks"),
    "i": (SYSRQ_SIGNAL, "Kill All Tasks"),
    "f": (SYSRQ_SIGNAL, "Manual OOM execution"),
    "k": (SYSRQ_KEYBOARD, "SAK"),
    "r": (SYSRQ_KEYBOARD, "Keyboard mode set to system default"),
    "t": (SYSRQ_DUMP, "Show State"),
    "w": (SYSRQ_DUMP, "Show Blocked State"),
    "m": (SYSRQ_DUMP, "Show Memory"),
    "l": (SYSRQ_DUMP, "Show backtrace of all active CPUs"),
    "p": (SYSRQ_DUMP, "Show Regs"),
    "q": (SYSRQ_DUMP, "Show clockevent devices & pending hrtimers (no others)"),
    "z": (SYSRQ_DUMP, "Dump ftrace buffer"),
    "c": (SYSRQ_DUMP, "Trigger a crash"),
    "n": (SYSRQ_RTNICE, "Nice All RT Tasks"),
}

HELP_NEW = (
    "HELP : loglevel(0-9) reboot(b) crash(c) terminate-all-tasks(e) memory-full-oom-kill(f) kill-all-tasks(i) "
    "thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) show-memory-usage(m) nice-all-RT-tasks(n) "
    "poweroff(o) show-registers(p) show-all-timers(q) unraw(r) sync(s) show-task-states(t) unmount(u) "
    "show-blocked-tasks(w) dump-ftrace-buffer(z) "
)
HELP_OLD = (
    "HELP : loglevel(0-9) reBoot Crashdump terminate-all-tasks(E) memory-full-oom-kill(F) kill-all-tasks(I) saK "
    "show-backtrace-all-active-cpus(L) show-memory-usage(M) nice-all-RT-tasks(N) powerOff show-registers(P) "
    "show-all-timers(Q) unRaw Sync show-task-states(T) Unmount show-blocked-tasks(W) dumpZ-ftrace-buffer "
)


@dataclass(frozen=True)
class SysrqAnswer:
    """What the kernel does with a key after a BREAK."""

    consumed: bool  # False: the key reaches the tty (kernel.sysrq = 0)
    lines: tuple[str, ...] = ()  # kernel messages (without timestamps), printed at once
    action: str = ""  # "b", "o", "s", "u", "c", "e", "i", digit... when enabled; "" otherwise
    disabled: bool = False


def enabled(mask: int, bit: int) -> bool:
    return mask == 1 or bool(mask & bit)


def answer(key: str, mask: int, prefix: str) -> SysrqAnswer:
    """Given a key, the ``kernel.sysrq`` mask and the platform's prefix, return the kernel's answer."""
    if mask == 0:
        return SysrqAnswer(consumed=False)
    loglevel_prefix = "" if prefix == "SysRq : " else "sysrq: "
    if key.isdigit():
        if not enabled(mask, SYSRQ_LOG):
            return SysrqAnswer(True, (f"{prefix}This sysrq operation is disabled.",), disabled=True)
        return SysrqAnswer(True, (f"{prefix}Changing Loglevel", f"{loglevel_prefix}Loglevel set to {key}"), key)
    if key in KEYS:
        bit, msg = KEYS[key]
        if not enabled(mask, bit):
            return SysrqAnswer(True, (f"{prefix}This sysrq operation is disabled.",), disabled=True)
        return SysrqAnswer(True, (f"{prefix}{msg}",), key)
    help_text = HELP_OLD if prefix == "SysRq : " else HELP_NEW
    return SysrqAnswer(True, (f"{prefix}{help_text}",))
