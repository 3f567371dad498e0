"""The commands of a simulated host, in the output formats of the real tools.

Sources: ``tests/fixtures/transcripts/`` (bos_status_variants.txt, sv_and_initd_outputs.txt, SOURCES.md):
OpenAFS ``bos``, runit ``sv`` (captured), the Debian init scripts through /lib/lsb/init-functions,
procps ``ps``/``pgrep``, psmisc ``killall``, util-linux ``dmesg``, systemd 252 ``systemctl``. The domtool
wording (``domtool``, ``domtool-admin ping``, ``domtool-dnscheck``) is invented, as all domtool text is.
Nothing here runs anything on the machine hosting the simulator.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from consolebot.lab import afs
from consolebot.lab.platforms import Lsb
from consolebot.lab.services import Service, describe
from consolebot.lab.shell import Shell, Writer
from consolebot.lab.sysrq import answer as sysrq_answer

if TYPE_CHECKING:
    from consolebot.lab.machine import Machine

Cmd = Callable[["MachineSystem", Shell, list[str], str, Writer, Writer], Awaitable[int]]

NO_SYSTEMD = ("System has not been booted with systemd as init system (PID 1). Can't operate.\n"
              "Failed to connect to bus: Host is down\n")
STALE_SERIAL = "2024051401"
FRESH_SERIAL = "2024051403"
ZONES = ("hcoop.net", "example.org")
LOGLEVEL_NAMES = {"emerg": 1, "alert": 2, "crit": 3, "err": 4, "warn": 5, "notice": 6, "info": 7, "debug": 8}


def comm_of(args: str) -> str:
    """The process name (comm) ps/pgrep/killall see for a command line."""
    words = args.split()
    if not words:
        return ""
    first = words[0]
    if first == "/bin/sh" and len(words) > 1:
        first = words[1]
    first = first.rstrip(":").rsplit("/", 1)[-1]
    return first.lstrip("-")


def bre_to_python(pattern: str) -> str:
    """grep's basic regular expression to Python's: ( ) | + ? { } are literal unless escaped."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "()|+?{}" else "\\" + n)
            i += 2
            continue
        out.append("\\" + c if c in "()|+?{}" else c)
        i += 1
    return "".join(out)


class MachineSystem:
    """Given a machine, run the shell's commands against its state. ``console``: a login on its
    serial console (else an SSH command: no tty)."""

    def __init__(self, machine: Machine, console: bool) -> None:
        self.m = machine
        self.console = console

    # -- System protocol ---------------------------------------------------------------------------
    def hostname(self) -> str:
        return self.m.console_hostname

    async def run(self, shell: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int | None:
        name = argv[0]
        base = name.rsplit("/", 1)[-1] if name.startswith("/") else name
        fn = COMMANDS.get(base)
        if fn is None and not name.startswith("/etc/init.d/"):
            return None
        if self.console:
            self.m.program_running += 1
        try:
            if name.startswith("/etc/init.d/"):
                return await self.initd(shell, name[len("/etc/init.d/"):], argv[1:], out, err, path=True)
            assert fn is not None
            return await fn(self, shell, argv, stdin, out, err)
        finally:
            if self.console:
                self.m.program_running -= 1

    def read_file(self, path: str) -> str | None:
        m = self.m
        p = m.platform
        fixed = {
            "/proc/sys/kernel/printk": f"{m.console_loglevel}\t4\t1\t7\n",
            "/proc/sys/kernel/sysrq": f"{m.sysrq_mask}\n",
            "/etc/hostname": f"{m.console_hostname}\n",
            "/etc/issue": f"Debian GNU/Linux {p.release} \\n \\l\n\n",
            "/proc/uptime": f"{m.uptime():.2f} {m.uptime() * 7.3:.2f}\n",
            "/proc/loadavg": "0.41 0.32 0.24 1/312 31337\n",
            "/proc/version": f"Linux version {p.kernel} {p.uname_v}\n",
        }
        if path in fixed:
            return fixed[path]
        if path.startswith("/var/log/openafs/SalvageLog") and m.fileserver is not None:
            lines = m.fileserver.salvage_log(path.endswith(".0"))
            return "".join(line + "\n" for line in lines)
        return m.files.get(path)

    def write_file(self, shell: Shell, path: str, data: str, append: bool) -> str | None:
        m = self.m
        value = data.strip()
        if path == "/proc/sys/kernel/sysrq":
            try:
                m.sysrq_mask = int(value, 0)
            except ValueError:
                return "echo: write error: Invalid argument"
            return None
        if path == "/proc/sys/kernel/printk":
            try:
                m.console_loglevel = int(value.split()[0])
            except (ValueError, IndexError):
                return "echo: write error: Invalid argument"
            return None
        if path == "/proc/sysrq-trigger":
            for key in value[:1]:
                ans = sysrq_answer(key, 1, m.platform.sysrq_prefix)  # the trigger file ignores the mask
                m.act("sysrq", key=key, via="sysrq-trigger")
                for line in ans.lines:
                    m.emit(m.kline(line))
                if ans.action:
                    m.loop_soon(functools.partial(m.sysrq_action, ans.action))
            return None
        if path.startswith("/proc/") or path.startswith("/sys/"):
            return f"{path}: Permission denied"
        m.files[path] = (m.files.get(path, "") if append else "") + data
        return None

    async def initd(self, shell: Shell, script: str, args: list[str], out: Writer, err: Writer, path: bool) -> int:
        return await run_initd(self, shell, script, args, out, err, path)

    # -- helpers ---------------------------------------------------------------------------------------
    def lsb(self, shell: Shell) -> Lsb:
        p = self.m.platform
        return p.shell_lsb_linux if shell.vars.get("TERM") == "linux" else p.shell_lsb

    async def delay(self, seconds: float) -> None:
        await asyncio.sleep(self.m.opts.scaled(seconds))

    def processes(self, shell: Shell | None) -> list[tuple[str, int, str, str, str, str]]:
        """(user, pid, tty, stat, start, command) of every process, in pid order."""
        m = self.m
        rows: list[tuple[str, int, str, str, str, str]] = []
        boot = "May14"
        init = "/sbin/init" if m.platform.systemd else "init [2]  "
        rows.append(("root", 1, "?", "Ss", boot, init))
        rows.append(("root", 2, "?", "S", boot, "[kthreadd]"))
        rows.append(("root", 14, "?", "S", boot, "[ksoftirqd/0]"))
        rows.append(("root", 412, "?", "S<", boot, "[afs_rxlistener]"))
        fs = m.fileserver
        if fs is not None and fs.bosserver:
            rows.append(("root", 2187, "?", "Ss", boot, "/usr/sbin/bosserver"))
            if fs.state == "salvaging":
                rows.append(("root", 2188, "?", "D", "08:03", afs.SALVAGER))
            elif fs.state == "running":
                rows.append(("root", 3120, "?", "Sl", "08:23", "/usr/lib/openafs/fileserver -p 123 -busyat 600 -rxpck "
                             "400 -s 1200 -l 1200 -cb 100000 -b 240 -vc 1200"))
                rows.append(("root", 3121, "?", "Sl", "08:23", "/usr/lib/openafs/volserver"))
        for pid, user, stat, args in m.services.processes():
            s = m.services.by_pid(pid)
            start = time.strftime("%H:%M", time.localtime(time.time() - (time.monotonic() - s.since))) if s else boot
            rows.append((user, pid, "?", stat, start, args))
        if m.shell is not None:
            tty = m.profile.tty
            rows.append(("root", m.shell.pid - 1, tty, "Ss", time.strftime("%H:%M"), "/bin/login -p --"))
            rows.append(("root", m.shell.pid, tty, "Ss", time.strftime("%H:%M"), "-bash"))
        elif m.userspace_up():
            rows.append(("root", 1893 if m.profile.name == "deleuze" else 611, m.profile.tty, "Ss+", boot,
                         f"/sbin/getty -L {m.profile.tty} 115200 vt102"))
        if shell is not None and not self.console:
            rows.append(("root", shell.pid - 1, "?", "Ss", time.strftime("%H:%M"), "sshd: root@notty"))
            rows.append(("root", shell.pid, "?", "Ss", time.strftime("%H:%M"), "bash -c"))
        rows.sort(key=lambda r: r[1])
        return rows


# -- generic text tools --------------------------------------------------------------------------------------
def _inputs(sys: MachineSystem, files: list[str], stdin: str, prog: str, err: Writer) -> tuple[str, int]:
    if not files:
        return stdin, 0
    text, status = "", 0
    for f in files:
        content = sys.read_file(f)
        if content is None:
            err(f"{prog}: {f}: No such file or directory\n")
            status = 1
            continue
        text += content
    return text, status


async def cmd_cat(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    text, status = _inputs(sys, [a for a in argv[1:] if not a.startswith("-")], stdin, "cat", err)
    out(text)
    return status


def _count(argv: list[str], default: int) -> tuple[int, list[str]]:
    n, rest = default, []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-n" and i + 1 < len(argv):
            n = int(argv[i + 1].lstrip("+-") or default)
            i += 2
            continue
        if re.fullmatch(r"-n?\d+", a):
            n = int(a.lstrip("-n"))
        elif not a.startswith("-") or a == "-":
            rest.append(a)
        i += 1
    return n, rest


async def cmd_head(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    n, files = _count(argv, 10)
    text, status = _inputs(sys, files, stdin, "head", err)
    out("".join(text.splitlines(True)[:n]))
    return status


async def cmd_tail(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    n, files = _count(argv, 10)
    text, status = _inputs(sys, files, stdin, "tail", err)
    lines = text.splitlines(True)
    out("".join(lines[-n:] if n else []))
    return status


async def cmd_wc(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    files = [a for a in argv[1:] if not a.startswith("-")]
    text, status = _inputs(sys, files, stdin, "wc", err)
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    counts = {"l": text.count("\n"), "w": len(text.split()), "c": len(text.encode())}
    shown = [str(counts[f]) for f in "lwc" if f in flags] or [f"{counts['l']:7d} {counts['w']:7d} {counts['c']:7d}"]
    out(" ".join(shown) + "\n")
    return status


async def cmd_grep(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    prog = argv[0].rsplit("/", 1)[-1]
    extended = prog == "egrep"
    fixed = prog == "fgrep"
    invert = ignore = count = quiet = whole_line = False
    pattern: str | None = None
    files: list[str] = []
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            pattern = args[i + 1]
            i += 2
            continue
        if a.startswith("-") and len(a) > 1 and pattern is None:
            for f in a[1:]:
                invert |= f == "v"
                ignore |= f == "i"
                count |= f == "c"
                quiet |= f == "q"
                whole_line |= f == "x"
                extended |= f == "E"
                fixed |= f == "F"
            i += 1
            continue
        if pattern is None:
            pattern = a
        else:
            files.append(a)
        i += 1
    if pattern is None:
        err(f"Usage: {prog} [OPTION]... PATTERNS [FILE]...\n")
        return 2
    text, status = _inputs(sys, files, stdin, prog, err)
    if fixed:
        rx = re.escape(pattern)
    elif extended:
        rx = pattern
    else:
        rx = bre_to_python(pattern)
    if whole_line:
        rx = f"^(?:{rx})$"
    try:
        compiled = re.compile(rx, re.IGNORECASE if ignore else 0)
    except re.error:
        err(f"{prog}: Unmatched ( or \\(\n")
        return 2
    hits = [line for line in text.splitlines(True) if bool(compiled.search(line.rstrip("\n"))) != invert]
    if count:
        out(f"{len(hits)}\n")
    elif not quiet:
        out("".join(h if h.endswith("\n") else h + "\n" for h in hits))
    if status and not hits:
        return 2
    return 0 if hits else 1


# -- identity and time -------------------------------------------------------------------------------------------
async def cmd_hostname(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    out(f"{sys.m.console_hostname}\n")
    return 0


async def cmd_uname(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    p = sys.m.platform
    flags = "".join(a.lstrip("-") for a in argv[1:])
    if "a" in flags:
        out(f"Linux {sys.m.console_hostname} {p.kernel} {p.uname_v} x86_64 GNU/Linux\n")
        return 0
    parts = []
    if "s" in flags or not flags:
        parts.append("Linux")
    if "n" in flags:
        parts.append(sys.m.console_hostname)
    if "r" in flags:
        parts.append(p.kernel)
    if "v" in flags:
        parts.append(p.uname_v)
    if "m" in flags:
        parts.append("x86_64")
    out(" ".join(parts) + "\n")
    return 0


async def cmd_uptime(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    up = int(sys.m.uptime())
    days, rest = divmod(up, 86400)
    hours, mins = rest // 3600, rest % 3600 // 60
    span = (f"{days} days, " if days else "") + (f"{hours:2d}:{mins:02d}" if hours else f"{mins} min")
    out(f" {time.strftime('%H:%M:%S')} up {span},  1 user,  load average: 0.41, 0.32, 0.24\n")
    return 0


async def cmd_date(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    out(time.strftime("%a %b %e %H:%M:%S %Z %Y") + "\n")
    return 0


async def cmd_id(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    out("root\n" if "-un" in argv or "-u" in argv and "-n" in argv else "uid=0(root) gid=0(root) groups=0(root)\n")
    return 0


async def cmd_whoami(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    out("root\n")
    return 0


async def cmd_tty(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if sys.console:
        out(f"/dev/{sys.m.profile.tty}\n")
        return 0
    out("not a tty\n")
    return 1


async def cmd_true(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    return 0


async def cmd_which(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    status = 0
    for a in argv[1:]:
        if a in COMMANDS:
            where = "/usr/sbin" if a in ("killall", "reboot", "sysctl", "halt", "poweroff") else "/usr/bin"
            out(f"{where}/{a}\n")
        else:
            status = 1
    return status


async def cmd_ls(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    m = sys.m
    listing = {
        "/etc/init.d": sorted({s.d.scripts[0] for s in m.services.all.values()}
                              | ({"openafs-fileserver"} if m.fileserver else set()) | {"openafs-client"}),
        "/etc/service": sorted(s.d.runit for s in m.services.all.values() if s.d.runit),
        "/var/log/openafs": ["BosLog", "FileLog", "SalvageLog", "SalvageLog.0"] if m.fileserver else [],
    }
    status = 0
    for a in [x for x in argv[1:] if not x.startswith("-")] or []:
        key = a.rstrip("/")
        if key in listing:
            out("  ".join(listing[key]) + ("\n" if listing[key] else ""))
        elif sys.read_file(a) is not None:
            out(a + "\n")
        else:
            err(f"ls: cannot access '{a}': No such file or directory\n")
            status = 2
    return status


# -- kernel ---------------------------------------------------------------------------------------------------------------
async def cmd_dmesg(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    m = sys.m
    args = argv[1:]
    level: str | None = None
    for i, a in enumerate(args):
        if a in ("-n", "--console-level") and i + 1 < len(args):
            level = args[i + 1]
        elif a.startswith("-n") and len(a) > 2:
            level = a[2:]
        elif a.startswith("--console-level="):
            level = a.split("=", 1)[1]
    if level is not None:
        value = LOGLEVEL_NAMES.get(level)
        if value is None:
            try:
                value = int(level)
            except ValueError:
                err(f"dmesg: unknown level '{level}'\n")
                return 1
        if not 1 <= value <= 8:
            err(f"dmesg: unknown level '{level}'\n")
            return 1
        m.console_loglevel = value
        m.act("dmesg-level", level=value)
        return 0
    if "-c" in args or "-C" in args:
        text = "\n".join(m.kmsg_ring) + ("\n" if m.kmsg_ring else "")
        m.kmsg_ring = []
        if "-c" in args:
            out(text)
        return 0
    out("\n".join(m.kmsg_ring) + ("\n" if m.kmsg_ring else ""))
    return 0


async def cmd_sysctl(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    status = 0
    for a in argv[1:]:
        if a.startswith("-"):
            continue
        key, eq, value = a.partition("=")
        path = "/proc/sys/" + key.replace(".", "/")
        if eq:
            problem = sys.write_file(sh, path, value, False)
            if problem:
                err(f"sysctl: setting key \"{key}\": Invalid argument\n")
                status = 1
                continue
        content = sys.read_file(path)
        if content is None:
            err(f"sysctl: cannot stat {path}: No such file or directory\n")
            status = 255
            continue
        out(f"{key} = {content.strip()}\n")
    return status


async def cmd_stty(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    m = sys.m
    if not sys.console:
        err("stty: 'standard input': Inappropriate ioctl for device\n")
        return 1
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-echo":
            m.tty_echo = False
        elif a in ("echo", "sane"):
            m.tty_echo = True
        elif a in ("cols", "columns", "rows") and i + 1 < len(args):
            try:
                value = int(args[i + 1])
            except ValueError:
                err(f"stty: invalid integer argument: '{args[i + 1]}'\n")
                return 1
            m.tty_size["rows" if a == "rows" else "cols"] = value
            i += 1
        elif a == "size":
            out(f"{m.tty_size['rows']} {m.tty_size['cols']}\n")
        elif a in ("-a", "--all"):
            out(f"speed 115200 baud; rows {m.tty_size['rows']}; columns {m.tty_size['cols']}; line = 0;\n"
                f"{'' if m.tty_echo else '-'}echo echoe echok -echonl icanon isig iexten\n")
        elif not re.fullmatch(r"-?[a-z0-9]+|\d+", a):
            err(f"stty: invalid argument '{a}'\nTry 'stty --help' for more information.\n")
            return 1
        i += 1
    return 0


async def cmd_sync(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    return 0


# -- processes ------------------------------------------------------------------------------------------------------------------
def _ps_table(sys: MachineSystem, sh: Shell, rows: list[tuple[str, int, str, str, str, str]], full: bool) -> str:
    w = sys.m.platform.procps_pid_width
    if full:
        lines = [f"{'UID':<8} {'PID':>{w}} {'PPID':>{w}}  C STIME TTY          TIME CMD"]
        for user, pid, tty, _stat, start, cmd in rows:
            lines.append(f"{user:<8} {pid:>{w}} {1:>{w}}  0 {start:>5} {tty:<8} 00:00:00 {cmd}")
        return "\n".join(lines) + "\n"
    lines = [f"{'USER':<8} {'PID':>{w}} %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
    for user, pid, tty, stat, start, cmd in rows:
        vsz = 9000 + pid * 37 % 250000
        rss = 800 + pid * 13 % 90000
        lines.append(f"{user:<8} {pid:>{w}} {0.0:>4.1f} {0.1:>4.1f} {vsz:>6} {rss:>5} {tty:<8} {stat:<4} {start:>5} "
                     f"{'0:00':>6} {cmd}")
    return "\n".join(lines) + "\n"


async def cmd_ps(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    rows = sys.processes(sh)
    me_tty = sys.m.profile.tty if sys.console else "?"
    rows.append(("root", 31337, me_tty, "R+" if sys.console else "R", time.strftime("%H:%M"), " ".join(argv)))
    args = argv[1:]
    if "-C" in args:
        i = args.index("-C")
        names = args[i + 1].split(",") if i + 1 < len(args) else []
        sel = [r for r in rows if comm_of(r[5]) in names]
        fmt = args[args.index("-o") + 1].split(",") if "-o" in args and args.index("-o") + 1 < len(args) else \
            ["pid", "tty", "time", "cmd"]
        heads = {"pid": "  PID", "stat": "STAT", "cmd": "CMD", "tty": "TT      ", "time": "    TIME", "comm": "CMD",
                 "args": "COMMAND", "user": "USER    "}
        out(" ".join(heads.get(f, f.upper()) for f in fmt).rstrip() + "\n")
        for user, pid, tty, stat, _start, cmd in sel:
            vals = {"pid": f"{pid:>5}", "stat": f"{stat:<4}", "cmd": cmd, "args": cmd, "comm": comm_of(cmd),
                    "tty": f"{tty:<8}", "time": "00:00:00", "user": f"{user:<8}"}
            out(" ".join(vals.get(f, "-") for f in fmt) + "\n")
        return 0 if sel else 1
    full = any(a.startswith("-") and "f" in a for a in args)
    out(_ps_table(sys, sh, rows, full))
    return 0


async def cmd_pgrep(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-") and len(a) > 1)
    pats = [a for a in argv[1:] if not a.startswith("-")]
    if not pats:
        err("pgrep: no matching criteria specified\nTry `pgrep --help' for more information.\n")
        return 2
    try:
        rx = re.compile(pats[0])
    except re.error:
        err(f"pgrep: invalid regular expression: {pats[0]}\n")
        return 2
    hits = []
    for _user, pid, _tty, _stat, _start, cmd in sys.processes(sh):
        target = cmd if "f" in flags else comm_of(cmd)
        ok = bool(rx.fullmatch(target)) if "x" in flags else bool(rx.search(target))
        if ok:
            hits.append((pid, cmd))
    if "c" in flags:
        out(f"{len(hits)}\n")
    else:
        for pid, cmd in hits:
            if "a" in flags:
                out(f"{pid} {cmd}\n")
            elif "l" in flags:
                out(f"{pid} {comm_of(cmd)}\n")
            else:
                out(f"{pid}\n")
    return 0 if hits else 1


def _signal_name(args: list[str]) -> tuple[str, list[str]]:
    sig = "TERM"
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-s" and i + 1 < len(args):
            sig = args[i + 1].upper().removeprefix("SIG")
            i += 2
            continue
        if a.startswith("-") and len(a) > 1 and a not in ("-q", "-w", "-v", "-e", "-I"):
            v = a[1:].upper().removeprefix("SIG")
            sig = {"9": "KILL", "15": "TERM", "1": "HUP", "2": "INT"}.get(v, v)
        elif a not in ("-q", "-w", "-v", "-e", "-I"):
            rest.append(a)
        i += 1
    return sig, rest


def _after_kill(sys: MachineSystem, hit: list[Service]) -> None:
    """runsv restarts a supervised service that died while wanted up (after a second)."""
    m = sys.m
    if any(s.d.runit and not s.running and not s.want_down for s in hit):
        async def respawn() -> None:
            await asyncio.sleep(m.opts.scaled(1.0))
            m.services.respawn_supervised()

        m.spawn(respawn())


async def cmd_killall(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    sig, names = _signal_name(argv[1:])
    quiet = "-q" in argv
    if not names:
        err("Usage: killall [OPTION]... [--] NAME...\n")
        return 1
    status = 0
    others = {comm_of(r[5]) for r in sys.processes(sh)}
    for name in names:
        hit = sys.m.services.kill_comm(name[:15], "KILL" if sig == "KILL" else "TERM")
        sys.m.act("killall", name=name, signal=sig, matched=[s.name for s in hit])
        if hit:
            _after_kill(sys, hit)
            continue
        if name in others:
            continue
        if not quiet:
            err(f"{name}: no process found\n")
        status = 1
    return status


async def cmd_kill(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if "-l" in argv:
        out(" 1) SIGHUP\t 2) SIGINT\t 3) SIGQUIT\t 9) SIGKILL\t15) SIGTERM\n")
        return 0
    sig, pids = _signal_name(argv[1:])
    status = 0
    known = {r[1] for r in sys.processes(sh)}
    for a in pids:
        try:
            pid = int(a)
        except ValueError:
            err(f"{sh.name}: kill: {a}: arguments must be process or job IDs\n")
            status = 1
            continue
        s = sys.m.services.by_pid(pid)
        if s is not None:
            sys.m.services.signal(s, "KILL" if sig == "KILL" else "TERM")
            sys.m.act("kill", pid=pid, signal=sig, service=s.name)
            _after_kill(sys, [s])
        elif pid not in known:
            err(f"{sh.name}: kill: ({pid}) - No such process\n")
            status = 1
    return status


# -- runit ---------------------------------------------------------------------------------------------------------
def sv_status(sys: MachineSystem, s: Service, name: str) -> str:
    secs = sys.m.sim_seconds(s.since)
    if s.running:
        text = f"run: {name}: (pid {s.pids[0]}) {secs}s"
        if s.want_down:
            text += ", want down"
        if s.got_term:
            text += ", got TERM"
        return text
    text = f"down: {name}: {secs}s, normally up"
    if not s.want_down:
        text += ", want up"
    return text


async def cmd_sv(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    args = argv[1:]
    wait_s = 7.0
    while args and args[0].startswith("-"):
        if args[0] == "-w" and len(args) > 1:
            try:
                wait_s = float(args[1])
            except ValueError:
                pass
            args = args[2:]
            continue
        args = args[1:]
    if len(args) < 2:
        err("usage: sv [-v] [-w sec] command service ...\n")
        return 100
    command, names = args[0], args[1:]
    failures = 0
    for name in names:
        failures += await sv_one(sys, command, name, wait_s, out, err)
    return min(failures, 99)


async def sv_one(sys: MachineSystem, command: str, name: str, wait_s: float, out: Writer, err: Writer) -> int:
    m = sys.m
    s = m.services.by_runit(name)
    label = name.rstrip("/")
    if s is None:
        out(f"fail: {label}: unable to change to service directory: file does not exist\n")
        return 1
    cmd = {"up": "start", "down": "stop", "t": "restart", "force-reload": "restart"}.get(command, command)
    m.act("sv", command=cmd, service=label)
    if cmd == "status":
        out(sv_status(sys, s, label) + "\n")
        return 0
    if cmd == "start":
        res = m.services.start(s)
        if not res.ok:
            await sys.delay(wait_s)
            out(f"timeout: {sv_status(sys, s, label)}\n")
            return 1
        if not res.already:
            m.service_started(s)
        out(f"ok: {sv_status(sys, s, label)}\n")
        return 0
    if cmd in ("stop", "force-stop", "force-shutdown", "shutdown"):
        gone = m.services.stop(s)
        if gone:
            out(f"ok: {sv_status(sys, s, label)}\n")
            return 0
        await sys.delay(wait_s)
        if cmd.startswith("force"):
            line = sv_status(sys, s, label)
            m.services.signal(s, "KILL")
            out(f"kill: {line}\n")
            return 0
        out(f"timeout: {sv_status(sys, s, label)}\n")
        return 1
    if cmd in ("restart", "force-restart"):
        gone = m.services.signal(s, "TERM")
        if not gone:
            await sys.delay(wait_s)
            if cmd == "force-restart":
                m.services.signal(s, "KILL")
            else:
                s.want_down = False
                out(f"timeout: {sv_status(sys, s, label)}\n")
                return 1
        s.want_down = False
        res = m.services.start(s)
        if not res.ok:
            await sys.delay(wait_s)
            out(f"timeout: {sv_status(sys, s, label)}\n")
            return 1
        m.service_started(s)
        out(f"ok: {sv_status(sys, s, label)}\n")
        return 0
    if cmd in ("kill", "k"):
        m.services.signal(s, "KILL")
        _after_kill(sys, [s])
        return 0
    if cmd in ("term", "t", "interrupt", "hup", "alarm", "cont", "pause"):
        if cmd == "term":
            m.services.signal(s, "TERM")
            _after_kill(sys, [s])
        return 0
    if cmd == "check":
        ok = s.running != s.want_down
        out(f"{'ok' if ok else 'timeout'}: {sv_status(sys, s, label)}\n")
        return 0 if ok else 1
    err("usage: sv [-v] [-w sec] command service ...\n")
    return 100


# -- init scripts -----------------------------------------------------------------------------------------------------------
async def initd_fileserver(sys: MachineSystem, action: str, out: Writer, err: Writer) -> int:
    fs = sys.m.fileserver
    assert fs is not None
    if action == "status":
        out("bosserver is running\n" if fs.bosserver else "bosserver is not running\n")
        return 0 if fs.bosserver else 3
    if action in ("stop", "restart", "force-reload"):
        fs.stop()
        sys.m.act("fileserver", action="stop")
    if action in ("start", "restart", "force-reload"):
        if not fs.bosserver:
            fs.start(fs.needs_salvage, sys.m.opts.salvage_seconds)
            if fs.state == "salvaging":
                sys.m.spawn(sys.m._salvage_watch())
        sys.m.act("fileserver", action="start", state=fs.state)
    if action not in ("start", "stop", "restart", "force-reload"):
        err("Usage: /etc/init.d/openafs-fileserver {start|stop|restart|force-reload|status}\n")
        return 1
    return 0


async def initd_client(sys: MachineSystem, action: str, out: Writer, err: Writer) -> int:
    if action in ("stop", "restart"):
        out("Stopping AFS services: afsd openafs.\n")
    if action in ("start", "restart"):
        out("Starting AFS services: openafs afsd.\nafsd: All AFS daemons started.\n")
    if action == "status":
        out("AFS client is running\n")
    return 0


async def initd_ssh(sys: MachineSystem, sh: Shell, action: str, s: Service, out: Writer) -> int:
    lsb = sys.lsb(sh)
    verb = {"start": "Starting", "stop": "Stopping", "restart": "Restarting", "reload": "Reloading"}.get(action)
    if action == "status":
        out("sshd is running.\n" if s.running else "sshd is not running ... failed!\n")
        return 0 if s.running else 3
    if verb is None:
        out("Usage: /etc/init.d/ssh {start|stop|reload|force-reload|restart|try-restart|status}.\n")
        return 1
    if action in ("stop", "restart"):
        sys.m.services.stop(s)
    if action in ("start", "restart"):
        sys.m.services.start(s)
    out(lsb.begin(f"{verb} OpenBSD Secure Shell server: sshd") + lsb.end(True) + "\n")
    return 0


async def initd_systemd(sys: MachineSystem, sh: Shell, script: str, s: Service, action: str, out: Writer,
                        err: Writer) -> int:
    """Debian's init-functions hook on a systemd host: the script hands over to systemctl."""
    if action == "status":
        return await systemctl_status(sys, s, out)
    verb = {"start": "Starting", "stop": "Stopping", "restart": "Restarting", "reload": "Reloading",
            "force-reload": "Reloading"}.get(action)
    if verb is None:
        err(f"Usage: /etc/init.d/{script} {{start|stop|restart|reload|force-reload|status}}\n")
        return 1
    lsb = sys.m.platform.shell_lsb
    out(f"{verb} {script} (via systemctl): {s.d.unit}")
    status = await systemctl_act(sys, "restart" if action == "force-reload" else action, s, lambda _t: None)
    out(lsb.end(status == 0) + "\n")
    return status


async def cmd_service(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if len(argv) < 3:
        err("Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]\n")
        return 1
    if sys.m.platform.systemd:
        s = sys.m.services.by_script(argv[1]) or sys.m.services.by_unit(argv[1])
        if s is not None and argv[1] not in ("openafs-client",):
            if argv[2] == "status":
                return await systemctl_status(sys, s, out)
            return await systemctl_act(sys, argv[2], s, err)
    return await sys.initd(sh, argv[1], argv[2:], out, err, path=False)


async def run_initd(self: MachineSystem, sh: Shell, script: str, args: list[str], out: Writer, err: Writer,
                    path: bool) -> int:
    m = self.m
    action = args[0] if args else ""
    m.act("initd", script=script, action=action)
    if script == "openafs-fileserver" and m.fileserver is not None:
        return await initd_fileserver(self, action, out, err)
    if script == "openafs-client":
        return await initd_client(self, action, out, err)
    s = m.services.by_script(script)
    if s is None:
        if path:
            err(f"{sh.name}: /etc/init.d/{script}: No such file or directory\n")
            return 127
        err(f"{script}: unrecognized service\n")
        return 1
    if s.name == "ssh":
        return await initd_ssh(self, sh, action, s, out)
    if m.platform.systemd:
        return await initd_systemd(self, sh, script, s, action, out, err)
    if s.d.runit:  # /etc/init.d/NAME -> /usr/bin/sv (runit's LSB mode)
        if not action:
            err(f"usage: /etc/init.d/{script} command\n")
            return 100
        return await sv_one(self, action, s.d.runit, 7.0, out, err)
    lsb = self.lsb(sh)
    desc, daemon = describe(s.d, m.platform)
    if action == "status":
        if s.name == "postgres":
            out(f"{m.platform.pg}/main (port 5432): {'online' if s.running else 'down'}\n")
        elif s.running:
            out(f"{daemon} is running.\n")
        else:
            out(f"{daemon} is not running ... failed!\n")
        return 0 if s.running else 3
    if action in ("reload", "force-reload"):
        if not s.running:
            out(f"{daemon} is not running ... failed!\n")
            return 7
        out(f"Reloading {desc}: {daemon}.\n")
        return 0
    if action not in ("start", "stop", "restart"):
        err(f"Usage: /etc/init.d/{script} {{start|stop|restart|reload|force-reload|status}}\n")
        return 1
    verb = {"start": "Starting", "stop": "Stopping", "restart": "Restarting"}[action]
    head = lsb.begin(f"{verb} {desc}: {daemon}")
    if not (s.name == "courier-authdaemon" and not m.platform.courier_verbose and action == "stop"):
        out(head)
    gone = True
    if action in ("stop", "restart"):
        gone = m.services.stop(s)
        if not gone and m.services.faults.stuck == s.name:
            await self.delay(5.0)  # start-stop-daemon --retry TERM/30/KILL/5 gives up
            out(lsb.end(False) + "\n")
            return 1
        if action == "stop":
            text = m.init_line("stop", s, None, lsb, stopped=True)
            out(text[len(head):] if text.startswith(head) else text)
            return 0
    res = m.services.start(s)
    await self.delay({"mysql": 2.0, "postgres": 3.0 if not res.ok else 1.0}.get(s.name, 0.3))
    text = m.init_line(action, s, res, lsb)
    out(text[len(head):] if text.startswith(head) else text)
    if res.ok:
        if not res.already:
            m.service_started(s)
        return 0
    return 1



# -- systemctl ----------------------------------------------------------------------------------------------------------------
def _ago(secs: int) -> str:
    if secs < 60:
        return f"{secs}s ago"
    if secs < 3600:
        return f"{secs // 60}min ago"
    return f"{secs // 3600}h {secs % 3600 // 60}min ago"


async def systemctl_status(sys: MachineSystem, s: Service, out: Writer) -> int:
    secs = sys.m.sim_seconds(s.since)
    since = time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - (time.monotonic() - s.since)))
    if s.running:
        dot, active = "●", f"active (running) since {since}; {_ago(secs)}"
    elif s.failed:
        dot, active = "×", f"failed (Result: exit-code) since {since}; {_ago(secs)}"
    else:
        dot, active = "○", f"inactive (dead) since {since}; {_ago(secs)}" if s.started_at else "inactive (dead)"
    lines = [f"{dot} {s.d.unit} - {s.d.unit_desc}",
             f"     Loaded: loaded (/lib/systemd/system/{s.d.unit}; enabled; preset: enabled)",
             f"     Active: {active}"]
    if s.running:
        pg = sys.m.platform.pg
        cmds = [a.replace("{pg}", pg).replace("{mysqld}", sys.m.platform.mysql[1]) for _u, a in s.d.procs]
        lines += [f"   Main PID: {s.pids[0]} ({comm_of(cmds[0])})",
                  f"      Tasks: {len(s.pids)} (limit: 19011)",
                  "     Memory: 12.3M",
                  "        CPU: 312ms",
                  f"     CGroup: /system.slice/{s.d.unit}"]
        for i, (pid, cmd) in enumerate(zip(s.pids, cmds, strict=False)):
            lines.append(f"             {'└─' if i == len(s.pids) - 1 else '├─'}{pid} {cmd}")
    out("\n".join(lines) + "\n")
    return 0 if s.running else 3


async def systemctl_act(sys: MachineSystem, verb: str, s: Service, err: Writer) -> int:
    m = sys.m
    m.act("systemctl", verb=verb, unit=s.d.unit)
    if verb in ("stop", "restart", "try-restart", "reload-or-restart"):
        if verb == "try-restart" and not s.running:
            return 0
        if not m.services.stop(s):
            await sys.delay(90.0)  # TimeoutStopSec, then SIGKILL (which a D-state process ignores)
            m.services.signal(s, "KILL")
            if s.running:
                s.failed = True
                err(f"Job for {s.d.unit} failed because a timeout was exceeded.\n"
                    f"See \"systemctl status {s.d.unit}\" and \"journalctl -xeu {s.d.unit}\" for details.\n")
                return 1
        if verb == "stop":
            return 0
    if verb in ("start", "restart", "try-restart", "reload-or-restart", "reload"):
        if verb == "reload" and not s.running:
            err(f"{s.d.unit} is not active, cannot reload.\n")
            return 1
        res = m.services.start(s)
        await sys.delay(0.3)
        if not res.ok:
            err(f"Job for {s.d.unit} failed because the control process exited with error code.\n"
                f"See \"systemctl status {s.d.unit}\" and \"journalctl -xeu {s.d.unit}\" for details.\n")
            return 1
        if not res.already:
            m.service_started(s)
        return 0
    err(f"Unknown command verb {verb}.\n")
    return 1


async def cmd_systemctl(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    m = sys.m
    if not m.platform.systemd:
        err(NO_SYSTEMD)
        return 1
    args = [a for a in argv[1:] if not a.startswith("-")]
    if not args:
        out(f"  UNIT{'':36}LOAD   ACTIVE SUB     DESCRIPTION\n")
        for s in m.services.all.values():
            state = "active running" if s.running else ("failed failed " if s.failed else "inactive dead  ")
            out(f"  {s.d.unit:<40}loaded {state} {s.d.unit_desc}\n")
        return 0
    verb, units = args[0], args[1:]
    if not units:
        err("Too few arguments.\n")
        return 1
    status = 0
    for unit in units:
        svc = m.services.by_unit(unit)
        name = unit if "." in unit else unit + ".service"
        if svc is None:
            if verb in ("is-active", "is-failed"):
                out("inactive\n")
                status = 3 if verb == "is-active" else 1
            elif verb == "status":
                err(f"Unit {name} could not be found.\n")
                status = 4
            else:
                err(f"Failed to {verb} {name}: Unit {name} not found.\n")
                status = 5
            continue
        if verb == "is-active":
            out(("active" if svc.running else "failed" if svc.failed else "inactive") + "\n")
            status = status or (0 if svc.running else 3)
        elif verb == "is-failed":
            out(("failed" if svc.failed else "active" if svc.running else "inactive") + "\n")
            status = status or (0 if svc.failed else 1)
        elif verb == "status":
            status = max(status, await systemctl_status(sys, svc, out))
        else:
            status = max(status, await systemctl_act(sys, verb, svc, err))
    return status


# -- OpenAFS ------------------------------------------------------------------------------------------------------------
async def cmd_bos(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    args = argv[1:]
    if not args or args[0] != "status":
        err(f"bos: Unrecognized operation '{args[0] if args else ''}'; type 'bos help' for list\n")
        return 1
    rest = args[1:]
    host = None
    if "-server" in rest:
        i = rest.index("-server")
        host = rest[i + 1] if i + 1 < len(rest) else None
    else:
        host = next((a for a in rest if not a.startswith("-")), None)
    if host is None:
        err("bos: missing required parameter '-server'\n")
        return 1
    m = sys.m
    errw = out if m.platform.afs_twice else err  # OpenAFS 1.4 printed its errors on stdout
    if host in ("localhost", "127.0.0.1") or m.answers_to(host):
        target: Machine | None = m
    else:
        target = m.site.resolve(host)
    if target is None:
        if host.split(".")[0] in ("deleuze", "mire", "outpost") or host.endswith("-sim"):
            target = None  # a real site host that is not simulated here: assume it answers
            out("Instance fs, currently running normally.\n    Auxiliary status is: file server running.\n")
            return 0
        errw(f"bos: can't find address for host '{host}'\n")
        return 1
    if target.fileserver is None or not target.powered or target.state.value in ("hung", "panic", "off"):
        errw(afs.NOT_RESPONDING + "\n")
        return 1
    text, status = target.fileserver.bos_status(long="-long" in rest)
    (out if status == 0 else errw)(text)
    return status


# -- domtool (invented wording) -------------------------------------------------------------------------------------------
def _deleuze_ok(sys: MachineSystem) -> str:
    """'' when the domtool pipeline on Deleuze works, else the error a domtool client prints."""
    m = sys.m
    d = m.site.deleuze()
    if not m.afs_available():
        return "domtool: Unable to read /afs/example.org/common/etc/domtool/domtool.cfg: Connection timed out"
    if d is None:
        return ""
    server = d.services.get("domtool-server")
    pg = d.services.get("postgres")
    if not d.userspace_up() or server is None or not server.running:
        return "domtool: Error connecting to domtool-server at deleuze.hcoop.net: Connection refused"
    if server.broken:
        return "domtool: domtool-server at deleuze.hcoop.net: Connection timed out"
    if pg is None or not pg.running or pg.broken:
        return "domtool-server: Database error: could not connect to server: Connection refused"
    if server.started_at < pg.started_at:
        return "domtool-server: Database error: server closed the connection unexpectedly"
    return ""


async def cmd_domtool(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    files = [a for a in argv[1:] if not a.startswith("-")]
    if not files:
        err("Usage: domtool [-tc] FILE...\n")
        return 1
    problem = _deleuze_ok(sys)
    sys.m.act("domtool", args=argv[1:], ok=not problem)
    if problem:
        err(problem + "\n")
        return 1
    if "-tc" in argv:
        out("Typechecking succeeded.\n")
        return 0
    for host in ("mire", "outpost"):
        if not sys.m.site.slave_ok(host):
            err(f"domtool: Dispatching to {host}.hcoop.net failed: Connection timed out\n")
            return 1
    out("Configuration published.\n")
    return 0


async def cmd_domtool_admin(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer,
                            err: Writer) -> int:
    if argv[1:2] != ["ping"]:
        err("Usage: domtool-admin ping\n")
        return 1
    problem = _deleuze_ok(sys)
    lines = [f"deleuze.hcoop.net (domtool-server): {'ok' if not problem else 'FAILED: ' + problem}"]
    ok = not problem
    for host in ("mire", "outpost"):
        good = sys.m.site.slave_ok(host)
        ok = ok and good
        lines.append(f"{host}.hcoop.net (domtool-slave): {'ok' if good else 'not responding'}")
    out("\n".join(lines) + "\n")
    return 0 if ok else 1


# -- DNS and web checks (Outpost, Mire) ---------------------------------------------------------------------------------
def _named(sys: MachineSystem) -> Service | None:
    s = sys.m.services.get("bind9")
    return s if s is not None and s.running else None


async def cmd_dig(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if _named(sys) is None:
        out(";; connection timed out; no servers could be reached\n\n")
        return 9
    serial = STALE_SERIAL if sys.m.zones_stale else FRESH_SERIAL
    out(f"ns1.hcoop.net. hostmaster.hcoop.net. {serial} 10800 3600 604800 3600\n")
    return 0


async def cmd_dnscheck(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if _named(sys) is None:
        err("domtool-dnscheck: named is not answering on localhost\n")
        return 2
    stale = sys.m.zones_stale
    for zone in ZONES:
        if stale:
            out(f"{zone}: serial {STALE_SERIAL} here, {FRESH_SERIAL} on deleuze: STALE\n")
        else:
            out(f"{zone}: serial {FRESH_SERIAL}: up to date\n")
    return 1 if stale else 0


async def cmd_wget(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    s = sys.m.services.get("apache2")
    quiet = "-q" in argv or "--quiet" in argv
    if s is None or not s.running:
        if not quiet:
            err("Connecting to localhost (localhost)|127.0.0.1|:80... failed: Connection refused.\n")
        return 4
    if s.broken:
        if not quiet:
            err("HTTP request sent, awaiting response... 500 Internal Server Error\nERROR 500: Internal Server Error.\n")
        return 8
    if not quiet:
        err("HTTP request sent, awaiting response... 200 OK\n")
    return 0


async def cmd_curl(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    s = sys.m.services.get("apache2")
    if s is None or not s.running:
        err("curl: (7) Failed to connect to localhost port 80 after 0 ms: Couldn't connect to server\n")
        return 7
    if s.broken:
        if any("f" in a for a in argv[1:] if a.startswith("-") and not a.startswith("--")):
            err("curl: (22) The requested URL returned error: 500\n")
            return 22
        out("<h1>Internal Server Error</h1>\n")
        return 0
    out("<html><body>It works!</body></html>\n")
    return 0


# -- power -------------------------------------------------------------------------------------------------------------------
async def cmd_reboot(sys: MachineSystem, sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    name = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    m = sys.m
    if name in ("init", "telinit"):
        if not args or args[0] not in ("0", "6"):
            return 0
        reboot = args[0] == "6"
    elif name == "shutdown":
        reboot = "-r" in args
    else:
        reboot = name == "reboot"
    m.act("reboot" if reboot else "halt", command=" ".join(argv))
    if "-f" in args and name in ("reboot", "halt", "poweroff"):
        if reboot:
            m.loop_soon(m.reset)
        else:
            m.loop_soon(m.power_off)
        return 0
    m.spawn(m.shutdown(reboot=reboot))
    return 0


COMMANDS: dict[str, Cmd] = {
    "cat": cmd_cat, "head": cmd_head, "tail": cmd_tail, "wc": cmd_wc, "grep": cmd_grep, "egrep": cmd_grep,
    "fgrep": cmd_grep, "hostname": cmd_hostname, "uname": cmd_uname, "uptime": cmd_uptime, "date": cmd_date,
    "id": cmd_id, "whoami": cmd_whoami, "tty": cmd_tty, "which": cmd_which, "ls": cmd_ls, "dmesg": cmd_dmesg,
    "sysctl": cmd_sysctl, "stty": cmd_stty, "sync": cmd_sync, "ps": cmd_ps, "pgrep": cmd_pgrep,
    "killall": cmd_killall, "kill": cmd_kill, "sv": cmd_sv, "service": cmd_service, "invoke-rc.d": cmd_service,
    "systemctl": cmd_systemctl, "bos": cmd_bos, "domtool": cmd_domtool, "domtool-admin": cmd_domtool_admin,
    "dig": cmd_dig, "domtool-dnscheck": cmd_dnscheck, "wget": cmd_wget, "curl": cmd_curl, "reboot": cmd_reboot,
    "halt": cmd_reboot, "poweroff": cmd_reboot, "shutdown": cmd_reboot, "init": cmd_reboot, "telinit": cmd_reboot,
    "clear": cmd_true, "logger": cmd_true, "set-title": cmd_true,
}
