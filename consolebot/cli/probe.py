"""``consolebot probe ADDRESS``: attach read-only to a console address and record what it shows.

The quickest check that a console path works at all (before any inventory
exists): it opens the transport, sends nothing, records a transcript for
``--for`` seconds or until ``--until`` text shows, and says what it saw.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import PromptTimeout, UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "probe",
        parents=[common],
        help="attach read-only to a console address and record it",
        description="Attach read-only to a console ADDRESS (telnet://, socket://, rfc2217://, serial://, "
        "/dev/..., loop://, exec:, ssh://, conserver://) and record what it shows. Sends nothing.",
    )
    p.add_argument("address")
    p.add_argument("--for", dest="for_s", type=float, default=10.0, metavar="SECONDS", help="record this long")
    p.add_argument("--until", default=None, metavar="TEXT", help="stop as soon as TEXT shows")
    p.add_argument("--dir", default=None, help="transcript folder (default: the XDG state folder)")
    p.add_argument("--name", default="probe", help="transcript file name stem")
    p.set_defaults(handler=probe_cmd)


def probe_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.paths import transcript_dir
    from consolebot.session.session import Session
    from consolebot.session.transcript import Transcript
    from consolebot.transport.registry import transport_for

    if args.for_s <= 0:
        raise UsageError("--for wants a positive number of seconds")
    folder = Path(args.dir) if args.dir else transcript_dir()
    transport = transport_for(args.address)
    transcript = Transcript(folder, args.name, out.redactor)
    started = time.monotonic()
    try:
        transport.open()
    except Exception:
        transcript.close()
        raise
    session = Session(transport, transcript, out.redactor, read_only=True)
    session.note(f"probe of {transport.describe()} started (read-only)")
    found = False
    try:
        if args.until:
            try:
                session.expect([args.until], args.for_s)
                found = True
            except PromptTimeout:
                found = False
        else:
            session.read_for(args.for_s)
    finally:
        session.note("probe ended")
        session.close()
    elapsed = time.monotonic() - started
    out.say(f"{transport.describe()}: {session.rx_total} bytes, {transcript.lines} lines in {elapsed:.1f} s")
    if args.until:
        out.say(f"{args.until!r} {'seen' if found else 'not seen'}")
    for kind, path in transcript.paths().items():
        out.say(f"  {kind:5} {path}")
    ok = found if args.until else True
    out.result(ok, address=transport.describe(), bytes=session.rx_total, lines=transcript.lines,
               seen=found if args.until else None, transcript=transcript.paths())
    return 0 if ok else 6
