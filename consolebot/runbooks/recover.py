"""Recover a hung Deleuze: the runbook's sections 2 to 4, on the console, unattended.

Steps (named so ``--from STEP`` can resume): preflight, prepare (hold root shells on the
other hosts, see :mod:`consolebot.runbooks.others`), assess, boot, login, fileserver, salvage,
services, postgres, others (the other hosts, seed 4.1), report. Site specifics (services, their
control methods and process names, the checks, the other hosts) come from the inventory. Every act is verified from the console
(exit codes, process lists, the recogniser's events) and recorded with its evidence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consolebot.actions.console import Console
from consolebot.actions.login import LoginResult, login
from consolebot.actions.shell import CommandResult, Shell
from consolebot.errors import ConsoleBotError, PromptTimeout
from consolebot.inventory.model import Host, ServiceSpec
from consolebot.power.base import PowerBackend
from consolebot.runbooks.others import Others, check_passes, service_cmd
from consolebot.runbooks.reboot import LadderOptions, nudge, run_ladder
from consolebot.runbooks.steps import STEPS
from consolebot.secrets.secret import Secret

_SALVAGING = re.compile(r"Auxiliary status is: salvaging file system")
_RUNNING = re.compile(r"Auxiliary status is: file server running")
_SALVAGED = re.compile(r"^(\d+)$", re.M)


@dataclass
class RecoverOptions:
    from_step: str = "preflight"
    dry_run: bool = False
    clean: bool = False
    allow_power: bool = False
    max_rung: int = 5
    assume_identity: bool = False
    boot_timeout_s: float = 600.0
    salvage_deadline_s: float = 3600.0
    salvage_expected_s: float = 1200.0
    salvage_poll_s: float = 30.0
    postgres_max_restarts: int = 4
    command_timeout_s: float = 120.0
    prepare: bool = True
    only: str | None = None  # "others": that step alone


@dataclass
class StepRecord:
    name: str
    outcome: str = "pending"  # ok, skipped, failed, interrupted, planned
    detail: str = ""
    evidence: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RecoverReport:
    host: str
    steps: list[StepRecord]
    outcome: str = "running"
    logged_out: bool | None = None
    lock_released: bool = False
    transcript: dict[str, str] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    login: dict[str, Any] = field(default_factory=dict)
    others: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "recovered" or (self.outcome == "planned")

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "outcome": self.outcome, "steps": [s.to_json() for s in self.steps],
                "logged_out": self.logged_out, "lock_released": self.lock_released, "transcript": self.transcript,
                "plan": self.plan, "elapsed_s": self.elapsed_s, "login": self.login, "others": self.others}


class Recovery:
    """Given an attached console, the host, its power backend and its candidates, perform the recovery."""

    def __init__(self, console: Console | None, host: Host, power: PowerBackend | None,
                 candidates: Callable[[str], list[Secret]], opts: RecoverOptions,
                 progress: Callable[[str], None] = lambda s: None, others: Others | None = None) -> None:
        self._console = console
        self.others = others
        self.host = host
        self.power = power
        self.candidates = candidates
        self.opts = opts
        self.progress = progress
        self.report = RecoverReport(host.name, [StepRecord(s) for s in STEPS])
        self.shell: Shell | None = None
        self.login_result: LoginResult | None = None
        self.stopped: list[ServiceSpec] = []
        self.salvaging = False
        self._t0 = time.monotonic()
        self.error: ConsoleBotError | None = None

    # -- helpers ------------------------------------------------------------------------------------------
    @property
    def console(self) -> Console:
        assert self._console is not None, "a main-host step without its console"
        return self._console

    def step(self, name: str) -> StepRecord:
        return self.report.steps[STEPS.index(name)]

    def ev(self, rec: StepRecord, text: str) -> None:
        rec.evidence.append(text)
        self.progress(f"  {rec.name}: {text}")

    def sh(self) -> Shell:
        assert self.shell is not None
        return self.shell

    def run(self, rec: StepRecord, command: str, timeout_s: float | None = None) -> CommandResult:
        res = self.sh().run(command, timeout_s or self.opts.command_timeout_s)
        first = res.output.splitlines()[0] if res.output else ""
        self.ev(rec, f"$ {command} -> exit {res.exit_code}" + (f": {first[:100]}" if first else ""))
        return res

    def bos_status(self) -> str:
        name = self.host.console_hostnames[0] if self.host.console_hostnames else "localhost"
        return self.host.checks.get("bos", f"bos status {name} -localauth")

    # -- the run -----------------------------------------------------------------------------------------
    def execute(self) -> RecoverReport:
        start = STEPS.index(self.opts.from_step)
        resumes_main = STEPS.index("login") < start <= STEPS.index("postgres")
        try:
            for i, name in enumerate(STEPS[:-1]):
                rec = self.step(name)
                if self.opts.only is not None and name != self.opts.only:
                    rec.outcome, rec.detail = "skipped", f"--only {self.opts.only}"
                    continue
                if i < start and not (name == "login" and resumes_main):
                    rec.outcome = "skipped"
                    rec.detail = f"resumed with --from {self.opts.from_step}"
                    continue
                t = time.monotonic()
                self.progress(f"[{name}]")
                try:
                    getattr(self, "step_" + name)(rec)
                    if rec.outcome == "pending":
                        rec.outcome = "ok"
                finally:
                    rec.elapsed_s = round(time.monotonic() - t, 3)
                if rec.outcome == "failed":
                    self.report.outcome = "failed"
                    break
                if rec.outcome == "stop":  # the run ends here by design (alive and nothing to do, a panic report)
                    break
            else:
                self.report.outcome = "planned" if self.opts.dry_run else "recovered"
        except KeyboardInterrupt:
            for rec in self.report.steps:
                if rec.outcome == "pending" and rec.elapsed_s == 0 and rec.evidence:
                    rec.outcome = "interrupted"
            current = next((r for r in self.report.steps if r.outcome == "pending"), None)
            if current is not None:
                current.outcome = "interrupted"
                current.detail = "SIGINT/SIGTERM"
            self.report.outcome = "interrupted"
        except ConsoleBotError as exc:
            current = next((r for r in self.report.steps if r.outcome == "pending"), None)
            if current is not None:
                current.outcome = "failed"
                current.detail = str(exc)
            self.report.outcome = "failed"
            self.error = exc
        finally:
            self.finish()
        return self.report

    def finish(self) -> None:
        rec = self.step("report")
        if self.others is not None:
            for name, how in self.others.close().items():
                self.ev(rec, f"{name}: held shell {how}")
        if self.shell is not None:
            try:
                self.console.session.send(b"\x03")
                self.console.quiet(0.3, 2.0)
                self.report.logged_out = self.shell.logout()
            except (ConsoleBotError, KeyboardInterrupt):
                self.report.logged_out = False
            self.ev(rec, "logged out, login prompt back" if self.report.logged_out
                    else "COULD NOT LOG OUT: a root shell may be open on the console")
        rec.outcome = "ok"
        self.report.elapsed_s = round(time.monotonic() - self._t0, 3)

    # -- steps --------------------------------------------------------------------------------------------
    def step_preflight(self, rec: StepRecord) -> None:
        h = self.host
        if not h.services:
            rec.outcome, rec.detail = "failed", f"{h.source}: no [[service]] entries: nothing to recover"
            return
        for user in h.login.users:
            n = len(self.candidates(user))
            if n == 0:
                rec.outcome = "failed"
                rec.detail = (f"the keyring holds no candidate for {h.login.secret_host or h.name}/{user}: "
                              f"consolebot passwords add {h.login.secret_host or h.name} {user}")
                return
            self.ev(rec, f"{n} candidate password(s) for {user}")
        self.ev(rec, f"console answers: {self.console.session.transport.describe()}; lock held")
        if self.power is not None:
            try:
                self.ev(rec, f"BMC answers: power is {self.power.status()} ({self.power.describe()})")
            except ConsoleBotError as exc:
                self.ev(rec, f"BMC does not answer: {exc} (power rungs unavailable)")
                self.power = None

    def step_prepare(self, rec: StepRecord) -> None:
        """Seed section 1: hold a root shell on each other host before the main one is touched."""
        if self.others is None:
            rec.outcome, rec.detail = "skipped", f"{self.host.source}: no 'others' hosts named"
            return
        if not self.opts.prepare or self.opts.dry_run:
            rec.outcome, rec.detail = "skipped", "--no-prepare" if not self.opts.prepare else "dry run"
            return
        held = self.others.prepare()
        for name, how in held.items():
            self.ev(rec, f"{name}: {'shell held over ' + how if how in ('ssh', 'console') else how}")
        missing = [n for n, how in held.items() if how not in ("ssh", "console")]
        rec.detail = (f"held: {', '.join(n for n in held if n not in missing) or 'none'}" +
                      (f"; none on {', '.join(missing)} (the others step tries again)" if missing else ""))

    def step_others(self, rec: StepRecord) -> None:
        """Seed 4.1: the other hosts (restarts, checks, a reboot when a restart cannot be done), then re-check."""
        if self.others is None:
            rec.outcome, rec.detail = "skipped", f"{self.host.source}: no 'others' hosts named"
            return
        if self.opts.dry_run:  # nothing is sent in a dry run: the plan says what would be
            self.plan_others()
            rec.outcome, rec.detail = "planned", "dry run"
            self.report.outcome = "planned"
            return
        reports = self.others.run()
        for name, r in reports.items():
            self.report.others[name] = r.to_json()
            self.ev(rec, f"{name}: {r.outcome} via {r.via or '-'}: {r.detail}")
        if self.shell is not None:  # the seed's last words: "re-check everything"
            for name, command in self.host.checks.items():
                res = self.run(rec, command)
                self.ev(rec, f"re-check {self.host.name} {name}: {'pass' if check_passes(res) else 'FAIL'}")
                if not check_passes(res):
                    rec.outcome, rec.detail = "failed", f"{self.host.name}'s check {name} fails after the others step"
        failed = [n for n, r in reports.items() if r.outcome == "failed"]
        if failed:
            rec.outcome = "failed"
            rec.detail = "; ".join(f"{n}: {reports[n].detail}" for n in failed)
        elif rec.outcome != "failed":
            rec.detail = ", ".join(f"{n} {r.outcome}" for n, r in reports.items())

    def step_assess(self, rec: StepRecord) -> None:
        if self.opts.dry_run:
            self.console.quiet(1.0, 5.0)
            last = next((e for e in reversed(self.console.events) if e.kind in ("login.prompt", "shell.prompt")), None)
            seen = f"{last.kind} at line {last.line}" if last else "no prompt seen (read-only: no poke sent)"
            self.ev(rec, seen)
            self.plan_all(alive=last is not None)
            rec.outcome = "stop"
            self.report.outcome = "planned"
            return
        r1 = nudge(self.console)
        self.ev(rec, f"nudge: {r1.outcome} ({r1.detail})")
        if r1.outcome == "alive":
            self.report.steps[STEPS.index("boot")].outcome = "skipped"
            if self.opts.clean:
                self.clean_reboot(rec)
            return
        opts = LadderOptions(allow_power=self.opts.allow_power, max_rung=self.opts.max_rung,
                             assume_identity=self.opts.assume_identity, reboot_timeout_s=self.opts.boot_timeout_s)
        # the nudge is rung 1 of the ladder, which repeats it (cheap) before it climbs
        ladder = run_ladder(self.console, self.host, self.power, opts)
        for r in ladder.rungs:
            self.ev(rec, f"rung {r.rung} {r.name}: {r.outcome}" + (f" ({r.evidence} line {r.line})" if r.evidence else ""))
        if ladder.identity is not None:
            self.ev(rec, f"identity: {ladder.identity.describe()}")
        if ladder.outcome not in ("rebooted", "alive"):
            rec.outcome = "failed"
            rec.detail = "not rebooted; nothing claimed" + ("" if self.opts.allow_power else " (power needs --allow-power)")

    def clean_reboot(self, rec: StepRecord) -> None:
        self.do_login(rec)
        for svc in self.host.services:
            self.stop_service(rec, svc, verify=False)
        mark = self.console.mark()
        self.sh().console.session.sendline("reboot")
        self.shell = None  # the shell is gone with the reboot
        self.stopped = []  # the boot starts them again
        self.ev(rec, "clean reboot: services stopped, 'reboot' sent")
        self.report.steps[STEPS.index("boot")].outcome = "pending"
        self._boot_mark = mark

    def step_boot(self, rec: StepRecord) -> None:
        if rec.outcome == "skipped":
            return
        since = getattr(self, "_boot_mark", 0)
        try:
            with self.console.session.abort_on():
                ev = self.console.wait_for(("login.prompt", "kernel.panic"), self.opts.boot_timeout_s, since=since)
        except PromptTimeout:
            rec.outcome, rec.detail = "failed", f"no login prompt within {self.opts.boot_timeout_s:g} s of the boot"
            return
        if ev.kind == "kernel.panic":
            rec.outcome = "failed"
            rec.detail = f"kernel panic at transcript line {ev.line}: {ev.fields.get('reason', '')}"
            self.ev(rec, rec.detail)
            return
        boot = self.console.timeline.current
        phases = ", ".join(f"{p}@{n}" for p, n in (boot.phases if boot else []))
        self.ev(rec, f"login prompt at line {ev.line}; phases {phases}")
        fails = [e for e in self.console.events[since:] if e.kind == "service.fail"]
        if fails:
            named = sorted({e.fields["service"] for e in fails if e.fields.get("service")})
            self.ev(rec, f"{len(fails)} service failure line(s) while booting" + (f": {', '.join(named)}" if named else ""))

    def do_login(self, rec: StepRecord) -> None:
        if self.shell is not None:
            return
        res = login(self.console, self.host.login.users, self.candidates, self.host.login.max_attempts)
        self.login_result = res
        self.report.login = {"user": res.user, "candidate": res.candidate, "attempts": res.attempts}
        self.ev(rec, f"logged in as {res.user or 'an open shell'}" +
                (f" with candidate {res.candidate}" if res.candidate else ""))
        self.shell = Shell(self.console, self.opts.command_timeout_s)
        self.shell.prepare()

    def step_login(self, rec: StepRecord) -> None:
        self.do_login(rec)
        if STEPS.index(self.opts.from_step) > STEPS.index("fileserver"):
            # resuming: what the earlier run knew is read again from the host itself
            res = self.run(rec, self.bos_status())
            self.salvaging = bool(_SALVAGING.search(res.output))
            self.stopped = [svc for svc in self.host.services
                            if self.run(rec, f"pgrep -x {svc.process}").exit_code != 0]
            self.ev(rec, f"resumed: {'salvaging' if self.salvaging else 'not salvaging'}; "
                         f"not running: {', '.join(s.name for s in self.stopped) or 'none'}")

    def step_fileserver(self, rec: StepRecord) -> None:
        res = self.run(rec, self.bos_status())
        self.salvaging = bool(_SALVAGING.search(res.output))
        if not self.salvaging:
            if not _RUNNING.search(res.output):
                self.ev(rec, "the fileserver is not salvaging, but not reported running either")
            rec.detail = "not salvaging: no service stopped"
            return
        rec.detail = "salvaging: stopping the services that started without AFS"
        failed = [svc.name for svc in self.host.services if not self.stop_service(rec, svc)]
        if failed:
            rec.outcome = "failed"
            rec.detail = f"still running after stop and killall: {', '.join(failed)}"

    def stop_service(self, rec: StepRecord, svc: ServiceSpec, verify: bool = True) -> bool:
        self.run(rec, service_cmd(svc, "stop"))
        self.run(rec, f"killall {svc.process}")
        if svc not in self.stopped:
            self.stopped.append(svc)
        if not verify:
            return True
        for attempt in ("", "-9 "):
            check = self.run(rec, f"pgrep -x {svc.process}")
            if check.exit_code != 0:
                self.ev(rec, f"{svc.name}: down (no {svc.process} process)")
                return True
            if attempt == "":
                self.run(rec, f"killall -9 {svc.process}")
        self.ev(rec, f"{svc.name}: STILL RUNNING as {svc.process}")
        return False

    def step_salvage(self, rec: StepRecord) -> None:
        if not self.salvaging:
            rec.outcome, rec.detail = "skipped", "the fileserver was not salvaging"
            return
        started = time.monotonic()
        deadline = started + self.opts.salvage_deadline_s
        with self.console.session.abort_on(b"Kernel panic - not syncing"):
            while True:
                res = self.run(rec, self.bos_status())
                if not _SALVAGING.search(res.output):
                    self.ev(rec, f"salvage done after {time.monotonic() - started:.0f} s ('{res.output.strip()[-60:]}')")
                    break
                volumes = self.sh().run("grep -c Salvaged /var/log/openafs/SalvageLog 2>/dev/null")
                vols = volumes.output.strip() if volumes.exit_code == 0 and volumes.output.strip().isdigit() else "?"
                self.progress(f"  salvage: {time.monotonic() - started:.0f} s elapsed (expected about "
                              f"{self.opts.salvage_expected_s / 60:.0f} min), volumes salvaged: {vols}")
                if time.monotonic() >= deadline:
                    rec.outcome = "failed"
                    rec.detail = f"still salvaging after {self.opts.salvage_deadline_s:g} s (the deadline)"
                    return
                try:
                    self.console.wait_for(("kernel.panic",), min(self.opts.salvage_poll_s, deadline - time.monotonic()))
                    rec.outcome, rec.detail = "failed", "kernel panic during the salvage"
                    return
                except PromptTimeout:
                    pass
        busy = [e for e in self.console.events if e.kind == "afs.busy_volume"]
        if busy:
            self.ev(rec, f"{len(busy)} 'waiting for busy volume' line(s): expected after a salvage")

    def step_services(self, rec: StepRecord) -> None:
        todo = list(self.stopped)
        if not todo:
            # nothing was stopped: still double-check every service (those that started without AFS may be down)
            # a process under another name (mariadbd for mysqld) is asked about through its own status command
            todo = [svc for svc in self.host.services if self.run(rec, f"pgrep -x {svc.process}").exit_code != 0
                    and self.run(rec, service_cmd(svc, "status")).exit_code != 0]
            if not todo:
                rec.detail = "every service is running"
                return
            self.ev(rec, f"not running: {', '.join(s.name for s in todo)}; starting them")
        problems = []
        for svc in todo:
            mark = self.console.mark()
            res = self.run(rec, service_cmd(svc, "start"))
            fails = [e for e in self.console.events[mark:] if e.kind == "service.fail"]
            benign = [e for e in self.console.events[mark:] if e.kind == "benign"]
            for b in benign:
                self.ev(rec, f"known harmless: {b.text[:80]} (line {b.line})")
            up = self.run(rec, f"pgrep -x {svc.process}")
            if up.exit_code != 0:
                up = self.run(rec, service_cmd(svc, "status"))
            if up.exit_code != 0:
                problems.append(svc.name)
                self.ev(rec, f"{svc.name}: NOT running after start (exit {res.exit_code})")
            elif res.exit_code != 0 or fails:
                self.ev(rec, f"{svc.name}: running, but its start reported errors")
        if problems and all(p == "postgres" for p in problems):
            self.ev(rec, "postgres is left to the postgres step (it often needs more starts)")
        elif problems:
            rec.outcome = "failed"
            rec.detail = f"not running after start: {', '.join(problems)}"

    def step_postgres(self, rec: StepRecord) -> None:
        """Check Postgres, restart it until the check passes; then restart domtool-server and test domtool.

        A Postgres process can exist and still refuse connections (it started without AFS): when the
        domtool test then fails, Postgres is restarted again, within the same limit.
        """
        check = self.host.checks.get("postgres")
        pg = next((s for s in self.host.services if s.name in ("postgres", "postgresql")), None)
        if check is None and pg is None:
            rec.outcome, rec.detail = "skipped", "no postgres service or check in the inventory"
            return
        check = check or f"pgrep -x {pg.process if pg else 'postgres'}"
        dt = next((s for s in self.host.services if s.name == "domtool-server"), None)
        test = self.host.checks.get("domtool")
        restarts = 0
        while True:
            if check_passes(self.run(rec, check)):
                if dt is not None:
                    self.run(rec, service_cmd(dt, "restart"))
                if not test:
                    self.ev(rec, f"postgres verified after {restarts} restart(s)")
                    return
                res = self.run(rec, test)
                if check_passes(res):
                    self.ev(rec, f"postgres and domtool verified after {restarts} postgres restart(s)")
                    return
                self.ev(rec, "the domtool test failed: restarting postgres again")
            if pg is None or restarts >= self.opts.postgres_max_restarts:
                rec.outcome = "failed"
                rec.detail = f"postgres/domtool not verified after {restarts} restart(s) of postgres"
                return
            self.run(rec, service_cmd(pg, "restart"))
            restarts += 1

    # -- dry run ------------------------------------------------------------------------------------------------
    def plan_all(self, alive: bool) -> None:
        p = self.report.plan
        h = self.host
        if not alive:
            p.append("nudge: send Enter 3 times over 3 s; if a prompt answers, the host is alive")
            p.append("identity: compare the console's hostname, else the BMC GUID, with the inventory")
            p.append("SysRq: BREAK + s, BREAK + u, BREAK + b (each confirmed by 'sysrq: ...')")
            if self.opts.allow_power:
                p.append("if SysRq is not delivered: IPMI power reset, then power cycle (each proven by a new boot)")
            else:
                p.append("if SysRq is not delivered: stop (power acts need --allow-power)")
            p.append("boot: watch for the login prompt (a panic ends the run with a report)")
        users = ", ".join(h.login.users)
        p.append(f"login as {users}: candidates from the keyring, sent as *** after 'Password:'")
        p.append(f"$ {self.bos_status()}")
        p.append("branch: if 'salvaging file system':")
        for svc in h.services:
            p.append(f"    $ {service_cmd(svc, 'stop')}; killall {svc.process}; pgrep -x {svc.process} (verify down)")
        p.append(f"    poll '{self.bos_status()}' every {self.opts.salvage_poll_s:g} s until the salvage ends "
                 f"(expected about {self.opts.salvage_expected_s / 60:.0f} min, deadline {self.opts.salvage_deadline_s:g} s)")
        for svc in h.services:
            p.append(f"    $ {service_cmd(svc, 'start')}; pgrep -x {svc.process}")
        if "postgres" in h.checks:
            p.append(f"$ {h.checks['postgres']}  (branch: restart postgres up to {self.opts.postgres_max_restarts} times)")
        if any(s.name == "domtool-server" for s in h.services):
            p.append("$ " + service_cmd(next(s for s in h.services if s.name == "domtool-server"), "restart"))
        if "domtool" in h.checks:
            p.append(f"$ {h.checks['domtool']}")
        self.plan_others()
        p.append("logout: exit, and check the login prompt is back")
        for s in STEPS[STEPS.index("boot"):-1]:
            self.step(s).outcome = "planned"

    def plan_others(self) -> None:
        p = self.report.plan
        if self.others is not None:
            for o in self.others.hosts:
                after = o.after_outage
                p.append(f"{o.name}: shell over {'SSH, else ' if o.ssh else ''}its console" +
                         (f"; restart {', '.join(after.restart)}" if after and after.restart else "") +
                         (f"; checks {', '.join(o.checks)}" if o.checks else "") +
                         (f"; when {', '.join(after.fixes)} fails: restart {'; '.join(', '.join(v) for v in after.fixes.values())}"
                          if after and after.fixes else ""))


def exit_code(report: RecoverReport, error: ConsoleBotError | None) -> int:
    """0 only when every step verified; else the failing family's code."""
    from consolebot.errors import EXIT_OK, EXIT_SECRET, EXIT_TARGET, EXIT_VERIFY

    if report.outcome in ("recovered", "planned"):
        return EXIT_OK
    if report.outcome == "interrupted":
        return 130
    if error is not None:
        return error.exit_code
    failed = next((r for r in report.steps if r.outcome == "failed"), None)
    if failed is None:
        return EXIT_TARGET
    if failed.name == "preflight":
        return EXIT_SECRET if "keyring" in failed.detail else 2
    if failed.name in ("fileserver", "services", "postgres", "salvage", "others"):
        return EXIT_VERIFY if "deadline" not in failed.detail and "panic" not in failed.detail else EXIT_TARGET
    return EXIT_TARGET


def markdown(report: RecoverReport) -> str:
    """The report as Markdown (``--report FILE``)."""
    lines = [f"# consolebot recover {report.host}: {report.outcome}", "",
             f"Elapsed: {report.elapsed_s:.1f} s. Logged out: {report.logged_out}. Lock released: {report.lock_released}.",
             ""]
    if report.plan:
        lines += ["## Plan (dry run)", ""] + [f"- {p}" for p in report.plan] + [""]
    lines += ["## Steps", "", "| step | outcome | time | detail |", "|---|---|---|---|"]
    for r in report.steps:
        lines.append(f"| {r.name} | {r.outcome} | {r.elapsed_s:.1f} s | {r.detail.replace('|', '/')} |")
    if report.others:
        lines += ["", "## Other hosts", "", "| host | outcome | via | checks | detail |", "|---|---|---|---|---|"]
        for name, o in report.others.items():
            checks = ", ".join(f"{k}: {v}" for k, v in o["checks"].items()) or "-"
            lines.append(f"| {name} | {o['outcome']} | {o['via']} | {checks.replace('|', '/')} | "
                         f"{str(o['detail']).replace('|', '/')} |")
    for r in report.steps:
        if r.evidence:
            lines += ["", f"### {r.name}", ""] + [f"- {e.replace('|', '/')}" for e in r.evidence]
    for name, o in report.others.items():
        lines += ["", f"### {name}", ""] + [f"- {str(e).replace('|', '/')}" for e in o["evidence"]]
    lines += ["", "## Transcript", ""] + [f"- {k}: `{v}`" for k, v in report.transcript.items()]
    return "\n".join(lines) + "\n"
