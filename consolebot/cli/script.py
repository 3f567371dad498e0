"""``consolebot script HOST FILE [--dry-run]``: run a chat-style script on a host's console."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("script", parents=[common], help="run an expect script (expect_scripts/) on a host's console",
                       description="Run a chat-style script (see expect_scripts/README.md) on HOST's console, with the "
                       "host's script_vars; --dry-run prints its steps with secrets as *** and sends nothing.")
    p.add_argument("host")
    p.add_argument("file", help="a script file, or the name of one in ./expect_scripts or the shipped copy")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a script variable")
    add_writer_args(p)
    p.set_defaults(handler=script_cmd)


def script_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.errors import UsageError
    from consolebot.session.chat import ChatScript
    from consolebot.wiring import AttachedConsole, find_script

    host, folder, inv_folder = load_host(args, out)
    path = Path(args.file)
    if not path.is_file():
        path = find_script(args.file, inv_folder)
    script = ChatScript.load(path)
    variables = dict(host.console.script_vars)
    for v in args.var:
        if "=" not in v:
            raise UsageError(f"--var {v!r}: write NAME=VALUE")
        k, _, val = v.partition("=")
        variables[k] = val
    if args.dry_run:
        plan = script.plan(variables)
        for line in plan:
            out.say(line)
        out.result(True, host=host.name, script=str(path), dry_run=True, steps=plan)
        return 0
    from consolebot.secrets.store import open_store

    store = open_store()
    with AttachedConsole(host, f"consolebot script {path.name}", out.redactor, folder, inv_folder,
                         args.yield_timeout_s, steal=getattr(args, "steal", False)) as console:
        done = script.run(console.session, store.resolve_ref, variables)
        transcript = console.session.transcript.paths() if console.session.transcript else {}
    for d in done:
        out.say(d)
    out.result(True, host=host.name, script=str(path), steps=done, transcript=transcript)
    return 0
