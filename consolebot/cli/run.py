"""``consolebot run HOST -- CMD...``: run a command where SSH is dead, and always log out.

Over SSH while it answers (a probe must return in time: a server that accepts and then
hangs is treated as dead), else on the console: log in with the keyring's candidates,
run, print the output, log out and check that the login prompt is back, whatever
happens (success, error, timeout, SIGINT, SIGTERM). The exit code is the command's own;
255 is consolebot's own failure.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output
from consolebot.errors import EXIT_RUN_OWN_FAILURE, ConsoleBotError, PromptTimeout, UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run a command on a host: over SSH if it answers, else the console",
        description="Run CMD on HOST and exit with its code (255 for consolebot's own failures). "
        "Over SSH when it answers in time, else on the console with the keyring's candidate passwords; "
        "the console is always logged out afterwards.",
    )
    p.add_argument("host")
    p.add_argument("remote_command", nargs="*", metavar="CMD", help="the command, after --")
    p.add_argument("--via", choices=("auto", "ssh", "console"), default="auto")
    p.add_argument(
        "--ssh-probe-timeout-s",
        type=float,
        default=10.0,
        help="SSH must run 'true' within this long, else the console is used",
    )
    p.add_argument("--timeout-s", type=float, default=60.0, help="how long the command may take")
    p.add_argument(
        "--quiet-kernel",
        action="store_true",
        help="dmesg -n 1 while logged in (restored on logout); off by default: it hides the next panic",
    )
    add_writer_args(p)
    p.set_defaults(handler=run_cmd)


def run_cmd(args: argparse.Namespace, out: Output) -> int:
    try:
        return _run(args, out)
    except ConsoleBotError as exc:
        out.error(str(exc))
        out.result(False, error=str(exc), error_type=type(exc).__name__, exit_code=EXIT_RUN_OWN_FAILURE)
        return EXIT_RUN_OWN_FAILURE


def _run(args: argparse.Namespace, out: Output) -> int:
    from consolebot.actions.ssh_run import ssh_run, ssh_usable

    command = list(args.remote_command)
    if not command:
        raise UsageError("no command: write consolebot run HOST -- CMD...")
    cmd = " ".join(command)
    host, folder, inv_folder = load_host(args, out)
    why = ""
    if args.via in ("auto", "ssh") and host.ssh is not None:
        probe = ssh_usable(host.ssh, args.ssh_probe_timeout_s)
        if probe.ok:
            res = ssh_run(host.ssh, cmd, args.timeout_s)
            if res.ok:
                if not out.json_mode:
                    sys.stdout.write(res.output)
                out.result(
                    True,
                    host=host.name,
                    path="ssh",
                    why="ssh answered",
                    exit_code=res.exit_code,
                    output=res.output,
                )
                return res.exit_code or 0
            why = f"ssh {res.reason} while running: {res.stderr}"
        else:
            why = f"ssh {probe.reason}: {probe.stderr}"
        if args.via == "ssh":
            raise (
                UsageError(f"{host.name}: {why}")
                if probe.reason == "error"
                else ConsoleBotError(f"{host.name}: {why}")
            )
        out.warn(f"{host.name}: {why}; using the console")
    elif host.ssh is None:
        why = "no [ssh] in the inventory"
    else:
        why = "--via console"
    return _run_on_console(args, out, host, folder, inv_folder, cmd, why)


def _run_on_console(
    args: argparse.Namespace, out: Output, host: Any, folder: Any, inv_folder: Any, cmd: str, why: str
) -> int:
    from consolebot.actions.login import login
    from consolebot.actions.shell import Shell
    from consolebot.secrets.store import open_store
    from consolebot.wiring import AttachedConsole, candidate_source

    candidates = candidate_source(open_store(), host, out.redactor)

    logged_out: bool | None = None
    result = None
    login_res = None
    with AttachedConsole(
        host,
        "consolebot run",
        out.redactor,
        folder,
        inv_folder,
        args.yield_timeout_s,
        steal=getattr(args, "steal", False),
    ) as console:
        shell = None
        try:
            login_res = login(console, host.login.users, candidates, host.login.max_attempts)
            shell = Shell(console, args.timeout_s)
            shell.prepare(quiet_kernel=args.quiet_kernel)
            # in a child shell, so that the command's own 'exit N' ends it rather than the login shell
            result = shell.run(f"sh -c {shlex.quote(cmd)}", args.timeout_s)
        finally:
            if shell is not None or (login_res is not None and login_res.ok):
                shell = shell or Shell(console, args.timeout_s)
                try:
                    console.session.send(b"\x03")  # stop a command that may still run
                    console.quiet(0.3, 2.0)
                    logged_out = shell.logout()
                except (ConsoleBotError, PromptTimeout):
                    logged_out = False
                if not logged_out:
                    out.error(f"{host.name}: COULD NOT LOG OUT: a root shell may be left open on the console")
        transcript = console.session.transcript.paths() if console.session.transcript else {}
    assert result is not None and login_res is not None
    if not out.json_mode:
        sys.stdout.write(result.output + ("\n" if result.output else ""))
    out.result(
        logged_out is True,
        host=host.name,
        path="console",
        why=why,
        exit_code=result.exit_code,
        output=result.output,
        kernel_lines=list(result.kernel_lines),
        candidate=login_res.candidate,
        login_attempts=login_res.attempts,
        logged_out=logged_out,
        transcript=transcript,
    )
    if not logged_out:
        return EXIT_RUN_OWN_FAILURE
    return result.exit_code
