"""What the writing commands share: the host, its transcript folder, its console."""

from __future__ import annotations

import argparse
from pathlib import Path

from consolebot.cli.output import Output
from consolebot.inventory.model import Host


def add_writer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=None, help="transcript folder (default: $XDG_STATE_HOME/consolebot/transcripts)")
    p.add_argument("--yield-timeout-s", type=float, default=15.0,
                   help="how long to wait for a capture of this console to let go of it")
    p.add_argument("--steal", action="store_true",
                   help="take over an IPMI SOL console held by another client (recorded in the transcript)")


def load_host(args: argparse.Namespace, out: Output) -> tuple[Host, Path, Path]:
    """The inventory host named by ``args.host``, its transcript folder and the inventory folder."""
    from consolebot.inventory.load import load_inventory
    from consolebot.paths import ensure_local_dir, transcript_dir
    from consolebot.wiring import known_secrets

    inv = load_inventory(args.inventory)
    host = inv.get(args.host)
    folder = ensure_local_dir(Path(args.dir) if args.dir else transcript_dir())
    known_secrets(host, out.redactor, out.warn)
    return host, folder, inv.folder
