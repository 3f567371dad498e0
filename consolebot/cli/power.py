"""``consolebot power HOST status|on|off|reset|cycle|diag``: each act proven."""

from __future__ import annotations

import argparse
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import EXIT_VERIFY, ConfigError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("power", parents=[common], help="chassis power through the BMC, each act proven",
                       description="status reads the BMC; on/off are proven by a status read; reset and cycle by the "
                       "next boot on the console; diag (NMI) by the NMI line. All but status need --yes.")
    p.add_argument("host")
    p.add_argument("act", choices=("status", "on", "off", "reset", "cycle", "diag"))
    p.add_argument("--yes", action="store_true")
    p.add_argument("--assume-identity", action="store_true")
    p.add_argument("--evidence-timeout-s", type=float, default=120.0,
                   help="how long to wait for console evidence of reset, cycle and diag")
    p.add_argument("--dir", default=None)
    p.add_argument("--yield-timeout-s", type=float, default=15.0)
    p.add_argument("--steal", action="store_true", help="take over an IPMI SOL console held by another client")
    p.set_defaults(handler=power_cmd)


def power_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.actions.confirm import confirm
    from consolebot.actions.identity import check_identity
    from consolebot.cli.common import load_host
    from consolebot.runbooks.reboot import REBOOT_EVIDENCE
    from consolebot.wiring import AttachedConsole, power_backend

    host, folder, inv_folder = load_host(args, out)
    power = power_backend(host)
    if power is None:
        raise ConfigError(f"{host.source}: bmc: missing; power needs a [bmc] table for {host.name}")
    if args.act == "status":
        state = power.status()
        out.say(f"{host.name}: power is {state} ({power.describe()})")
        out.result(True, host=host.name, act="status", state=state, guid=power.guid())
        return 0
    how = confirm(host.name, f"power {args.act}", args.yes)
    if args.act in ("on", "off"):
        # no console needed: the status read after the act proves it
        guid_ok = check_identity_bmc(host, power, args.assume_identity)
        res = power.act(args.act)
        out.say(f"{host.name}: power {args.act}: now {res.state}")
        ok = res.proven
        out.result(ok, host=host.name, act=args.act, state=res.state, proven=res.proven, evidence=res.evidence,
                   identity=guid_ok, confirmed=how)
        return 0 if ok else EXIT_VERIFY
    with AttachedConsole(host, f"consolebot power {args.act}", out.redactor, folder, inv_folder,
                         args.yield_timeout_s, steal=getattr(args, "steal", False)) as console:
        identity = check_identity(console, host, power, args.assume_identity)
        console.act("identity", method=identity.method, value=identity.value, evidence=identity.describe())
        mark = console.mark()
        res = power.act(args.act)
        kinds = ("kernel.nmi",) if args.act == "diag" else REBOOT_EVIDENCE
        ev = None
        try:
            ev = console.wait_for(kinds, args.evidence_timeout_s, since=mark)
        except Exception:  # PromptTimeout: no evidence
            ev = None
        console.act("power", act=args.act, evidence=ev.kind if ev else None, evidence_line=ev.line if ev else None)
    ok = ev is not None
    if ok:
        assert ev is not None
        out.say(f"{host.name}: power {args.act} proven by {ev.kind} at transcript line {ev.line}")
    else:
        out.error(f"{host.name}: power {args.act} sent, but no console evidence within {args.evidence_timeout_s:g} s")
    out.result(ok, host=host.name, act=args.act, evidence=ev.kind if ev else None, line=ev.line if ev else None,
               identity=identity.describe(), confirmed=how)
    return 0 if ok else EXIT_VERIFY


def check_identity_bmc(host: Any, power: Any, assume: bool) -> str:
    from consolebot.errors import Refused
    from consolebot.power.base import normalise_guid
    from consolebot.power.ipmi_common import guid_matches

    if host.bmc.guid and normalise_guid(host.bmc.guid).strip("0"):
        got = normalise_guid(power.guid())
        if not guid_matches(got, normalise_guid(host.bmc.guid)):
            raise Refused(f"{host.name}: the BMC reports system GUID {got}, the inventory says "
                          f"{normalise_guid(host.bmc.guid)}: wrong BMC? nothing was sent")
        return f"the BMC reports system GUID {got}"
    if assume:
        return "assumed by --assume-identity"
    raise Refused(f"{host.name}: no BMC GUID in the inventory to prove the identity; pass --assume-identity")
