"""``consolebot script HOST FILE [--dry-run]``: run a chat-style script on a host's console."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from consolebot.cli.common import add_writer_args, load_host
from consolebot.cli.output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("script", parents=[common], help="run an expect script (expect_scripts/) on a host's console",
                       description="Run a chat-style script (see expect_scripts/README.md) on HOST's console, with the "
                       "host's script_vars (after the host's own connect script, unless FILE is that script); "
                       "--dry-run prints its steps with secrets as *** and sends nothing. Every variable and "
                       "keyring entry is checked before anything is sent. Exit codes: 2 a script or variable "
                       "error, 3 a keyring entry missing, 4 the console unreachable or closed, 5 the console "
                       "busy, 6 an expect timed out or an abort text showed (the line names the step).")
    p.add_argument("host")
    p.add_argument("file", help="a script file, or the name of one in ./expect_scripts or the shipped copy")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="a script variable (never a secret: a send-secret takes a keyring: reference)")
    add_writer_args(p)
    p.set_defaults(handler=script_cmd)


def script_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.errors import ConsoleBotError, UsageError
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
    first: ChatScript | None = None
    if host.console.connect_script:
        first_path = find_script(host.console.connect_script, inv_folder)
        if first_path.resolve() == path.resolve():  # FILE is the host's connect script: run it once, on its own
            host = dataclasses.replace(host, console=dataclasses.replace(host.console, connect_script=None))
        else:
            first = ChatScript.load(first_path)
    plan = script.plan(variables)  # a missing variable fails here, before anything is sent
    first_plan = first.plan(host.console.script_vars) if first is not None else []
    if args.dry_run:
        out.say(f"dry run: nothing is sent; on {host.name}'s console ({host.console.address or host.console.transport})")
        if first is not None:
            out.say(f"first the host's connect script {first.name}:")
            for line in first_plan:
                out.say("  " + line)
        for line in plan:
            out.say(line)
        out.result(True, host=host.name, script=str(path), dry_run=True, connect_script=first_plan, steps=plan)
        return 0
    from consolebot.secrets.store import open_store

    store = open_store()
    secrets = {ref: store.resolve_ref(ref) for ref in script.secret_refs(variables)}  # a missing entry fails here
    for secret in secrets.values():
        out.redactor.add(secret.reveal())

    def resolve(ref: str) -> Any:
        return secrets[ref] if ref in secrets else store.resolve_ref(ref)

    transcript: dict[str, str] = {}
    try:
        with AttachedConsole(host, f"consolebot script {path.name}", out.redactor, folder, inv_folder,
                             args.yield_timeout_s, steal=getattr(args, "steal", False)) as console:
            if console.session.transcript is not None:
                transcript = {k: str(v) for k, v in console.session.transcript.paths().items()}
            done = script.run(console.session, resolve, variables)
    except ConsoleBotError as exc:
        log = Path(transcript.get("log") or folder / f"{host.name}.log")
        raise type(exc)(f"{exc}; transcript: {log}" if log.is_file() else str(exc)) from None
    for d in done:
        out.say(d)
    out.result(True, host=host.name, script=str(path), steps=done, transcript=transcript)
    return 0
