"""``consolebot hosts [--check]``: list and validate the inventory."""

from __future__ import annotations

import argparse
from typing import Any

from consolebot.cli.output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("hosts", parents=[common], help="list the inventory's hosts; --check validates deeper")
    p.add_argument("--check", action="store_true",
                   help="also check console addresses, connect scripts and BMC settings (no connection)")
    p.set_defaults(handler=hosts_cmd)


def hosts_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.inventory.load import load_inventory
    from consolebot.wiring import console_factory, find_script

    inv = load_inventory(args.inventory)
    out.say(f"inventory {inv.folder} ({inv.origin})")
    rows = []
    for name, host in sorted(inv.hosts.items()):
        where = host.console.address or f"{host.console.transport} via BMC {host.bmc.address if host.bmc else '?'}"
        problems: list[str] = []
        if args.check:
            if host.console.transport not in ("ipmitool-sol", "pyghmi-sol"):
                try:
                    console_factory(host)
                except Exception as exc:  # ConsoleBotError: reported per host below
                    problems.append(str(exc))
            if host.console.connect_script:
                try:
                    find_script(host.console.connect_script, inv.folder)
                except Exception as exc:
                    problems.append(str(exc))
            if not host.console_hostnames and not (host.bmc and host.bmc.guid):
                problems.append("no console_hostnames and no bmc.guid: identity cannot be checked")
        rows.append({"host": name, "console": where, "transport": host.console.transport,
                     "services": len(host.services), "simulated": host.simulated, "problems": problems})
        flag = "" if not problems else "  PROBLEM: " + "; ".join(problems)
        out.say(f"  {name:14} {host.console.transport:12} {where}{flag}")
    ok = not any(r["problems"] for r in rows)
    out.result(ok, inventory=str(inv.folder), origin=inv.origin, hosts=rows)
    return 0 if ok else 2
