"""``consolebot sysrq HOST KEY... --yes``: BREAK + key, each confirmed by the kernel."""

from __future__ import annotations

import argparse
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output
from consolebot.errors import EXIT_TARGET, UsageError

VALID = set("0123456789bcdefghijklmnopqrstuvwxyz")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sysrq",
        parents=[common],
        help="send Magic SysRq keys, each confirmed by the kernel",
        description="Send BREAK + KEY for each key (e.g. 's u b' or 'sub'); each is confirmed by the "
        "kernel's acknowledgement; an unacknowledged key stops the run (exit 6) and the line is "
        "cleared with Ctrl-U. Needs --yes or a typed confirmation, and the host's identity.",
    )
    p.add_argument("host")
    p.add_argument("keys", nargs="+", metavar="KEY")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--assume-identity",
        action="store_true",
        help="act even when neither a hostname on the console nor a BMC GUID proves the identity",
    )
    p.add_argument(
        "--ack-timeout-s", type=float, default=2.5, help="how long to wait for each acknowledgement"
    )
    add_writer_args(p)
    p.set_defaults(handler=sysrq_cmd)


def sysrq_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.actions.confirm import confirm
    from consolebot.actions.identity import check_identity
    from consolebot.actions.sysrq import send_sysrq
    from consolebot.runbooks.reboot import nudge
    from consolebot.wiring import AttachedConsole, power_backend

    keys = "".join(args.keys).replace(" ", "").lower()
    bad = sorted(set(keys) - VALID)
    if bad:
        raise UsageError(f"not a SysRq key: {' '.join(bad)} (use letters and digits, e.g. s u b)")
    host, folder, inv_folder = load_host(args, out)
    how = confirm(host.name, f"send SysRq {' '.join(keys)}", args.yes)
    power = power_backend(host) if host.bmc is not None and host.bmc.guid else None
    with AttachedConsole(
        host,
        "consolebot sysrq",
        out.redactor,
        folder,
        inv_folder,
        args.yield_timeout_s,
        steal=getattr(args, "steal", False),
    ) as console:
        console.quiet(0.3, 2.0)
        if console.find(["login.prompt", "shell.prompt"]) is None:
            nudge(console, 3, 1.0)
        identity = check_identity(console, host, power, args.assume_identity)
        console.act("identity", method=identity.method, value=identity.value, evidence=identity.describe())
        results = send_sysrq(console, keys, args.ack_timeout_s)
        transcript = console.session.transcript.paths() if console.session.transcript else {}
    ok = len(results) == len(keys) and all(r.ok for r in results)
    for r in results:
        out.say(f"  {r.key}: {r.outcome}" + (f" ({r.action}, transcript line {r.line})" if r.action else ""))
    if not ok:
        last = results[-1]
        reason = {
            "not-delivered": "not delivered (no acknowledgement: BREAK swallowed, or kernel.sysrq=0)",
            "disabled": "disabled by kernel.sysrq",
            "help": "not a bound SysRq key",
        }.get(last.outcome, last.outcome)
        out.error(f"{host.name}: SysRq {last.key!r} {reason}; nothing after it was sent")
    out.result(
        ok,
        host=host.name,
        confirmed=how,
        identity=identity.describe(),
        keys=[r.__dict__ for r in results],
        transcript=transcript,
    )
    return 0 if ok else EXIT_TARGET
