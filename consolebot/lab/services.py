"""Services and their processes: real state that init scripts, ``sv``, ``systemctl``, ``killall`` and ``ps`` share.

A service that needs AFS and starts while AFS is unavailable (during a salvage) either fails
(apache2, domtool: their configuration lives in AFS) or starts *improperly* ("broken": it runs,
but its AFS lookups are stuck, ps shows it in state D while AFS is down, and the domtool/web/DNS
checks fail until it is restarted with AFS back). Faults: ``--stuck-service`` (never stops, not
even on SIGKILL: D state), ``--courier-survives-stop once|always`` (authdaemond ignores SIGTERM),
``--postgres-failed-starts N|never`` (after a crash, the first N starts by hand fail).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from consolebot.lab.platforms import Platform


@dataclass(frozen=True)
class ServiceDef:
    name: str  # the inventory's service name
    desc: str  # LSB log_daemon_msg description ("" = per platform, see describe())
    daemon: str  # what follows the colon
    scripts: tuple[str, ...]  # /etc/init.d names
    comm: tuple[str, ...]  # process names (killall, pgrep)
    procs: tuple[tuple[str, str], ...]  # (user, command line) as ps shows them
    unit: str
    unit_desc: str
    runit: str = ""  # runit service directory name, if supervised by runsv
    needs_afs: bool = False
    without_afs: str = "broken"  # "broken" or "fail"
    unit_aliases: tuple[str, ...] = ()


_APACHE_PROCS = (("root", "/usr/sbin/apache2 -k start"), ("www-data", "/usr/sbin/apache2 -k start"),
                 ("www-data", "/usr/sbin/apache2 -k start"))

CATALOG: dict[str, ServiceDef] = {
    d.name: d
    for d in (
        ServiceDef("ssh", "OpenBSD Secure Shell server", "sshd", ("ssh",), ("sshd",),
                   (("root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),), "ssh.service",
                   "OpenBSD Secure Shell server", unit_aliases=("sshd.service",)),
        ServiceDef("nscd", "Name Service Cache Daemon", "nscd", ("nscd",), ("nscd",), (("root", "/usr/sbin/nscd"),),
                   "nscd.service", "Name Service Cache Daemon", needs_afs=True),
        ServiceDef("mysql", "", "", ("mysql", "mariadb"), ("mysqld", "mariadbd", "mysqld_safe"),
                   (("root", "/bin/sh /usr/bin/mysqld_safe"),
                    ("mysql", "/usr/sbin/{mysqld} --basedir=/usr --datadir=/var/lib/mysql --user=mysql "
                              "--pid-file=/var/run/mysqld/mysqld.pid --socket=/var/run/mysqld/mysqld.sock --port=3306")),
                   "mariadb.service", "MariaDB database server", needs_afs=True, unit_aliases=("mysql.service",)),
        ServiceDef("postgres", "", "main", ("postgresql",), ("postmaster", "postgres"),
                   (("postgres", "/usr/lib/postgresql/{pg}/bin/postmaster -D /var/lib/postgresql/{pg}/main -c "
                                 "config_file=/etc/postgresql/{pg}/main/postgresql.conf"),
                    ("postgres", "postgres: writer process"), ("postgres", "postgres: wal writer process"),
                    ("postgres", "postgres: autovacuum launcher process"),
                    ("postgres", "postgres: stats collector process")),
                   "postgresql.service", "PostgreSQL RDBMS", needs_afs=True),
        ServiceDef("apache2", "", "apache2", ("apache2",), ("apache2",), _APACHE_PROCS, "apache2.service",
                   "The Apache HTTP Server", needs_afs=True, without_afs="fail"),
        ServiceDef("domtool-server", "Domtool server", "domtool-server", ("domtool-server",), ("domtool-server",),
                   (("root", "/usr/local/sbin/domtool-server"),), "domtool-server.service", "Domtool server",
                   needs_afs=True, without_afs="fail"),
        ServiceDef("domtool-slave", "Domtool slave", "domtool-slave", ("domtool-slave",), ("domtool-slave",),
                   (("root", "/usr/local/sbin/domtool-slave"),), "domtool-slave.service", "Domtool slave",
                   needs_afs=True),
        ServiceDef("cron", "periodic command scheduler", "cron", ("cron",), ("cron",), (("root", "/usr/sbin/cron"),),
                   "cron.service", "Regular background program processing daemon"),
        ServiceDef("spamassassin", "SpamAssassin Mail Filter Daemon", "spamd", ("spamassassin", "spamd"), ("spamd",),
                   (("root", "/usr/sbin/spamd --create-prefs --max-children 5 --helper-home-dir -d "
                             "--pidfile=/var/run/spamd.pid"), ("root", "spamd child"), ("root", "spamd child")),
                   "spamd.service", "Perl-based spam filter using text analysis", needs_afs=True),
        ServiceDef("courier-authdaemon", "Courier authentication services", "authdaemond", ("courier-authdaemon",),
                   ("authdaemond",), (("root", "/usr/lib/courier/courier-authlib/authdaemond"),
                                      ("root", "/usr/lib/courier/courier-authlib/authdaemond")),
                   "courier-authdaemon.service", "Courier authentication services", runit="courier-authdaemon",
                   needs_afs=True),
        ServiceDef("openbsd-inetd", "internet superserver", "inetd", ("openbsd-inetd",), ("inetd",),
                   (("root", "/usr/sbin/inetd"),), "inetd.service", "Internet superserver", needs_afs=True),
        ServiceDef("bind9", "domain name service...", "named", ("named", "bind9"), ("named",),
                   (("bind", "/usr/sbin/named -u bind"),), "named.service", "BIND Domain Name Server",
                   unit_aliases=("bind9.service",)),
    )
}


def describe(d: ServiceDef, p: Platform) -> tuple[str, str]:
    """The (description, daemon) an init script prints for this service on this platform."""
    if d.name == "mysql":
        return p.mysql[0], p.mysql[1]
    if d.name == "postgres":
        return f"PostgreSQL {p.pg} database server", "main"
    if d.name == "apache2":
        return p.apache_desc, "apache2"
    return d.desc, d.daemon


class ServiceHost(Protocol):
    """What services need from their machine."""

    platform: Platform

    def afs_available(self) -> bool: ...
    def next_pid(self) -> int: ...
    def sim_seconds(self, since: float) -> int: ...


@dataclass
class Faults:
    stuck: str = ""
    courier: str = ""  # "", "once", "always"
    postgres_failed_starts: int | None = 0  # None: never starts


@dataclass
class Service:
    d: ServiceDef
    running: bool = False
    broken: bool = False
    pids: list[int] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)
    want_down: bool = False  # runit: 'sv stop' was asked
    got_term: bool = False  # a TERM was sent and the process is still there
    failed: bool = False  # systemd: the last start failed
    started_at: float = 0.0
    terms_ignored: int = 0

    @property
    def name(self) -> str:
        return self.d.name


@dataclass(frozen=True)
class StartResult:
    ok: bool
    reason: str = ""  # "", "afs" (no AFS), "postgres" (crash recovery outlasts the wait)
    already: bool = False


class Services:
    """Given the host's service names, hold their state and apply starts, stops and signals."""

    def __init__(self, host: ServiceHost, names: tuple[str, ...], faults: Faults) -> None:
        self.host = host
        self.faults = faults
        self.all: dict[str, Service] = {n: Service(CATALOG[n]) for n in names}
        self.pg_failures_left: int | None = 0

    # -- lookup ---------------------------------------------------------------------
    def by_script(self, script: str) -> Service | None:
        for s in self.all.values():
            if script in s.d.scripts or script == s.name:
                return s
        return None

    def by_unit(self, unit: str) -> Service | None:
        u = unit if "." in unit else unit + ".service"
        for s in self.all.values():
            if u == s.d.unit or u in s.d.unit_aliases or unit == s.name or unit in s.d.scripts:
                return s
        return None

    def by_runit(self, name: str) -> Service | None:
        name = name.rstrip("/").rsplit("/", 1)[-1]
        for s in self.all.values():
            if s.d.runit and s.d.runit == name:
                return s
        return None

    def by_pid(self, pid: int) -> Service | None:
        for s in self.all.values():
            if pid in s.pids:
                return s
        return None

    def get(self, name: str) -> Service | None:
        return self.all.get(name)

    # -- state changes -----------------------------------------------------------------
    def _run(self, s: Service, broken: bool) -> None:
        s.running = True
        s.broken = broken
        s.failed = False
        s.got_term = False
        s.want_down = False
        s.terms_ignored = 0
        s.since = time.monotonic()
        s.started_at = s.since
        s.pids = [self.host.next_pid() for _ in s.d.procs]

    def _down(self, s: Service) -> None:
        s.running = False
        s.broken = False
        s.got_term = False
        s.pids = []
        s.since = time.monotonic()

    def boot_start(self, s: Service) -> StartResult:
        """Start at boot: never counts as a start by hand (the Postgres fault)."""
        if s.d.needs_afs and not self.host.afs_available():
            if s.d.without_afs == "fail":
                s.failed = True
                return StartResult(False, "afs")
            self._run(s, broken=True)
            return StartResult(True)
        self._run(s, broken=False)
        return StartResult(True)

    def set_running(self, s: Service, broken: bool = False) -> None:
        self._run(s, broken)

    def start(self, s: Service) -> StartResult:
        """A start by hand (init script, sv, systemctl)."""
        if s.running:
            return StartResult(True, already=True)
        if s.d.needs_afs and not self.host.afs_available():
            if s.d.without_afs == "fail":
                s.failed = True
                return StartResult(False, "afs")
            self._run(s, broken=True)
            return StartResult(True)
        if s.name == "postgres" and self.pg_failures_left != 0:
            if self.pg_failures_left is not None:
                self.pg_failures_left -= 1
            s.failed = True
            return StartResult(False, "postgres")
        self._run(s, broken=False)
        return StartResult(True)

    def signal(self, s: Service, sig: str) -> bool:
        """Send TERM or KILL to the service's processes; return True when they are gone."""
        if not s.running:
            return True
        if self.faults.stuck == s.name:
            s.got_term = s.got_term or sig == "TERM"
            return False  # uninterruptible sleep: not even SIGKILL
        if sig == "TERM" and s.name == "courier-authdaemon" and self.faults.courier:
            if self.faults.courier == "always" or s.terms_ignored == 0:
                s.terms_ignored += 1
                s.got_term = True
                return False
        self._down(s)
        return True

    def stop(self, s: Service) -> bool:
        """A stop by hand: TERM (the scripts' start-stop-daemon, runsv, systemd); True when down."""
        s.want_down = True
        s.failed = False
        return self.signal(s, "TERM")

    def kill_comm(self, comm: str, sig: str) -> list[Service]:
        """killall: the services with a process named ``comm`` (whatever the signal did)."""
        hit = [s for s in self.all.values() if s.running and comm in s.d.comm]
        for s in hit:
            self.signal(s, sig)
        return hit

    def respawn_supervised(self) -> list[Service]:
        """runsv restarts a runit service that died while it was wanted up."""
        back = []
        for s in self.all.values():
            if s.d.runit and not s.running and not s.want_down:
                broken = s.d.needs_afs and not self.host.afs_available()
                self._run(s, broken)
                back.append(s)
        return back

    def stop_all(self) -> None:
        for s in self.all.values():
            self._down(s)
            s.failed = False

    def state_d(self, s: Service) -> bool:
        """In uninterruptible sleep: stuck, or improperly started and waiting on AFS."""
        return self.faults.stuck == s.name or (s.broken and not self.host.afs_available())

    # -- ps ------------------------------------------------------------------------------
    def processes(self) -> list[tuple[int, str, str, str]]:
        """(pid, user, stat, command line) of every service process."""
        out = []
        pg = self.host.platform.pg
        mysqld = self.host.platform.mysql[1]
        for s in self.all.values():
            if not s.running:
                continue
            d_state = self.state_d(s)
            for i, (pid, (user, args)) in enumerate(zip(s.pids, s.d.procs, strict=False)):
                stat = "D" if d_state and i == 0 else ("Ss" if i == 0 else "S")
                out.append((pid, user, stat, args.replace("{pg}", pg).replace("{mysqld}", mysqld)))
        return out
