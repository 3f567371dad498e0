"""A simulated Linux server behind a serial console: power, boot, kernel, getty, login, a root shell.

The machine is driven by an asyncio loop. It boots in the real bytes of its platform's template
(``consolebot/data/boots``), generating the init scripts' lines from the real service state; it
answers BREAK + key as the 8250 driver and sysrq.c do; it offers agetty and login (candidate
passwords, "Login incorrect" after a delay, "Maximum number of tries exceeded (5)"); behind it
``shell.Shell`` interprets commands (``commands.py``) and never executes anything on the host
running the simulator. Everything it sends goes to ``output`` and the send log; every input line,
BREAK, key, login and power act goes to the act log.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from consolebot.lab import afs, sysrq
from consolebot.lab.config import DELEUZE_PLATFORM, HostProfile, SimOptions
from consolebot.lab.platforms import (
    PLATFORMS,
    Lsb,
    Platform,
    is_kernel_line,
    kernel_ts,
    template_lines,
)
from consolebot.lab.services import Faults, Service, Services, StartResult, describe
from consolebot.lab.shell import ExitShell, Shell
from consolebot.lab.site import Site

MAX_LOGIN_TRIES = 5  # Debian login.defs LOGIN_RETRIES
# the order sysv-rc stops services at runlevel 0/6 (clean_boot.log)
STOP_ORDER = {"openbsd-inetd": 0, "cron": 1, "spamassassin": 2, "apache2": 3, "domtool-server": 4, "domtool-slave": 4,
              "bind9": 5, "postgres": 6, "mysql": 7, "nscd": 8}
DEFAULT_LOGLEVEL = 7
QUIET_LOGLEVEL = 4  # 'quiet' on the kernel command line: only KERN_ERR and worse reach the console


class State(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    LOGIN = "login"
    PASSWORD = "password"
    LOGIN_WAIT = "login-wait"  # pam_faildelay after a wrong password
    LOGIN_HANG = "login-hang"  # login stuck in NSS lookups (sysrq-off): the tty still echoes
    SHELL = "shell"
    HUNG = "hung"
    PANIC = "panic"
    SHUTDOWN = "shutdown"


class JsonLog:
    """Append-only JSON lines with a wall-clock time ``t`` (send log, act log)."""

    def __init__(self, path: str | None) -> None:
        self._fd: int | None = None
        if path:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, **obj: Any) -> None:
        if self._fd is not None:
            obj = {"t": time.time(), **obj}
            os.write(self._fd, (json.dumps(obj) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Machine:
    """Given a host profile, the site's options and an output callback, simulate the host."""

    def __init__(self, profile: HostProfile, opts: SimOptions, site: Site, output: Callable[[bytes], None],
                 primary: bool, send_log: str | None = None, act_log: str | None = None) -> None:
        self.profile = profile
        self.opts = opts
        self.site = site
        self.output = output
        self.primary = primary
        self.scenario = opts.scenario if primary else ("clean" if opts.scenario == "clean" else "aftermath")
        if profile.fileserver:
            self.platform: Platform = PLATFORMS[DELEUZE_PLATFORM.get(opts.scenario, profile.platform)]
        else:
            self.platform = PLATFORMS[profile.platform]
        self.console_hostname = (opts.console_hostname if primary and opts.console_hostname
                                 else profile.console_hostname)
        self.send_log = JsonLog(send_log)
        self.act_log = JsonLog(act_log)
        self.services = Services(self, profile.services, Faults(opts.stuck_service, opts.courier_survives_stop,
                                                               opts.postgres_failed_starts))
        self.fileserver: afs.Fileserver | None = afs.Fileserver() if profile.fileserver else None
        self.sysrq_mask = opts.mask_for(opts.scenario if primary else "clean")
        self.state = State.OFF
        self.powered = False
        self.boot_count = 0
        self.clean_shutdown = self.scenario in ("clean", "aftermath")
        self.panic_next_boot = primary and opts.scenario == "panic"
        self.nss_hang = primary and opts.scenario == "sysrq-off"
        self.zones_stale = self.scenario == "aftermath" and profile.name == "outpost"
        self.sshd_mode = opts.sshd.get(profile.name, "accepts")  # new SSH logins (held sessions go on)
        self.console_loglevel = QUIET_LOGLEVEL if opts.quiet else DEFAULT_LOGLEVEL
        self.kmsg_ring: list[str] = []
        self.tty_echo = True
        self.shell: Shell | None = None
        self.first_connect_done = False
        self._pid = 1000
        self._uptime_at = 0.0
        self._uptime_mono = time.monotonic()
        self._line = bytearray()
        self._pending = ""  # an unfinished shell line (PS2)
        self._queued: list[str] = []
        self._last_cr = False
        self._user = ""
        self._tries = 0
        self._sysrq_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._command: asyncio.Task[None] | None = None
        self._last_login = self.platform.last_login
        self.boot_kind = ""
        self.clients = 0
        self.files: dict[str, str] = {}
        self.program_running = 0  # > 0 while a program (not a shell builtin) writes to the console
        self.tty_size = {"rows": 24, "cols": 80}

    # -- small services to others ----------------------------------------------------------------
    def next_pid(self) -> int:
        self._pid += 1 + (self._pid * 7919) % 13
        return self._pid

    def sim_seconds(self, since: float) -> int:
        return int((time.monotonic() - since) / self.opts.time_scale)

    def afs_available(self) -> bool:
        if self.fileserver is not None:
            return self.powered and self.fileserver.available()
        return self.site.afs_available()

    def answers_to(self, name: str) -> bool:
        """Whether ``name`` (short or qualified) is this host."""
        n = name.lower().rstrip(".").split(".")[0]
        names = {self.profile.name, self.console_hostname, *self.profile.aliases}
        return n in {x.lower().split(".")[0] for x in names}

    def userspace_up(self) -> bool:
        return self.powered and self.state in (State.LOGIN, State.PASSWORD, State.LOGIN_WAIT, State.SHELL)

    def act(self, act: str, **fields: Any) -> None:
        self.act_log.write(act=act, **fields)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        current = asyncio.current_task()
        for t in list(self._tasks):
            if t is not current:
                t.cancel()
        if self._command is not None and self._command is not current:
            self._command.cancel()
        self._command = None

    def loop_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop after the current command returns (a reset from inside a command)."""
        asyncio.get_running_loop().call_soon(fn)

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    # -- output ---------------------------------------------------------------------------------------
    def emit(self, data: bytes) -> None:
        if not data:
            return
        self.send_log.write(text=data.decode("latin-1"))
        self.output(data)

    def write(self, text: str) -> None:
        """Text from a program on the tty: LF becomes CR LF (onlcr)."""
        self.emit(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace"))

    def uptime(self) -> float:
        return self._uptime_at + (time.monotonic() - self._uptime_mono)

    def _set_uptime(self, ts: float) -> None:
        if ts >= self._uptime_at:
            self._uptime_at = ts
            self._uptime_mono = time.monotonic()

    def kline(self, text: str, ts: float | None = None) -> bytes:
        if ts is not None:
            self._set_uptime(ts)
        stamp = ts if ts is not None else self.uptime()
        line = f"[{stamp:12.6f}] {text}"
        self.kmsg_ring.append(line)
        return (line + "\r\n").encode()

    def kmsg(self, text: str, level: int = 4, ts: float | None = None) -> None:
        """printk: into the ring buffer; on the console when ``level`` < console_loglevel."""
        line = self.kline(text, ts)
        if level < self.console_loglevel:
            self.emit(line)

    def kmsg_text(self) -> str:
        """A kernel line for ``--kmsg-during-commands``: what this host's AFS client says now."""
        if not self.afs_available():
            return afs.lost_contact(self.platform.afs_code)
        return afs.busy_volume(536870930, "user.alice")

    # -- connections ------------------------------------------------------------------------------------
    def client_connected(self) -> None:
        self.clients += 1
        self.act("connect")
        if self.first_connect_done:
            return
        self.first_connect_done = True
        if self.state is State.OFF and not self.powered and self.opts.wait_for_client:
            self.start()

    def client_disconnected(self) -> None:
        self.clients = max(0, self.clients - 1)
        self.act("disconnect")

    def start(self) -> None:
        """Bring the host to its scenario's starting point (boot, hang, or already running)."""
        if self.powered:
            return
        self.powered = True
        scen = self.scenario
        if scen in ("hung", "sysrq-off"):
            self.state = State.HUNG if scen == "hung" else State.LOGIN
            self.fileserver_crash_state()
            self.spawn(self._hung_report())
            return
        if scen in ("clean", "aftermath") and not self.primary:
            self._already_running()
            return
        kind = {"clean": "clean", "salvage-old-init": "salvage-old-init", "salvage-wait": "salvage-wait",
                "panic": "panic"}.get(scen, "clean")
        self.spawn(self._boot(kind))

    def fileserver_crash_state(self) -> None:
        """A wedged Deleuze: the fileserver is not serving (bos cannot answer)."""
        if self.fileserver is not None:
            self.fileserver.crash()

    def assume_running(self) -> None:
        """Up for a while already (a standalone --shell): the scenario's state without a boot."""
        self.powered = True
        self.first_connect_done = True
        if self.fileserver is not None:
            self.fileserver.start(self.scenario.startswith("salvage"), self.opts.salvage_seconds)
        self._set_uptime(1734512.0)
        for s in self.services.all.values():
            broken = (s.d.needs_afs and not self.afs_available()) or (
                self.scenario == "aftermath" and s.name in ("apache2", "domtool-slave"))
            self.services.set_running(s, broken=broken)
        self.state = State.LOGIN
        self.clean_shutdown = False

    def _already_running(self) -> None:
        """A host that has been up for weeks: services running, a getty waiting (nothing printed)."""
        self._set_uptime(1734512.0 + (hash(self.profile.name) % 1000))
        for s in self.services.all.values():
            broken = self.scenario == "aftermath" and s.name in ("apache2", "domtool-slave")
            self.services.set_running(s, broken=broken)
        self.state = State.LOGIN
        self.clean_shutdown = False

    async def _hung_report(self) -> None:
        if self.platform.hung_file:
            for line in template_lines(self.platform.hung_file, frozenset()):
                ts = kernel_ts(line)
                if ts is not None:
                    self._set_uptime(ts)
                self.kmsg_ring.append(line.decode("latin-1").rstrip("\r\n"))
                self.emit(line)  # KERN_ERR: shown even with quiet
                await self.pause(self.opts.line_delay_s)

    # -- boot -------------------------------------------------------------------------------------------------
    def crash_kind(self) -> str:
        """What an unclean restart boots into."""
        if self.scenario in ("salvage-old-init", "salvage-wait"):
            return self.scenario
        if not self.profile.fileserver:
            return "crash"
        return self.opts.reboots_into

    def power_on_boot(self) -> None:
        kind = "clean" if self.clean_shutdown else self.crash_kind()
        if self.panic_next_boot:
            kind = "panic"
        self.powered = True
        self.spawn(self._boot(kind))

    def _reset_runtime(self) -> None:
        self.services.stop_all()
        if self.fileserver is not None:
            self.fileserver.crash()
        self.shell = None
        self._line.clear()
        self._pending = ""
        self._queued.clear()
        self.tty_echo = True
        self.console_loglevel = QUIET_LOGLEVEL if self.opts.quiet else DEFAULT_LOGLEVEL
        self._sysrq_until = 0.0
        self.nss_hang = False

    async def _boot(self, kind: str) -> None:
        self.cancel_all()
        self._reset_runtime()
        self.state = State.BOOTING
        self.boot_count += 1
        self.boot_kind = kind
        self.act("boot", count=self.boot_count, kind=kind)
        crash = kind != "clean"
        self.panic_next_boot = False
        conds = {"nopanic"} if kind != "panic" else {"panic"}
        if crash:
            conds.add("crash")
        if not self.opts.quiet:
            conds.add("verbose")
        self._uptime_at, self._uptime_mono = 0.0, time.monotonic()
        self.kmsg_ring = []
        # after a crash, Postgres' recovery outlasts the first starts by hand (the fault)
        self.services.pg_failures_left = self.opts.postgres_failed_starts if crash else 0
        loud = False
        for line in template_lines(self.platform.boot_file, frozenset(conds)):
            if line.startswith(b"@@services"):
                await self._services_block(kind)
                continue
            line = line.replace(b"@HOST@", self.console_hostname.encode())
            ts = kernel_ts(line)
            if ts is not None:
                self._set_uptime(ts)
                self.kmsg_ring.append(line.decode("latin-1").strip("\r\n"))
            if b"VFS: Cannot open root device" in line:
                loud = True  # KERN_ERR and KERN_EMERG from here on: shown even with quiet
            if b"Kernel panic - not syncing" in line:
                self.state = State.PANIC  # from here the kernel spins: no SysRq, no input
                self.clean_shutdown = False
            if self.opts.quiet and is_kernel_line(line) and not loud:
                continue
            self.emit(line)
            await self.pause(self.opts.line_delay_s)
        if kind == "panic":
            self.state = State.PANIC
            self.clean_shutdown = False
            return
        self.clean_shutdown = False  # until the next orderly shutdown
        self._getty()
        if kind == "salvage-wait" and "mysql" in self.services.all:
            await self.pause(self.opts.scaled(1.0))
            for line in template_lines("squeeze.innodb", frozenset()):
                self.emit(line)
                await self.pause(self.opts.line_delay_s)

    async def _line_out(self, text: str) -> None:
        self.write(text)
        await self.pause(self.opts.line_delay_s)

    async def _services_block(self, kind: str) -> None:
        if self.platform.systemd:
            await self._systemd_services(kind)
            return
        lsb = self.platform.boot_lsb
        p = self.platform
        salvage = kind in ("salvage-old-init", "salvage-wait")
        failures: list[str] = []
        ssh = self.services.get("ssh")
        if ssh is not None:
            self.services.boot_start(ssh)
            await self._line_out(lsb.begin("Starting OpenBSD Secure Shell server: sshd") + lsb.end(True) + "\n")
        if self.fileserver is not None:
            if kind == "salvage-wait":
                await self._line_out("Starting OpenAFS BOS server: bosserver.\n")
                self.fileserver.start(True, self.opts.salvage_seconds)
                self.write("Waiting for OpenAFS salvager to finish:" + afs.NOT_RESPONDING + "\n salvage in progress")
                fs = self.fileserver
                step = max(0.02, self.opts.salvage_seconds / 80.0)
                while fs.state == "salvaging":
                    remaining = fs.salvage_s * (1.0 - fs.progress())
                    await asyncio.sleep(min(step, remaining) + 0.001)
                    self.write(".")
                    if fs.progress() >= 1.0:
                        fs.salvage_done()
                        self.act("salvage-done")
                await self._line_out(" finished.\n")
            else:
                self.fileserver.start(salvage, self.opts.salvage_seconds)
                if self.fileserver.state == "salvaging":
                    self.spawn(self._salvage_watch())
        # the AFS client: the module's kernel messages are glued after "Starting AFS services:"
        self.write("Starting AFS services:")
        for ts, text in p.afs_kmsgs:
            stamp = float(ts) + (1190.0 if kind == "salvage-wait" and p.name == "squeeze" else 0.0)
            self.kmsg(text, 4, stamp)
        await self._line_out(" openafs afsd.\nafsd: All AFS daemons started.\n")
        if not self.afs_available():
            for ts in p.lost_contact_ts:
                self.kmsg(afs.lost_contact(p.afs_code), 4, float(ts))
            if p.afs_twice and len(p.lost_contact_ts) == 1:
                self.kmsg(afs.lost_contact(p.afs_code), 4)
        elif kind == "salvage-wait":
            self.kmsg(afs.busy_volume(536870915, "root.cell"), 4, self.uptime() + 1.5)
        for s in self.services.all.values():
            if s.name == "ssh" or (s.name == "mysql" and kind == "salvage-wait"):
                if s.name == "mysql":
                    self.services.boot_start(s)
                continue
            res = self.services.boot_start(s)
            await self._line_out(self.init_line("start", s, res, lsb, boot=True))
            if not res.ok:
                failures.append(s.d.scripts[0])
        if failures and p.name != "squeeze":
            names = " ".join(failures)
            await self._line_out(lsb.begin(f"startpar: service(s) returned failure: {names} ...") + lsb.end(False)
                                 + "\n")

    async def _systemd_services(self, kind: str) -> None:
        ok_tag = "[\x1b[0;32m  OK  \x1b[0m] "
        fail_tag = "[\x1b[0;1;31mFAILED\x1b[0m] "

        def hl(unit: str) -> str:
            return f"\x1b[0;1;39m{unit}\x1b[0m"

        await self._line_out(f"{ok_tag}Started {hl('openafs-client.service')} - OpenAFS client.\n")
        if not self.afs_available():
            self.kmsg(afs.lost_contact(True), 4, self.uptime() + 0.5)
        for s in self.services.all.values():
            res = self.services.boot_start(s)
            if res.ok:
                await self._line_out(f"{ok_tag}Started {hl(s.d.unit)} - {s.d.unit_desc}.\n")
            else:
                await self._line_out(f"{fail_tag}Failed to start {hl(s.d.unit)} - {s.d.unit_desc}.\n"
                                     f"See 'systemctl status {s.d.unit}' for details.\n")
        self.zones_stale = self.zones_stale and not self.afs_available()

    async def _salvage_watch(self) -> None:
        """The nowait variant: the salvager runs in the background; the client notices the server's return."""
        fs = self.fileserver
        assert fs is not None
        half = fs.salvage_s / 2
        await asyncio.sleep(half)
        if fs.state == "salvaging":
            for _ in range(2 if self.platform.afs_twice else 1):
                self.kmsg(afs.lost_contact(self.platform.afs_code))
        await asyncio.sleep(max(0.0, fs.salvage_s - half))
        if fs.state != "salvaging":
            return
        fs.salvage_done()
        self.act("salvage-done")
        for _ in range(2 if self.platform.afs_twice else 1):
            self.kmsg(afs.back_up(self.platform.afs_code))
        self.kmsg(afs.busy_volume(536870930, "user.alice"))
        await asyncio.sleep(self.opts.scaled(15.0))
        self.kmsg(afs.busy_volume(536870930, "user.alice"))
        self.kmsg(afs.busy_volume(536870936, "web.www"))

    # -- init-script output -------------------------------------------------------------------------------------
    def init_line(self, action: str, s: Service, res: StartResult | None, lsb: Lsb, boot: bool = False,
                  stopped: bool = True) -> str:
        """What ``/etc/init.d/SCRIPT start|stop|restart`` prints (LSB style of this platform and terminal)."""
        p = self.platform
        desc, daemon = describe(s.d, p)
        verb = {"start": "Starting", "stop": "Stopping", "restart": "Restarting"}[action]
        if s.name == "courier-authdaemon" and not p.courier_verbose:
            # init-d-script with VERBOSE=no: no end message on start, nothing at all on stop
            return "" if action == "stop" else lsb.begin(f"{verb} {desc}: {daemon}")
        if s.name == "spamassassin":
            lsb = Lsb("plain", " failed!", " (warning).")  # its own script echoes
        head = lsb.begin(f"{verb} {desc}: {daemon}")
        if action == "stop":
            return head + lsb.end(stopped) + "\n"
        assert res is not None
        if res.ok:
            progress = p.mysql[2] if s.name == "mysql" else ""
            extra = "Checking for corrupt, not cleanly closed and upgrade needing tables..\n" \
                if s.name == "mysql" and p.name == "squeeze" else ""
            return head + progress + lsb.end(True) + "\n" + extra
        if res.reason == "postgres":
            now = time.strftime("%Y-%m-%d %H:%M:%S %Z")
            up = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - 2460))
            body = ("The PostgreSQL server failed to start. Please check the log output:\n"
                    f"{now} LOG:  database system was interrupted; last known up at {up}\n"
                    f"{now} LOG:  database system was not properly shut down; automatic recovery in progress\n"
                    f"{now} LOG:  redo starts at 3/65A42760 ...")
            return head + body + lsb.end(False) + "\n" + lsb.end(False) + "\n"
        if s.name == "apache2":
            cert = ("SSLCertificateFile: file '/afs/example.org/user/a/al/alice/.domtool/alice.example.org.pem' "
                    "does not exist or is empty\n")
            if not p.apache_configtest:
                return (head + "Syntax error on line 12 of /etc/apache2/sites-enabled/alice.example.org:\n" + cert
                        + "Action 'start' failed.\nThe Apache error log may have more information.\n"
                        + lsb.end(False) + "\n")
            return (head + lsb.end(False) + "\n" + lsb.begin("The apache2 configtest failed. ...") + lsb.end_warn()
                    + "\nOutput of config test was:\n"
                    "AH00526: Syntax error on line 12 of /etc/apache2/sites-enabled/alice.example.org.conf:\n" + cert
                    + "Action 'configtest' failed.\nThe Apache error log may have more information.\n")
        if s.name in ("domtool-server", "domtool-slave"):
            return (head + f"{daemon}: Unable to read /afs/example.org/common/etc/domtool/domtool.cfg: "
                    "Connection timed out\n" + lsb.end(False) + "\n")
        return head + lsb.end(False) + "\n"

    # -- getty and login -------------------------------------------------------------------------------------------
    def login_prompt(self) -> str:
        return "login: " if self.opts.bare_login else f"{self.console_hostname} login: "

    def _getty(self) -> None:
        self.state = State.LOGIN
        self._line.clear()
        self._tries = 0
        self.tty_echo = True
        self.emit(f"\r\nDebian GNU/Linux {self.platform.release} {self.console_hostname} {self.profile.tty}\r\n\r\n"
                  f"{self.login_prompt()}".encode())

    def _enter_login(self, name: str) -> None:
        if not name.strip():
            self._getty()
            return
        self._user = name.strip()
        if self.nss_hang:
            self.state = State.LOGIN_HANG  # login(1) is stuck resolving the user (AFS, NSS)
            return
        self.state = State.PASSWORD
        self.emit(b"Password: ")

    def _enter_password(self, password: str) -> None:
        self.emit(b"\r\n")
        ok = self._user == "root" and password == self.opts.accepted_password
        self._tries += 1
        self.act("password", user=self._user, accepted=ok, attempt=self._tries)
        if ok:
            self._logged_in()
            return
        self.state = State.LOGIN_WAIT

        async def later() -> None:
            await self.pause(self.opts.login_fail_delay_s)
            if self.state is not State.LOGIN_WAIT:
                return
            self.emit(b"\r\nLogin incorrect\r\n")
            if self._tries >= MAX_LOGIN_TRIES:
                self.emit(f"Maximum number of tries exceeded ({MAX_LOGIN_TRIES})\r\n".encode())
                self._getty()
                return
            self.state = State.LOGIN
            self.emit(self.login_prompt().encode())

        self.spawn(later())

    def _logged_in(self) -> None:
        from consolebot.lab.commands import MachineSystem

        p = self.platform
        self.emit(
            (f"Linux {self.console_hostname} {p.kernel} {p.uname_v} x86_64\r\n\r\n"
             "The programs included with the Debian GNU/Linux system are free software;\r\n"
             "the exact distribution terms for each program are described in the\r\n"
             "individual files in /usr/share/doc/*/copyright.\r\n\r\n"
             "Debian GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent\r\n"
             "permitted by applicable law.\r\n"
             f"Last login: {self._last_login} on {self.profile.tty}\r\n").encode())
        self._last_login = time.strftime("%a %b %e %H:%M:%S %Z %Y")
        self.shell = Shell(MachineSystem(self, console=True), pid=self.next_pid())
        self.state = State.SHELL
        self._show_prompt()

    def _show_prompt(self) -> None:
        if self.shell is not None and self.state is State.SHELL:
            self.write(self.shell.prompt2() if self._pending else self.shell.prompt())

    def logout(self) -> None:
        self.shell = None
        self._pending = ""
        self._queued.clear()
        self.emit(b"logout\r\n")
        self._getty()

    # -- input -------------------------------------------------------------------------------------------------------
    def on_break(self) -> None:
        """A serial BREAK: the 8250 driver arms SysRq for the next key (if the console is a kernel console)."""
        self.act("break")
        if self.powered and self.state not in (State.OFF, State.PANIC):
            self._sysrq_until = time.monotonic() + sysrq.WINDOW_S

    def feed(self, data: bytes) -> None:
        for i in range(len(data)):
            ch = data[i : i + 1]
            if self._sysrq_until:
                armed = time.monotonic() <= self._sysrq_until
                self._sysrq_until = 0.0
                if armed and self._sysrq(ch.decode("latin-1")):
                    continue
            self._char(ch)

    def _sysrq(self, key: str) -> bool:
        """Return True when the kernel consumed the key."""
        ans = sysrq.answer(key, self.sysrq_mask, self.platform.sysrq_prefix)
        if not ans.consumed:
            self.act("sysrq", key=key, result="ignored-disabled")
            return False
        self.act("sysrq", key=key, **({"result": "disabled"} if ans.disabled else {}))
        for line in ans.lines:  # __handle_sysrq raises the console loglevel to print its answer
            self.emit(self.kline(line))
        if ans.action:
            self.sysrq_action(ans.action)
        return True

    def sysrq_action(self, key: str) -> None:
        if key.isdigit():
            self.console_loglevel = int(key)
        elif key == "s":
            self.spawn(self._later_kline(0.4, "Emergency Sync complete"))
        elif key == "u":
            async def remount() -> None:
                await self.pause(self.opts.scaled(0.2))
                if self.platform.name in ("stretch", "bullseye"):
                    self.emit(self.kline("EXT4-fs (sda1): re-mounted. Opts: (null)"))
                    self.emit(self.kline("EXT4-fs (sda3): re-mounted. Opts: (null)"))
                self.emit(self.kline("Emergency Remount complete"))
            self.spawn(remount())
        elif key == "b":
            self._crash_restart()
        elif key == "o":
            self.emit(self.kline("reboot: Power down"))
            self.power_off(act=False)
        elif key == "c":
            self._panic("sysrq triggered crash")
        elif key in "ei" and self.state is not State.HUNG:
            for s in self.services.all.values():
                self.services.signal(s, "TERM" if key == "e" else "KILL")
            if self.state in (State.SHELL, State.PASSWORD, State.LOGIN_WAIT, State.LOGIN, State.LOGIN_HANG):
                self.cancel_all()
                self.shell = None
                self.nss_hang = False
                self._getty()

    async def _later_kline(self, delay_s: float, text: str) -> None:
        await self.pause(self.opts.scaled(delay_s))
        self.emit(self.kline(text))

    def _panic(self, reason: str) -> None:
        self.cancel_all()
        self.state = State.PANIC
        self.shell = None
        self.clean_shutdown = False
        if self.fileserver is not None:
            self.fileserver.crash()
        for line in (f"Kernel panic - not syncing: {reason}",
                     f"CPU: 0 PID: 1 Comm: bash Not tainted {self.platform.kernel} #1",
                     "Hardware name: Dell Inc. PowerEdge R410/01V648, BIOS 1.12.0 07/30/2013",
                     f"---[ end Kernel panic - not syncing: {reason} ]---"):
            self.emit(self.kline(line))

    def _char(self, ch: bytes) -> None:
        state = self.state
        if ch == b"\x00":  # a telnet CR NUL split by the negotiation, or line noise: never part of a line
            return
        if state in (State.OFF, State.BOOTING, State.HUNG, State.PANIC, State.SHUTDOWN, State.LOGIN_WAIT):
            return
        if ch in (b"\r", b"\n"):
            if ch == b"\n" and self._last_cr:
                self._last_cr = False
                return
            self._last_cr = ch == b"\r"
            if self.tty_echo and state is not State.PASSWORD:
                self.emit(b"\r\n")
            line = self._line.decode("utf-8", "replace")
            self._line.clear()
            self.act("line", state=state.value, text=line if state is not State.PASSWORD else "<password>")
            self._enter(state, line)
            return
        self._last_cr = False
        if state is State.LOGIN_HANG:
            if self.tty_echo:
                self.emit(ch)
            return
        if ch in (b"\x7f", b"\x08"):
            if self._line:
                self._line.pop()
                if state is not State.PASSWORD and self.tty_echo:
                    self.emit(b"\x08 \x08")
            return
        if ch == b"\x15":  # ^U: kill the line
            n = len(self._line)
            self._line.clear()
            if state is not State.PASSWORD and n and self.tty_echo:
                self.emit(b"\x08 \x08" * n)
            return
        if ch == b"\x03":  # ^C
            self._interrupt()
            return
        if ch == b"\x04":  # ^D
            if state is State.SHELL and not self._line and self._command is None:
                self.act("line", state=state.value, text="^D")
                self.logout()
            return
        if ch in (b"\x1a", b"\x1c"):
            return
        self._line += ch
        if state is not State.PASSWORD and self.tty_echo:
            self.emit(ch)

    def _interrupt(self) -> None:
        self._line.clear()
        if self.state is State.PASSWORD:
            self.act("line", state="password", text="^C")
            self._getty()  # login(1) dies on SIGINT; getty respawns; no attempt is spent
        elif self.state is State.LOGIN:
            self.emit(b"^C\r\n")
            self.emit(self.login_prompt().encode())
        elif self.state is State.SHELL:
            self.act("line", state="shell", text="^C")
            self._pending = ""
            self._queued.clear()
            if self.tty_echo:
                self.emit(b"^C")
            if self._command is not None:
                self._command.cancel()
                return  # the command's end shows the prompt
            if self.shell is not None:
                self.shell.status = 130
            self.emit(b"\r\n")
            self._show_prompt()

    def _enter(self, state: State, line: str) -> None:
        if state is State.LOGIN:
            self._enter_login(line)
        elif state is State.PASSWORD:
            self._enter_password(line)
        elif state is State.SHELL:
            if self._command is not None:
                self._queued.append(line)
                return
            self._shell_line(line)

    def _shell_line(self, line: str) -> None:
        assert self.shell is not None
        text = self._pending + line
        if not self.shell.complete(text):
            self._pending = text + "\n"
            self._show_prompt()
            return
        self._pending = ""
        if not text.strip():
            self._show_prompt()
            return
        self._command = self.spawn(self._run_command(text))

    async def _run_command(self, text: str) -> None:
        shell = self.shell
        assert shell is not None
        writer = ConsoleWriter(self)
        cancelled = False
        try:
            await shell.run_line(text, writer.write)
        except ExitShell:
            self._command = None
            if self.shell is shell:
                self.logout()
            return
        except asyncio.CancelledError:
            cancelled = True
            shell.status = 130  # 128 + SIGINT
        finally:
            writer.finish()
        self._command = None
        if self.shell is not shell or self.state is not State.SHELL:
            return
        if cancelled:
            self.emit(b"\r\n")
        self._show_prompt()
        if self._queued:
            nxt = self._queued.pop(0)
            self._shell_line(nxt)

    # -- remote shell (SSH through the control channel) ------------------------------------------------------------
    async def remote_command(self, shell: Shell, line: str) -> tuple[int, str]:
        """Run ``line`` as an SSH command would; return (status, output)."""
        out: list[str] = []
        try:
            status = await shell.run_line(line, out.append)
        except ExitShell as exc:
            status = exc.status
        return status, "".join(out)

    # -- power (the BMC) -------------------------------------------------------------------------------------------------
    def power_off(self, act: bool = True) -> None:
        self.cancel_all()
        self._reset_runtime()
        self.powered = False
        self.state = State.OFF
        if act:
            self.clean_shutdown = False

    def power_on(self) -> None:
        if self.powered:
            return
        self.first_connect_done = True
        self.power_on_boot()

    def _crash_restart(self) -> None:
        self.cancel_all()
        self.clean_shutdown = False
        self.powered = True
        self.power_on_boot()

    def reset(self) -> None:
        self.first_connect_done = True
        self._crash_restart()

    async def cycle(self) -> None:
        self.first_connect_done = True
        self.power_off()
        await asyncio.sleep(self.opts.scaled(1.0))
        self.power_on_boot()

    def diag(self) -> None:
        """An NMI from the BMC (arch/x86/kernel/nmi.c unknown_nmi_error, pr_emerg: always on the console)."""
        if self.state in (State.OFF, State.PANIC):
            return
        self.emit(self.kline("Uhhuh. NMI received for unknown reason 3d on CPU 0."))
        if self.platform.nmi_power_saving_line:
            self.emit(self.kline("Do you have a strange power saving mode enabled?"))
        self.emit(self.kline("Dazed and confused, but trying to continue"))

    def soft_off(self) -> bool:
        """The ACPI power button: an orderly shutdown when userspace is alive; False when nothing happens."""
        if not self.userspace_up():
            return False
        self.spawn(self.shutdown(reboot=False, wall=False))
        return True

    # -- orderly shutdown (reboot, halt) -----------------------------------------------------------------------------------
    async def shutdown(self, reboot: bool, wall: bool = True) -> None:
        if self.state is State.SHUTDOWN:
            return
        if wall and self.shell is not None:  # wall(1) reaches the logged-in console, not a getty
            now = time.strftime("%a %b %d %H:%M:%S %Y")
            self.write(f"\nBroadcast message from root@{self.console_hostname} ({self.profile.tty}) ({now}):\n\n"
                       f"The system is going down for {'reboot' if reboot else 'system halt'} NOW!\n")
        await self.pause(self.opts.scaled(0.3))
        self.state = State.SHUTDOWN
        self.shell = None
        if self._command is not None and self._command is not asyncio.current_task():
            self._command.cancel()
        self._command = None
        stuck = False
        if self.platform.systemd:
            stuck = await self._systemd_shutdown()
        else:
            stuck = await self._sysv_shutdown(reboot)
        self.kmsg("sd 0:0:0:0: [sda] Synchronizing SCSI cache", 5)
        self.clean_shutdown = True  # bosserver shut the fileserver down: no salvage next time
        self.act("shutdown", reboot=reboot, stuck=stuck)
        if reboot:
            self.emit(self.kline("reboot: Restarting system"))
            self.spawn(self._boot("clean"))
        else:
            self.emit(self.kline("reboot: Power down"))
            self.power_off(act=False)

    async def _sysv_shutdown(self, reboot: bool) -> bool:
        lsb = self.platform.boot_lsb
        self.write(f"\rINIT: Switching to runlevel: {6 if reboot else 0}\n")
        await self._line_out(lsb.info(f"Using makefile-style concurrent boot in runlevel {6 if reboot else 0}") + "\n")
        stuck = False
        for s in sorted(self.services.all.values(), key=lambda x: STOP_ORDER.get(x.name, 50)):
            if s.name in ("ssh", "courier-authdaemon"):
                continue
            gone = self.services.stop(s)
            if not gone:
                stuck = True
                await self.pause(self.opts.scaled(2.0))
            await self._line_out(self.init_line("stop", s, None, lsb, stopped=gone))
        await self._line_out("Stopping AFS services: afsd openafs.\n")
        if self.fileserver is not None:
            self.fileserver.stop()
        ssh = self.services.get("ssh")
        if ssh is not None:
            self.services.stop(ssh)
            await self._line_out(lsb.begin("Stopping OpenBSD Secure Shell server: sshd") + lsb.end(True) + "\n")
        await self._line_out("Asking all remaining processes to terminate...done.\n")
        for s in self.services.all.values():
            self.services.signal(s, "KILL")
        if any(s.running for s in self.services.all.values()):
            stuck = True
            await self._line_out("Killing all remaining processes...failed.\n")
        else:
            await self._line_out("All processes ended within 2 seconds...done.\n")
        for text in ("Deconfiguring network interfaces...done.", "Unmounting temporary filesystems...done.",
                     "Deactivating swap...done.", "Unmounting local filesystems...done.",
                     "Will now restart." if reboot else "Will now halt."):
            await self._line_out(text + "\n")
        return stuck

    async def _systemd_shutdown(self) -> bool:
        ok_tag = "[\x1b[0;32m  OK  \x1b[0m] "
        stuck = False
        for s in reversed(list(self.services.all.values())):
            await self._line_out(f"         Stopping \x1b[0;1;39m{s.d.unit}\x1b[0m - {s.d.unit_desc}...\n")
            if self.services.stop(s):
                await self._line_out(f"{ok_tag}Stopped \x1b[0;1;39m{s.d.unit}\x1b[0m - {s.d.unit_desc}.\n")
            else:
                stuck = True
        await self._line_out(f"{ok_tag}Reached target \x1b[0;1;39mshutdown.target\x1b[0m - System Shutdown.\n")
        return stuck

    # -- service hooks -----------------------------------------------------------------------------------------------------
    def service_started(self, s: Service) -> None:
        """Called after a start by hand that left ``s`` running."""
        if s.name == "bind9" and not s.broken:  # named reloads its zones; a domtool-slave restart alone does not
            self.zones_stale = False

    def close(self) -> None:
        self.cancel_all()
        self.send_log.close()
        self.act_log.close()


class ConsoleWriter:
    """A command line's output on the console: LF -> CR LF.

    With ``--kmsg-during-commands`` one kernel line lands in the output of every command line: spliced
    into the middle of the first output line of a program (``bos``, ``ps``, an init script...), or as a
    whole line at the first line boundary after the first line the shell itself wrote (``echo``). So a
    client's own ``echo`` markers stay whole, while what runs between them gets interrupted as printk does.
    """

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.spliced = not machine.opts.kmsg_during_commands
        self.lines = 0
        self.at_line_start = True

    def _out(self, text: str) -> None:
        self.m.write(text)
        self.lines += text.count("\n")
        self.at_line_start = text.endswith("\n")

    def write(self, text: str) -> None:
        if not text:
            return
        if not self.spliced:
            if self.m.program_running and len(text) >= 8:
                self.spliced = True
                first_line = text.find("\n")
                cut = max(1, (first_line if first_line > 1 else len(text)) // 2)
                self._out(text[:cut])
                self.m.kmsg(self.m.kmsg_text())
                self._out(text[cut:])
                return
            if self.lines >= 1 and self.at_line_start:
                self.spliced = True
                self.m.kmsg(self.m.kmsg_text())
        self._out(text)

    def finish(self) -> None:
        if not self.spliced:
            self.spliced = True
            self.m.kmsg(self.m.kmsg_text())
