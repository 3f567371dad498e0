"""``consolebot console HOST``: attach interactively, holding the console lock."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "console",
        parents=[common],
        help="attach to a host's console interactively (~. leaves, ~B sends BREAK)",
        description="Attach to HOST's console in a raw terminal. At the start of a line: ~. leaves, ~B sends "
        "a BREAK, ~~ sends ~, ~? helps. Holds the console lock while attached (a running capture yields "
        "and resumes afterwards); the transcript is kept.",
    )
    p.add_argument("host")
    p.add_argument("--dir", default=None, help="transcript folder")
    p.add_argument("--yield-timeout-s", type=float, default=15.0,
                   help="how long to wait for a capture of this console to let go")
    p.add_argument("--steal", action="store_true",
                   help="take over an IPMI SOL console held by another client (recorded in the transcript)")
    p.set_defaults(handler=console_cmd)


def console_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.inventory.load import load_inventory
    from consolebot.locks import ConsoleWriter
    from consolebot.paths import ensure_local_dir, transcript_dir
    from consolebot.runbooks.interactive import interact
    from consolebot.session.transcript import Transcript
    from consolebot.wiring import console_factory, known_secrets, take_notes

    inv = load_inventory(args.inventory)
    host = inv.get(args.host)
    make = console_factory(host, steal=args.steal)
    folder = ensure_local_dir(Path(args.dir) if args.dir else transcript_dir())
    known_secrets(host, out.redactor, out.warn)
    with ConsoleWriter(host.name, "consolebot console", args.yield_timeout_s):
        transport = make()
        transport.open()
        transcript = Transcript(folder, host.name, out.redactor)
        transcript.note(f"interactive console attached to {transport.describe()}", what="console.attach")
        for note in take_notes(transport):
            transcript.note(note, what="transport.note")
        try:
            reason = interact(transport, transcript, sys.stdin.fileno(), sys.stdout.fileno())
        finally:
            transcript.note("interactive console detached", what="console.detach")
            transport.close()
            transcript.close()
    out.say(f"\r\nconsolebot: {reason}; console of {host.name} released")
    out.result(True, host=host.name, reason=reason, transcript=transcript.paths())
    return 0
