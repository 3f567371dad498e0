"""``consolebot recover HOST``: the Deleuze runbook, unattended, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from consolebot.runbooks.steps import STEPS

    p = sub.add_parser("recover", parents=[common], help="recover a hung server: reboot, salvage, services, checks",
                       description="Perform the recovery runbook on HOST's console: preflight, prepare (hold root shells on "
                       "the other hosts), assess (nudge; the reboot "
                       "ladder when hung), boot, login, fileserver (bos status; stop the services that started "
                       "without AFS), salvage (wait), services (start again), postgres (check, restart until it "
                       "passes; domtool), others (the hosts HOST's inventory names in 'others': restarts and checks "
                       "of their [after_outage], over a shell held since 'prepare', else SSH, else their console), "
                       "report. Exit 0 only when every step verified.")
    p.add_argument("host")
    p.add_argument("--dry-run", action="store_true", help="attach read-only, assess, print the plan; send nothing")
    p.add_argument("--from", dest="from_step", choices=STEPS[:-1], default="preflight", help="resume at this step")
    p.add_argument("--only", choices=("others",), default=None,
                   help="only this step: 'others' recovers the other hosts alone (HOST's console is not touched)")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not hold root shells on the other hosts before touching HOST")
    p.add_argument("--clean", action="store_true", help="when the host is alive: stop services and reboot cleanly")
    p.add_argument("--yes", action="store_true", help="allow SysRq (and power with --allow-power) without asking")
    p.add_argument("--allow-power", action="store_true")
    p.add_argument("--max-rung", type=int, default=5, choices=range(1, 6))
    p.add_argument("--assume-identity", action="store_true")
    p.add_argument("--boot-timeout-s", type=float, default=600.0)
    p.add_argument("--salvage-deadline-s", type=float, default=3600.0)
    p.add_argument("--salvage-poll-s", type=float, default=30.0)
    p.add_argument("--postgres-max-restarts", type=int, default=4)
    p.add_argument("--report", metavar="FILE", default=None, help="also write the report as Markdown")
    add_writer_args(p)
    p.set_defaults(handler=recover_cmd)


def recover_cmd(args: argparse.Namespace, out: Output) -> int:
    host, folder, inv_folder = load_host(args, out)
    return run_recover(args, out, host, folder, inv_folder)


def run_recover(args: argparse.Namespace, out: Output, host: Any, folder: Path, inv_folder: Path | None,
                store: Any = None) -> int:
    from consolebot.actions.confirm import confirm
    from consolebot.runbooks.recover import RecoverOptions, Recovery, exit_code, markdown
    from consolebot.wiring import AttachedConsole, candidate_source, known_secrets, power_backend

    if store is None:
        from consolebot.secrets.store import open_store

        store = open_store()
    only = getattr(args, "only", None)
    if not args.dry_run and only is None and args.from_step in ("preflight", "prepare", "assess"):
        confirm(host.name, "recover (SysRq" + (", power" if args.allow_power else "") + " if it is hung)", args.yes)
    others_hosts = _others(host, inv_folder)
    if only == "others" and not others_hosts:
        from consolebot.errors import UsageError

        raise UsageError(f"--only others: {host.source} names no 'others' hosts (others = [\"mire\", ...])")
    if others_hosts and not args.dry_run:
        confirm(", ".join(o.name for o in others_hosts), "restart services after the outage (a clean reboot of one "
                "whose restart fails; SysRq when its console is hung)", args.yes)

    def candidates_for(h: Any) -> Any:
        return candidate_source(store, h, out.redactor)

    candidates = candidates_for(host)

    opts = RecoverOptions(from_step=args.from_step, dry_run=args.dry_run, clean=args.clean,
                          allow_power=args.allow_power, max_rung=args.max_rung, assume_identity=args.assume_identity,
                          boot_timeout_s=args.boot_timeout_s, salvage_deadline_s=args.salvage_deadline_s,
                          salvage_poll_s=args.salvage_poll_s, postgres_max_restarts=args.postgres_max_restarts,
                          prepare=not getattr(args, "no_prepare", False), only=only)
    others = None
    if others_hosts:
        from consolebot.runbooks.held import ConsoleShellOptions
        from consolebot.runbooks.others import Others, OthersOptions

        for o in others_hosts:
            known_secrets(o, out.redactor, out.warn)
        others = Others(others_hosts, out.redactor, folder, candidates_for, OthersOptions(
            console=ConsoleShellOptions(inventory_folder=inv_folder, yield_timeout_s=args.yield_timeout_s,
                                        allow_power=args.allow_power, assume_identity=args.assume_identity,
                                        boot_timeout_s=args.boot_timeout_s, steal=getattr(args, "steal", False))),
            out.say)
    power = power_backend(host)
    if only == "others":
        rec = Recovery(None, host, power, candidates, opts, out.say, others)
        report = rec.execute()
        report.lock_released = True
    else:
        attached = AttachedConsole(host, "consolebot recover" + (" --dry-run" if args.dry_run else ""), out.redactor,
                                   folder, inv_folder, args.yield_timeout_s, steal=getattr(args, "steal", False))
        with attached as console:
            if args.dry_run:
                console.session.read_only = True
            rec = Recovery(console, host, power, candidates, opts, out.say, others)
            report = rec.execute()
            if console.session.transcript is not None:
                report.transcript = console.session.transcript.paths()
        report.lock_released = not attached.writer.lock.held
    code = exit_code(report, rec.error)
    out.say(f"{host.name}: {report.outcome} in {report.elapsed_s:.1f} s; logged out: {report.logged_out}; "
            f"lock released: {report.lock_released}")
    for r in report.steps:
        out.say(f"  {r.name:10} {r.outcome:11} {r.elapsed_s:6.1f} s  {r.detail}".rstrip())
    for name, o in report.others.items():
        checks = ", ".join(f"{k} {v}" for k, v in o["checks"].items())
        out.say(f"  {name:10} {o['outcome']:11} {o['elapsed_s']:6.1f} s  via {o['via'] or '-'}; {o['detail']}"
                + (f"; checks: {checks}" if checks and o["outcome"] != "ok" else ""))
    if report.plan:
        out.say("plan:")
        for p in report.plan:
            out.say("  " + p)
    if args.report:
        Path(args.report).write_text(out.redactor.redact_text(markdown(report)))
    if code != 0:
        failed = next((r for r in report.steps if r.outcome in ("failed", "interrupted")), None)
        out.error(f"{host.name}: recovery {report.outcome}" + (f" at {failed.name}: {failed.detail}" if failed else ""))
    out.result(code == 0, exit_code=code, **report.to_json())
    return code


def _others(host: Any, inv_folder: Path | None) -> list[Any]:
    """The hosts HOST's inventory names in ``others``; an unknown name is an inventory error."""
    if not host.others:
        return []
    from consolebot.errors import ConfigError
    from consolebot.inventory.load import load_inventory

    inv = load_inventory(str(inv_folder) if inv_folder else None)
    missing = [n for n in host.others if n not in inv.hosts]
    if missing:
        raise ConfigError(f"{host.source}: others: no host {', '.join(missing)} in inventory {inv.folder}; "
                          f"known: {', '.join(sorted(inv.hosts))}")
    return [inv.hosts[n] for n in host.others]
