"""A root shell on another host, held open: over SSH while it answers, else over the host's console.

Seed section 1: "Have root shell open on the other machines ... in the January 2010 outage,
after a period of Deleuze unavailability, Mire stopped accepting new logins". A shell opened
before Deleuze is touched keeps working when new logins stop, so ``recover`` opens one per
other host first (``prepare``) and its ``others`` step works through them.

Over SSH: one long-lived ``ssh -tt`` (or the inventory's ``[ssh] exec``) under a pty, with the
same marker-framed :class:`Shell` as on a console. It must connect, log in and answer within
``[ssh] connect_timeout_s``, else it counts as hung (an sshd stuck in NSS lookups on a dead AFS
server accepts the connection and then never answers). Its transcript is ``HOST.ssh.*``.

Over the console: the console's writer lock, a nudge, a login with the host's keyring
candidates (a local account needs no AFS lookup). A hung console climbs the reboot ladder
(SysRq; power only when allowed) before the login.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consolebot.actions.console import Console
from consolebot.actions.shell import CommandResult, Shell
from consolebot.errors import ConsoleBotError, PromptTimeout, TargetError
from consolebot.inventory.model import Host
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret


class ShellUnavailable(TargetError):
    """No shell this way (the reason is the message); the caller tries the next way."""


@dataclass
class HeldShell:
    host: Host
    via: str  # "ssh" or "console"
    console: Console
    shell: Shell
    leave: Callable[[], None]  # log out of the shell
    release: Callable[[], None]  # let go of the transport (and the console's lock)
    opened_at: float = field(default_factory=time.monotonic)
    evidence: list[str] = field(default_factory=list)
    closed: bool = False

    def run(self, command: str, timeout_s: float | None = None) -> CommandResult:
        return self.shell.run(command, timeout_s)

    def alive(self, timeout_s: float = 10.0) -> bool:
        """Whether the shell still answers (a held SSH session dies with a reboot or a dropped link)."""
        if self.closed:
            return False
        try:
            return self.shell.run("true", timeout_s).exit_code == 0
        except ConsoleBotError:
            return False

    def close(self) -> None:
        """Log out (unless the shell is already gone), then release the transport and lock."""
        try:
            if not self.closed:
                self.leave()
        except ConsoleBotError:
            pass
        finally:
            self.closed = True
            self.release()
            self.release = lambda: None


def _last_clause(message: str) -> str:
    """What the program itself said (after the transport's own prefixes)."""
    return message.rsplit("): ", 1)[-1] if "): " in message else message


def _console_for(host: Host, transport: Any, name: str, redactor: Redactor, folder: Path) -> Console:
    from consolebot.recognise.classifier import Classifier
    from consolebot.session.session import Session
    from consolebot.session.transcript import Transcript
    from consolebot.wiring import host_rules

    rules, severities = host_rules(host)
    session = Session(transport, Transcript(folder, name, redactor), redactor)
    return Console(session, Classifier(rules, severities), host.name)


def open_ssh_shell(host: Host, redactor: Redactor, folder: Path, command_timeout_s: float = 120.0) -> HeldShell:
    """A held shell over SSH; raise ``ShellUnavailable`` naming why (refused, hung, wrong host)."""
    from consolebot.actions.ssh_run import remote_argv
    from consolebot.transport.process import ExecTransport

    spec = host.ssh
    if spec is None:
        raise ShellUnavailable(f"{host.name}: no [ssh] in {host.source}")
    deadline_s = spec.connect_timeout_s
    t0 = time.monotonic()
    transport = ExecTransport(remote_argv(spec, None, tty=True))
    try:
        transport.open()
    except ConsoleBotError as exc:
        raise ShellUnavailable(f"{host.name}: {spec.describe()}: refused: {_last_clause(str(exc))}") from None
    console = _console_for(host, transport, f"{host.name}.ssh", redactor, folder)
    console.session.note(f"held shell: {spec.describe()}")
    try:
        shell = Shell(console, command_timeout_s)
        shell.prepare(timeout_s=max(0.5, deadline_s - (time.monotonic() - t0)))
        who = shell.run("hostname", max(0.5, deadline_s - (time.monotonic() - t0)))
    except PromptTimeout:
        console.session.close()
        raise ShellUnavailable(f"{host.name}: {spec.describe()}: accepted but no shell within {deadline_s:g} s "
                               f"(hung: NSS lookups on a dead AFS server?); gave up after "
                               f"{time.monotonic() - t0:.1f} s") from None
    except ConsoleBotError as exc:
        console.session.close()
        hung = "within" in str(exc)
        raise ShellUnavailable(f"{host.name}: {spec.describe()}: " + (
            f"no answer within {deadline_s:g} s (hung); gave up after {time.monotonic() - t0:.1f} s" if hung
            else f"refused: {_last_clause(str(exc))}")) from None
    name = who.output.strip().splitlines()[-1] if who.output.strip() else ""
    wanted = {h.split(".")[0] for h in host.console_hostnames}
    if wanted and name.split(".")[0] not in wanted:
        console.session.close()
        raise ShellUnavailable(f"{host.name}: {spec.describe()} reached {name!r}, not {' or '.join(sorted(wanted))}: "
                               "fix [ssh] or console_hostnames")

    def leave() -> None:
        console.session.sendline("exit")
        console.quiet(0.2, 1.0)

    held = HeldShell(host, "ssh", console, shell, leave, console.session.close)
    held.evidence.append(f"ssh shell held ({spec.describe()}): hostname {name}, "
                         f"{time.monotonic() - t0:.1f} s to the prompt")
    return held


@dataclass
class ConsoleShellOptions:
    command: str = "consolebot recover (others)"
    inventory_folder: Path | None = None
    yield_timeout_s: float = 15.0
    allow_power: bool = False
    assume_identity: bool = False
    boot_timeout_s: float = 600.0
    command_timeout_s: float = 120.0
    steal: bool = False


def open_console_shell(host: Host, redactor: Redactor, folder: Path, candidates: Callable[[str], list[Secret]],
                       opts: ConsoleShellOptions) -> HeldShell:
    """A held shell on the host's console (its writer lock held until closed); the ladder when it is hung."""
    from consolebot.wiring import AttachedConsole

    attached = AttachedConsole(host, opts.command, redactor, folder, opts.inventory_folder, opts.yield_timeout_s,
                               steal=opts.steal)
    console = attached.__enter__()

    def release() -> None:
        attached.__exit__(None, None, None)

    try:
        return console_shell(host, console, release, candidates, opts)
    except BaseException:
        release()
        raise


def console_shell(host: Host, console: Console, release: Callable[[], None],
                  candidates: Callable[[str], list[Secret]], opts: ConsoleShellOptions) -> HeldShell:
    """On an attached console: the ladder when it is hung, then a login and a prepared shell."""
    from consolebot.actions.login import login
    from consolebot.runbooks.reboot import LadderOptions, run_ladder
    from consolebot.wiring import power_backend

    t0 = time.monotonic()
    evidence: list[str] = []
    start = console.mark()
    ladder = run_ladder(console, host, power_backend(host),
                        LadderOptions(allow_power=opts.allow_power, assume_identity=opts.assume_identity,
                                      reboot_timeout_s=opts.boot_timeout_s))
    for r in ladder.rungs:
        evidence.append(f"console rung {r.rung} {r.name}: {r.outcome}" + (f" ({r.evidence})" if r.evidence else ""))
    if ladder.outcome == "rebooted":
        console.wait_for(("login.prompt",), opts.boot_timeout_s, since=start)
        evidence.append("rebooted through the ladder: login prompt back")
    elif ladder.outcome != "alive":
        raise ShellUnavailable(f"{host.name}: console hung and not rebooted" +
                               ("" if opts.allow_power else " (power needs --allow-power)"))
    res = login(console, host.login.users, candidates, host.login.max_attempts)
    evidence.append(f"console login as {res.user or 'an open shell'}" +
                    (f" with candidate {res.candidate}" if res.candidate else ""))
    shell = Shell(console, opts.command_timeout_s)
    shell.prepare()

    def leave() -> None:
        shell.logout()

    held = HeldShell(host, "console", console, shell, leave, release)
    held.evidence += evidence + [f"console shell held ({console.session.transport.describe()}), "
                                 f"{time.monotonic() - t0:.1f} s"]
    return held
