"""The rule table: what each console line means. Rules are data.

Every rule names the program that prints the line and the versions whose
wording it covers, and has a required ``literal`` that the classifier's fast
path looks for before it runs any regular expression (most console lines
match no literal and cost one search). Patterns run on the cleaned line
(escapes removed, backspaces applied). Named groups become event fields.
Site rules (``--rules FILE``, or ``rules`` in a host's inventory entry) add
kinds, change severities and mark lines benign; see ``load_site_rules``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from consolebot.errors import ConfigError
from consolebot.recognise.events import KINDS, SEVERITIES


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    literal: str
    pattern: str | None = None
    severity: str = "info"
    program: str = ""
    versions: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    prompt: bool = False  # may match a line that has not ended yet (a prompt)
    benign: str | None = None  # a reason: marks the line known-harmless
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def compile(self) -> Rule:
        if not self.literal:
            raise ValueError(f"rule {self.name}: a required literal is needed for the fast path")
        rx = re.compile(self.pattern) if self.pattern else re.compile(re.escape(self.literal))
        return replace(self, compiled=rx)


def R(name: str, kind: str, literal: str, pattern: str | None = None, severity: str = "info",
      program: str = "", versions: str = "", **kw: Any) -> Rule:
    return Rule(name, kind, literal, pattern, severity, program, versions, **kw)


_TS = r"(?:\[\s*\d+\.\d+\] )?"  # an optional printk timestamp

BUILTIN: tuple[Rule, ...] = (
    # -- firmware and boot loader -------------------------------------------------------------
    R("firmware.dell", "boot.firmware", "Initializing firmware interfaces", severity="info",
      program="Dell BIOS (illustrative)", versions="PowerEdge R410"),
    R("firmware.seabios", "boot.firmware", "SeaBIOS (version", program="SeaBIOS", versions="1.x"),
    R("firmware.uefi", "boot.firmware", "UEFI Interactive Shell", program="EDK2", versions="all"),
    R("grub.loading", "boot.loader", "Loading Linux ", r"Loading Linux (?P<kernel>\S+) \.\.\.", "info",
      "grub-common /etc/grub.d/10_linux", "GRUB 1.99-2.12"),
    # -- kernel --------------------------------------------------------------------------------
    R("kernel.banner", "boot.start", "Linux version ", r"Linux version (?P<kernel>\S+)", "notice",
      "Linux init/version.c linux_banner", "all"),
    R("kernel.run_init", "init.start", "as init process", r"Run (?P<init>\S+) as init process", "info",
      "Linux init/main.c run_init_process", ">= 3.x"),
    R("sysvinit.start", "init.start", "INIT: version ", r"INIT: version (?P<version>[\d.]+)", "info",
      "sysvinit init.c", "2.88-3.x"),
    R("systemd.start", "init.start", "systemd[1]: systemd ", None, "info", "systemd", "all"),
    R("kernel.nmi", "kernel.nmi", "NMI received for unknown reason",
      r"NMI received for unknown reason (?P<reason>\S+) on CPU (?P<cpu>\d+)", "warning",
      "Linux arch/x86/kernel/nmi.c unknown_nmi_error", "2.6.x-6.x"),
    R("kernel.restart", "kernel.restart", "reboot: ", r"reboot: (?P<action>Restarting system|Power down|System halted)",
      "notice", "Linux kernel/reboot.c", ">= 3.x"),
    R("kernel.panic", "kernel.panic", "Kernel panic - not syncing", r"(?<!end )Kernel panic - not syncing: ?(?P<reason>.*?)(?: \]---)?$",
      "critical", "Linux kernel/panic.c", "all"),
    R("kernel.oops", "kernel.oops", "Oops: ", r"Oops: (?P<code>\S+)", "critical", "Linux arch/x86/kernel/dumpstack.c", "all"),
    R("kernel.unable_to_handle", "kernel.oops", "BUG: unable to handle", None, "critical", "Linux arch/x86/mm/fault.c", "all"),
    R("kernel.bug", "kernel.bug", "kernel BUG at ", r"kernel BUG at (?P<where>\S+)", "critical", "Linux include/asm-generic/bug.h", "all"),
    R("kernel.hung_task", "kernel.hung_task", "INFO: task ",
      r"INFO: task (?P<task>.+?):(?P<pid>\d+) blocked for more than (?P<seconds>\d+) seconds", "warning",
      "Linux kernel/hung_task.c", "2.6.x-6.x"),
    R("kernel.soft_lockup", "kernel.soft_lockup", "soft lockup", r"soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<seconds>\d+)s",
      "critical", "Linux kernel/watchdog.c", "all"),
    R("kernel.rcu_stall", "kernel.rcu_stall", "detected stall", None, "critical", "Linux kernel/rcu/tree_stall.h", "3.x-6.x"),
    R("kernel.oom", "kernel.oom", "Out of memory: Kill",
      r"Out of memory: Kill(?:ed)? process (?P<pid>\d+) \((?P<victim>[^)]+)\)", "warning", "Linux mm/oom_kill.c", "all"),
    R("kernel.ext_error", "kernel.fs_error", "-fs error", r"(?P<fs>EXT[234])-fs error \(device (?P<device>[^)]+)\)",
      "critical", "Linux fs/ext4/super.c", "all"),
    R("kernel.remount_ro", "kernel.fs_error", "Remounting filesystem read-only", None, "critical", "Linux fs/ext4", "all"),
    R("kernel.buffer_io", "kernel.fs_error", "Buffer I/O error", r"Buffer I/O error on dev(?:ice)? (?P<device>[^,]+)",
      "warning", "Linux fs/buffer.c", "all"),
    # -- SysRq: three wordings ------------------------------------------------------------------
    R("sysrq.ack.old", "sysrq.ack", "SysRq : ", r"SysRq : (?P<action>(?!HELP)[A-Z][^\r\n]*?)\s*$", "notice",
      "Linux drivers/tty/sysrq.c", "'SysRq : ' <= 3.18; 'sysrq: SysRq : ' 3.19-5.5"),
    R("sysrq.ack.new", "sysrq.ack", "sysrq: ", r"sysrq: (?P<action>(?!SysRq : |HELP|This sysrq)[A-Z][^\r\n]*?)\s*$", "notice",
      "Linux drivers/tty/sysrq.c", "'sysrq: ' >= 5.6"),
    R("sysrq.done", "sysrq.done", " complete", r"(?P<action>Emergency (?:Sync|Remount)) complete", "info",
      "Linux fs/sync.c, fs/super.c", "all"),
    R("sysrq.disabled", "sysrq.disabled", "This sysrq operation is disabled", None, "warning",
      "Linux drivers/tty/sysrq.c", "all"),
    R("sysrq.help", "sysrq.help", "HELP : loglevel", None, "info", "Linux drivers/tty/sysrq.c", "all"),
    # -- OpenAFS -----------------------------------------------------------------------------------
    R("afs.client_start", "afs.start", "Starting AFS services", None, "notice", "openafs-client init script", "Debian 1.4-1.8",
      fields={"what": "client-start"}),
    R("afs.client_up", "afs.start", "All AFS daemons started", None, "info", "OpenAFS src/afsd/afsd.c", "1.4-1.8",
      fields={"what": "client-up"}),
    R("afs.server_start", "afs.start", "Starting OpenAFS BOS server", None, "notice", "openafs-fileserver init script",
      "Debian (VERBOSE=yes)", fields={"what": "server-start"}),
    R("afs.server_start2", "afs.start", "Starting AFS Server", None, "notice", "openafs-fileserver init script", "old Debian",
      fields={"what": "server-start"}),
    R("afs.server_down", "afs.server_down", "Lost contact with file server",
      r"Lost contact with file server (?P<server>\S+) in cell (?P<cell>\S+?)(?: \(code (?P<code>-?\d+)\))?$", "warning",
      "OpenAFS src/afs/afs_server.c", "1.4 (no code), >= 1.6 (code N)"),
    R("afs.server_up", "afs.server_up", "is back up", r"file server (?P<server>\S+) in cell (?P<cell>\S+) is back up",
      "notice", "OpenAFS src/afs/afs_server.c", "1.4-1.8"),
    R("afs.salvager_start", "afs.salvage.start", "STARTING AFS SALVAGER", r"STARTING AFS SALVAGER (?P<version>[\d.]+)", "notice",
      "OpenAFS src/vol/vol-salvage.c (SalvageLog)", "1.4-1.8"),
    R("afs.salvage_wait", "afs.salvage.start", "Waiting for OpenAFS salvager to finish", None, "notice",
      "site's blocking openafs-fileserver init script", "local"),
    R("afs.salvaging_bos", "afs.salvage.progress", "Auxiliary status is: salvaging file system", None, "notice",
      "OpenAFS src/bozo/fsbnodeops.c via bos status", "1.4-1.8"),
    R("afs.salvaging_partition", "afs.salvage.progress", "SALVAGING FILE SYSTEM PARTITION",
      r"SALVAGING FILE SYSTEM PARTITION (?P<partition>\S+)", "notice", "OpenAFS src/vol/vol-salvage.c", "1.4-1.8"),
    R("afs.salvaged_volume", "afs.salvage.progress", "Salvaged ", r"Salvaged (?P<volume>\S+) \((?P<volume_id>\d+)\)", "info",
      "OpenAFS src/vol/vol-salvage.c", "1.4-1.8"),
    R("afs.salvage_in_progress", "afs.salvage.progress", "salvage in progress", None, "info",
      "site's blocking init script", "local"),
    R("afs.salvage_completed", "afs.salvage.done", "SALVAGING OF PARTITION",
      r"SALVAGING OF PARTITION (?P<partition>\S+) COMPLETED", "notice", "OpenAFS src/vol/vol-salvage.c", "1.4-1.8"),
    R("afs.salvage_finished_dots", "afs.salvage.done", " finished.", r"^\s*\.{3,}\s*finished\.", "notice",
      "site's blocking init script", "local"),
    R("afs.busy_volume", "afs.busy_volume", "Waiting for busy volume",
      r"Waiting for busy volume (?P<volume_id>\d+)(?: \((?P<volume>[^)]+)\))? in cell (?P<cell>\S+)", "notice",
      "OpenAFS src/afs/afs_analyze.c (client)", "1.4-1.8"),
    R("afs.fileserver_running", "afs.fileserver.running", "Auxiliary status is: file server running", None, "info",
      "OpenAFS src/bozo/fsbnodeops.c via bos status", "1.4-1.8"),
    R("afs.fileserver_status", "afs.fileserver.status", "Auxiliary status is: ",
      r"Auxiliary status is: (?P<status>(?!salvaging|file server running).+?)\.?$", "info",
      "OpenAFS src/bozo/fsbnodeops.c via bos status", "1.4-1.8"),
    R("afs.bos_unreachable", "afs.bos_unreachable", "failed to contact host's bosserver", None, "warning",
      "OpenAFS src/bozo/bos.c", "1.4-1.8"),
    # -- services: LSB init scripts, runit, systemd --------------------------------------------------
    R("lsb.start_ok", "service.ok", "Starting ",
      r"Starting (?P<desc>[^:\[]{1,80}): (?P<service>[\w-]+(?: [\w-]+)*?)(?:[ .]*\.\s*$|[ .]*\.(?=Starting )|(?=Starting )|[ .]*\[ ok )",
      "info", "lsb-base /lib/lsb/init-functions, init-d-script", "Debian 6-12", fields={"action": "start"}),
    R("lsb.stop_ok", "service.ok", "Stopping ",
      r"Stopping (?P<desc>[^:\[]{1,80}): (?P<service>[\w-]+(?: [\w-]+)*?)(?:[ .]*\.\s*$|[ .]*\[ ok )", "info",
      "lsb-base /lib/lsb/init-functions", "Debian 6-12", fields={"action": "stop"}),
    R("mysql.check_tables", "service.ok", "Checking for corrupt, not cleanly closed", None, "info",
      "mysql-server-5.1 init script", "Debian 6", fields={"service": "mysql", "action": "start"}),
    R("mysql.ready", "service.ok", "ready for connections", r"(?P<program>\S*mysqld): ready for connections", "info",
      "MySQL/MariaDB sql/share/errmsg ER_STARTUP", "5.x-10.x", fields={"service": "mysql", "action": "start"}),
    R("lsb.failed", "service.fail", "failed!", r"(?:^|[ .\]])failed!", "warning",
      "lsb-base log_end_msg 1", "Debian 6-12"),
    R("lsb.fancy_fail", "service.fail", "[FAIL", None, "warning", "lsb-base 20-left-info-blocks", "Debian 7-9"),
    R("lsb.glued_error", "service.fail", "Starting ",
      r"Starting [^:\[]{1,80}: (?P<service>[\w-]+?)(?P=service): (?P<error>.+)", "warning",
      "init-d-script with the daemon's own error glued on", "Debian 6-12"),
    R("lsb.glued_syntax", "service.fail", "rror", r"Starting [^:\[]{1,80}: (?P<service>[a-z0-9-]+?)(?=[A-Z]).*?[Ee]rror",
      "warning", "init-d-script with the daemon's own error glued on", "Debian 6-12"),
    R("apache.action_failed", "service.fail", "Action '", r"Action '(?P<action>\w+)' failed\.", "warning",
      "apache2ctl", "Debian 6-12", fields={"service": "apache2"}),
    R("apache.configtest", "service.fail", "configtest failed", r"The (?P<service>[\w-]+) configtest failed", "warning",
      "apache2 init script", "Debian 7-12"),
    R("startpar.failure", "service.fail", "returned failure",
      r"startpar: service\(s\) returned failure: (?P<service>.+?)(?: \.\.\.| failed!|$)", "warning",
      "sysv-rc /lib/init/rc (startpar)", "Debian 6-9"),
    R("runit.fail", "service.fail", "fail: ", r"^fail: (?P<service>[\w./-]+): (?P<error>.+)", "warning", "runit sv", "2.1"),
    R("runit.timeout", "service.fail", "timeout: ", r"^timeout: (?:run|down): (?P<service>[\w./-]+):", "warning",
      "runit sv", "2.1"),
    R("runit.ok", "service.ok", "ok: ", r"^ok: (?P<state>run|down): (?P<service>[\w./-]+):", "info", "runit sv", "2.1"),
    R("systemd.failed_start", "service.fail", "Failed to start ", r"Failed to start (?P<desc>.+?)\.?$", "warning",
      "systemd", "all"),
    R("systemd.job_failed", "service.fail", "Job for ", r"Job for (?P<service>\S+) failed", "warning", "systemctl", "all"),
    # -- databases ------------------------------------------------------------------------------------
    R("postgres.ready_log", "db.postgres.ready", "ready to accept connections", None, "info", "PostgreSQL postmaster.c",
      ">= 8.x"),
    R("postgres.online", "db.postgres.ready", "): online", r"(?P<cluster>[\d.]+/\w+) \(port (?P<port>\d+)\): online", "info",
      "postgresql-common pg_lsclusters / init script status", "Debian 6-12"),
    R("postgres.start_ok", "db.postgres.ready", "Starting PostgreSQL",
      r"Starting PostgreSQL (?P<version>[\d.]+) database server: (?P<cluster>\w+)(?:\.\s*$|[ .]*\[ ok )", "info",
      "postgresql-common init script", "Debian 6-12"),
    R("postgres.failed", "db.postgres.fail", "PostgreSQL server failed to start", None, "warning",
      "postgresql-common pg_ctlcluster", "Debian 6-12"),
    R("postgres.not_running", "db.postgres.fail", "Postgres not running!", None, "warning",
      "the runbook's own check command", "site"),
    R("mysql.crash_recovery", "db.mysql.crash_recovery", "Database was not shut down normally", None, "notice",
      "InnoDB storage/innobase/log/log0recv.c", "MySQL 5.x, MariaDB 10.x"),
    # -- known-harmless lines (the runbook's list) ------------------------------------------------------
    R("benign.innodb_ibd", "benign", "Crash recovery may have failed for some .ibd files", None, "info",
      "InnoDB storage/innobase/fil/fil0fil.c", "MySQL 5.x", benign="runbook: databases of members who left HCoop"),
    R("benign.bos_while_salvaging", "benign", "failed to contact host's bosserver",
      r"Waiting for OpenAFS salvager to finish:\s*bos: failed to contact", "info",
      "site's blocking init script polling bos", "local", benign="bosserver not answering yet while the salvage runs"),
    R("benign.openafs_taint", "benign", "taints kernel", r"openafs: .*taints kernel", "info", "Linux kernel/module.c",
      "all", benign="OpenAFS is an out-of-tree module"),
    # -- login and shell -----------------------------------------------------------------------------------
    R("login.prompt", "login.prompt", "login: ", r"^\s*(?!Last )(?P<host>[A-Za-z0-9][\w.-]*) login: ?", "notice",
      "util-linux agetty, busybox getty, shadow login", "all", prompt=True),
    R("login.prompt_bare", "login.prompt", "login: ", r"^\s*login: ?", "notice", "agetty --nohostname", "all",
      prompt=True, fields={"host": ""}),
    R("login.password", "login.password_prompt", "assword: ", r"^\s*(?:\S+'s )?[Pp]assword: ?", "info",
      "linux-pam pam_get_authtok.c, busybox login", "all", prompt=True),
    R("login.incorrect", "login.incorrect", "Login incorrect", None, "warning", "shadow/busybox login", "all"),
    R("login.invalid_password", "login.invalid_password", "invalid password for",
      r"login\[(?P<pid>\d+)\]: invalid password for '(?P<user>[^']+)'", "warning", "busybox loginutils/login.c", "1.x"),
    R("login.max_tries", "login.lockout", "Maximum number of tries exceeded", None, "critical", "shadow src/login.c", "all",
      fields={"reason": "maximum number of tries"}),
    R("login.locked", "login.lockout", "account locked", r"(?i)account (?:is )?locked", "critical", "pam_faillock / pam_tally2",
      "all", fields={"reason": "account locked"}),
    R("login.timed_out", "login.lockout", "Login timed out", None, "warning", "shadow src/login.c", "all",
      fields={"reason": "login timed out"}),
    R("login.last", "login.ok", "Last login: ", None, "info", "pam_lastlog", "all"),
    R("login.busybox_ok", "login.ok", " login on '", r"login\[\d+\]: (?P<user>\S+) login on '(?P<tty>[^']+)'", "info",
      "busybox loginutils/login.c", "1.x"),
    R("shell.prompt.debian", "shell.prompt", "@", r"^\s*(?P<user>[\w.-]+)@(?P<host>[\w.-]+):[^\s#$]*[#$] ", "info",
      "bash PS1 from /etc/bash.bashrc", "Debian", prompt=True),
    R("shell.prompt.busybox", "shell.prompt", "# ", r"^\s*[~/][^\s#]* # ", "info", "busybox ash (PS1='\\w # ')", "1.x",
      prompt=True, fields={"user": "root"}),
    # -- IPMI SOL and console servers -------------------------------------------------------------------------
    R("sol.open", "sol.open", "[SOL Session operational", None, "info", "ipmitool lib/ipmi_sol.c", "1.8.x"),
    R("sol.active_elsewhere", "sol.active_elsewhere", "SOL payload already active on another session", None, "warning",
      "ipmitool lib/ipmi_sol.c", "1.8.x"),
    R("sol.closed", "sol.closed", "SOL session closed by BMC", None, "warning", "ipmitool lib/ipmi_sol.c", "1.8.x"),
    R("sol.keepalive", "sol.closed", "No response to keepalive", None, "warning", "ipmitool lib/ipmi_sol.c", "1.8.x"),
)


def load_site_rules(path: Path) -> tuple[list[Rule], dict[str, str]]:
    """Given a site rules TOML file, return its rules and severity overrides.

    Format::

        [[rule]]                # add a kind or a line to an existing one
        name = "domtool.fail"
        kind = "site.domtool_fail"   # a new kind, or one of the built-in kinds
        literal = "domtool:"         # required: the fast path looks for it
        pattern = "domtool: (?P<error>.+)"   # optional regular expression
        severity = "warning"

        [[benign]]              # mark lines known-harmless
        literal = "Some harmless line"
        reason = "why it is harmless"

        [severity]              # change a kind's severity
        "afs.busy_volume" = "info"

    Raise ``ConfigError`` naming the file and the entry.
    """
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    rules: list[Rule] = []
    for key in data:
        if key not in ("rule", "benign", "severity"):
            raise ConfigError(f"{path}: {key}: unknown table; use [[rule]], [[benign]] or [severity]")
    for i, entry in enumerate(data.get("rule", [])):
        where = f"{path}: rule[{i}]"
        for k in entry:
            if k not in ("name", "kind", "literal", "pattern", "severity", "prompt"):
                raise ConfigError(f"{where}.{k}: unknown key")
        if not isinstance(entry.get("literal"), str) or not entry["literal"]:
            raise ConfigError(f"{where}.literal: required (a string the line must contain)")
        if not isinstance(entry.get("kind"), str) or not entry["kind"]:
            raise ConfigError(f"{where}.kind: required")
        sev = entry.get("severity", "warning")
        if sev not in SEVERITIES:
            raise ConfigError(f"{where}.severity: {sev!r} is not one of {', '.join(SEVERITIES)}")
        try:
            rule = Rule(entry.get("name", f"site.{i}"), entry["kind"], entry["literal"], entry.get("pattern"), sev,
                        f"site rules {path.name}", "site", prompt=bool(entry.get("prompt", False))).compile()
        except re.error as exc:
            raise ConfigError(f"{where}.pattern: bad regular expression: {exc}") from None
        rules.append(rule)
    for i, entry in enumerate(data.get("benign", [])):
        where = f"{path}: benign[{i}]"
        if not isinstance(entry.get("literal"), str) or not entry["literal"]:
            raise ConfigError(f"{where}.literal: required")
        reason = entry.get("reason", "site: known harmless")
        try:
            rules.append(Rule(f"site.benign.{i}", "benign", entry["literal"], entry.get("pattern"), "info",
                              f"site rules {path.name}", "site", benign=reason).compile())
        except re.error as exc:
            raise ConfigError(f"{where}.pattern: bad regular expression: {exc}") from None
    severities = data.get("severity", {})
    for kind, sev in severities.items():
        if sev not in SEVERITIES:
            raise ConfigError(f"{path}: severity.{kind}: {sev!r} is not one of {', '.join(SEVERITIES)}")
    return rules, dict(severities)


_COMPILED: list[Rule] = []


def builtin_rules() -> list[Rule]:
    """The built-in rules, compiled (once per process: rules are immutable, so every caller shares them)."""
    if not _COMPILED:
        rules = [r.compile() for r in BUILTIN]
        unknown = [r.kind for r in rules if r.kind not in KINDS]
        assert not unknown, unknown
        _COMPILED.extend(rules)
    return list(_COMPILED)
