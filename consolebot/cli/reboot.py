"""``consolebot reboot HOST --yes [--allow-power] [--max-rung R]``: the reboot ladder."""

from __future__ import annotations

import argparse
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output
from consolebot.errors import EXIT_TARGET


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "reboot",
        parents=[common],
        help="reboot a hung host: nudge, SysRq, NMI, power reset, cycle",
        description="Climb the reboot ladder, each rung only when the previous one produced no reboot "
        "evidence: (1) nudge, (2) SysRq s u b, (3) NMI if --nmi, (4) power reset, (5) power cycle "
        "(4-5 only with --allow-power). A live prompt ends it with 'alive'.",
    )
    p.add_argument("host")
    p.add_argument("--yes", action="store_true")
    p.add_argument("--allow-power", action="store_true", help="allow IPMI power reset/cycle rungs")
    p.add_argument("--max-rung", type=int, default=5, choices=range(1, 6))
    p.add_argument("--nmi", action="store_true", help="try an NMI (diag) for a crash dump before power")
    p.add_argument("--assume-identity", action="store_true")
    p.add_argument(
        "--reboot-timeout-s", type=float, default=120.0, help="how long each rung waits for reboot evidence"
    )
    add_writer_args(p)
    p.set_defaults(handler=reboot_cmd)


def reboot_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.actions.confirm import confirm
    from consolebot.runbooks.reboot import LadderOptions, run_ladder
    from consolebot.wiring import AttachedConsole, power_backend

    host, folder, inv_folder = load_host(args, out)
    how = confirm(host.name, "reboot (SysRq" + (", power" if args.allow_power else "") + ")", args.yes)
    power = power_backend(host)
    opts = LadderOptions(
        allow_power=args.allow_power,
        max_rung=args.max_rung,
        nmi=args.nmi,
        assume_identity=args.assume_identity,
        reboot_timeout_s=args.reboot_timeout_s,
    )
    with AttachedConsole(
        host,
        "consolebot reboot",
        out.redactor,
        folder,
        inv_folder,
        args.yield_timeout_s,
        steal=getattr(args, "steal", False),
    ) as console:
        result = run_ladder(console, host, power, opts)
        transcript = console.session.transcript.paths() if console.session.transcript else {}
    for r in result.rungs:
        ev = f" evidence {r.evidence} line {r.line}" if r.evidence else ""
        out.say(f"  rung {r.rung} {r.name}: {r.outcome}{ev} ({r.elapsed_s:.1f} s) {r.detail}".rstrip())
    ok = result.outcome in ("alive", "rebooted")
    if result.outcome == "alive":
        out.say(f"{host.name} is alive: nothing rebooted")
    elif result.outcome == "rebooted":
        out.say(f"{host.name} rebooted, proven")
    else:
        out.error(
            f"{host.name}: not rebooted; nothing claimed"
            + ("" if args.allow_power else " (power rungs need --allow-power)")
        )
    out.result(ok, host=host.name, confirmed=how, transcript=transcript, **result.to_json())
    return 0 if ok else EXIT_TARGET
