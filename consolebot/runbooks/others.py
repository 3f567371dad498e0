"""The other machines after the main server's outage (seed sections 1 and 4.1).

``prepare``: before the main server is touched, hold a root shell on each host its inventory
names in ``others`` (SSH where it answers in time, else the console), because new logins there
may stop while it is down. ``run``: for each of them, use the held shell when it still answers,
else SSH, else the console; restart what ``[after_outage] restart`` lists (each verified by its
process), reboot the host when a restart cannot be done (a clean ``reboot`` on its console,
proven by a new login prompt), then run every ``[checks]`` command; a failing check gets the
restarts ``[after_outage.fixes]`` names for it and runs again. Everything seen is evidence in the
host's report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolebot.actions.shell import CommandResult
from consolebot.errors import ConsoleBotError, PromptTimeout
from consolebot.inventory.model import AfterOutageSpec, Host, ServiceSpec
from consolebot.runbooks.held import (
    ConsoleShellOptions,
    HeldShell,
    ShellUnavailable,
    console_shell,
    open_console_shell,
    open_ssh_shell,
)
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret


def service_cmd(svc: ServiceSpec, action: str) -> str:
    if svc.method == "sv":
        return f"sv {action} {svc.script}"
    if svc.method == "systemctl":
        return f"systemctl {action} {svc.script}"
    return f"/etc/init.d/{svc.script} {action}"


def check_passes(res: CommandResult) -> bool:
    """A check passes when it exits 0 and says nothing is 'not running' (the seed's Postgres check echoes that)."""
    return res.exit_code == 0 and "not running" not in res.output.lower()


@dataclass
class OtherReport:
    host: str
    outcome: str = "pending"  # ok, failed, skipped
    via: str = ""
    detail: str = ""
    restarted: list[str] = field(default_factory=list)
    rebooted: bool = False
    checks: dict[str, str] = field(default_factory=dict)  # name -> "pass" | "fail (exit N): first line"
    evidence: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OthersOptions:
    console: ConsoleShellOptions = field(default_factory=ConsoleShellOptions)
    command_timeout_s: float = 120.0
    alive_timeout_s: float = 10.0


class Others:
    """Given the other hosts, how to reach them and their candidates, hold shells and recover them."""

    def __init__(self, hosts: list[Host], redactor: Redactor, folder: Path,
                 candidates_for: Callable[[Host], Callable[[str], list[Secret]]], opts: OthersOptions,
                 progress: Callable[[str], None] = lambda s: None) -> None:
        self.hosts = hosts
        self.redactor = redactor
        self.folder = folder
        self.candidates_for = candidates_for
        self.opts = opts
        self.progress = progress
        self.held: dict[str, HeldShell] = {}
        self.reports: dict[str, OtherReport] = {h.name: OtherReport(h.name) for h in hosts}

    def _ev(self, rep: OtherReport, text: str) -> None:
        rep.evidence.append(text)
        self.progress(f"  {rep.host}: {text}")

    # -- shells -------------------------------------------------------------------------------------------------
    def open(self, host: Host, rep: OtherReport, console_only: bool = False) -> HeldShell:
        """SSH when it answers in time, else the console; raise ``ConsoleBotError`` when neither gives a shell."""
        if host.ssh is not None and not console_only:
            try:
                held = open_ssh_shell(host, self.redactor, self.folder, self.opts.command_timeout_s)
                for e in held.evidence:
                    self._ev(rep, e)
                return held
            except ShellUnavailable as exc:
                self._ev(rep, f"{exc}: using the console")
        elif host.ssh is None:
            self._ev(rep, "no [ssh] in the inventory: using the console")
        held = open_console_shell(host, self.redactor, self.folder, self.candidates_for(host), self.opts.console)
        for e in held.evidence:
            self._ev(rep, e)
        return held

    def prepare(self) -> dict[str, str]:
        """Hold a shell on every other host; return host -> how (or why not). Never raises for one host."""
        done: dict[str, str] = {}
        for host in self.hosts:
            rep = self.reports[host.name]
            try:
                held = self.open(host, rep)
            except ConsoleBotError as exc:
                self._ev(rep, f"prepare: no shell held: {exc}")
                done[host.name] = f"none: {exc}"
                continue
            self.held[host.name] = held
            done[host.name] = held.via
        return done

    def shell_for(self, host: Host, rep: OtherReport) -> HeldShell:
        held = self.held.get(host.name)
        if held is not None:
            if held.alive(self.opts.alive_timeout_s):
                self._ev(rep, f"the {held.via} shell held since preparation answers")
                rep.via = f"{held.via} (held since preparation)"
                return held
            self._ev(rep, f"the {held.via} shell held since preparation no longer answers")
            held.close()
            del self.held[host.name]
        held = self.open(host, rep)
        self.held[host.name] = held
        rep.via = held.via
        return held

    # -- the work -----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, OtherReport]:
        for host in self.hosts:
            rep = self.reports[host.name]
            t0 = time.monotonic()
            try:
                self.recover_host(host, rep)
            except ConsoleBotError as exc:
                rep.outcome, rep.detail = "failed", str(exc)
                self._ev(rep, f"FAILED: {exc}")
            finally:
                rep.elapsed_s = round(time.monotonic() - t0, 3)
        return self.reports

    def _run(self, held: HeldShell, rep: OtherReport, command: str) -> CommandResult:
        res = held.run(command, self.opts.command_timeout_s)
        first = res.output.splitlines()[0] if res.output else ""
        self._ev(rep, f"$ {command} -> exit {res.exit_code}" + (f": {first[:100]}" if first else ""))
        return res

    def restart(self, held: HeldShell, rep: OtherReport, svc: ServiceSpec) -> bool:
        """Restart ``svc``; True when the restart succeeded and its process runs."""
        res = self._run(held, rep, service_cmd(svc, "restart"))
        up = self._run(held, rep, f"pgrep -x {svc.process}")
        if up.exit_code != 0:
            up = self._run(held, rep, service_cmd(svc, "status"))
        ok = res.exit_code == 0 and up.exit_code == 0
        if ok:
            rep.restarted.append(svc.name)
        self._ev(rep, f"{svc.name}: " + ("restarted, running" if ok else
                                         f"restart exit {res.exit_code}, running: {up.exit_code == 0}"))
        return ok

    def recover_host(self, host: Host, rep: OtherReport) -> None:
        after = host.after_outage or AfterOutageSpec()
        if not after.restart and not host.checks:
            rep.outcome, rep.detail = "skipped", f"{host.source}: no [after_outage] restart and no [checks]"
            return
        held = self.shell_for(host, rep)
        failed = [name for name in after.restart if not self.restart(held, rep, self._svc(host, name))]
        if failed:
            held = self.reboot(host, rep, held, f"restart failed: {', '.join(failed)}")
            still = [name for name in failed
                     if self._run(held, rep, f"pgrep -x {self._svc(host, name).process}").exit_code != 0]
            if still:
                rep.outcome, rep.detail = "failed", f"not running after the reboot: {', '.join(still)}"
                return
        bad = []
        for name, command in host.checks.items():
            res = self._run(held, rep, command)
            if not check_passes(res) and name in after.fixes:
                self._ev(rep, f"check {name} failed: restarting {', '.join(after.fixes[name])}, then checking again")
                for svc_name in after.fixes[name]:
                    self.restart(held, rep, self._svc(host, svc_name))
                res = self._run(held, rep, command)
            first = res.output.strip().splitlines()[0][:80] if res.output.strip() else ""
            rep.checks[name] = "pass" if check_passes(res) else f"fail (exit {res.exit_code})" + (
                f": {first}" if first else "")
            if not check_passes(res):
                bad.append(name)
        if bad:
            rep.outcome, rep.detail = "failed", f"check(s) failing: {', '.join(bad)}"
        else:
            rep.outcome = "ok"
            rep.detail = (f"restarted {', '.join(rep.restarted) or 'nothing'}; checks pass: "
                          f"{', '.join(rep.checks) or 'none'}" + ("; rebooted" if rep.rebooted else ""))

    def _svc(self, host: Host, name: str) -> ServiceSpec:
        svc = host.service(name)
        assert svc is not None  # the inventory loader checked the names
        return svc

    def reboot(self, host: Host, rep: OtherReport, held: HeldShell, why: str) -> HeldShell:
        """A clean reboot on the host's console, proven by a new login prompt; return a shell after it."""
        self._ev(rep, f"{why}: rebooting the host on its console")
        if held.via != "console":
            held.close()
            self.held.pop(host.name, None)
            held = self.open(host, rep, console_only=True)
            self.held[host.name] = held
        console = held.console
        mark = console.mark()
        console.session.sendline("reboot")
        held.closed = True  # the shell goes with the reboot; the console stays attached
        try:
            ev = console.wait_for(("login.prompt",), self.opts.console.boot_timeout_s, since=mark)
        except PromptTimeout:
            raise ShellUnavailable(f"{host.name}: no login prompt within {self.opts.console.boot_timeout_s:g} s "
                                   "of 'reboot'") from None
        rep.rebooted = True
        self._ev(rep, f"rebooted: login prompt at transcript line {ev.line}")
        release, held.release = held.release, lambda: None
        try:
            fresh = console_shell(host, console, release, self.candidates_for(host), self.opts.console)
        except BaseException:
            release()
            self.held.pop(host.name, None)
            raise
        for e in fresh.evidence:
            self._ev(rep, e)
        self.held[host.name] = fresh
        return fresh

    def close(self) -> dict[str, str]:
        """Leave every held shell (log out on consoles); return host -> outcome."""
        out: dict[str, str] = {}
        for name, held in list(self.held.items()):
            try:
                held.close()
                out[name] = "closed"
            except ConsoleBotError as exc:
                out[name] = f"close failed: {exc}"
            del self.held[name]
        return out
