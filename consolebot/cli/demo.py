"""``consolebot demo``: the main job on the built-in simulator, no hardware needed.

Until the recovery runbook exists, the demo starts the simulated server on a
free loopback port, attaches to its console over telnet, captures its boot to
the login prompt into a transcript, and prints what it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import ConsoleUnreachable


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="run the main job against the built-in simulator")
    p.add_argument("--dir", default=None, help="transcript folder (default: a new temporary folder)")
    p.add_argument("--timeout-s", type=float, default=60.0, help="give up after this long")
    p.set_defaults(handler=demo_cmd)


def start_simulator(workdir: Path, extra: list[str] | None = None, timeout_s: float = 20.0) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """Start ``consolebot lab serve`` on free ports; return the process and its ports."""
    ready = workdir / "sim-ready.json"
    argv = [sys.executable, "-m", "consolebot", "lab", "serve", "--port", "0", "--ready-file", str(ready)]
    argv += extra or []
    env = {k: v for k, v in os.environ.items() if k != "CONSOLEBOT_LAB_PASSWORD"}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
            raise ConsoleUnreachable(f"the simulator did not start: {err[-1] if err else 'no message'}")
        if time.monotonic() > end:
            proc.kill()
            raise ConsoleUnreachable("the simulator did not start in time")
        time.sleep(0.02)
    return proc, json.loads(ready.read_text())


def demo_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.session.session import Session
    from consolebot.session.transcript import Transcript
    from consolebot.transport.telnet import TelnetTransport

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="consolebot-demo-"))
    from consolebot.paths import ensure_local_dir

    folder = ensure_local_dir(Path(args.dir) if args.dir else workdir / "transcripts")
    proc, ports = start_simulator(workdir)
    try:
        transport = TelnetTransport("127.0.0.1", ports["telnet"])
        transport.open()
        transcript = Transcript(folder, "lab-deleuze", out.redactor)
        session = Session(transport, transcript)
        out.say(f"attached to the simulated Deleuze at {transport.describe()}; capturing its boot")
        session.note("demo: capture started")
        banner = session.expect([b"Linux version "], args.timeout_s)
        kernel = session.expect([b"\r\n"], 5).before.decode(errors="replace").split(" ")[0]
        session.expect([b"Starting AFS services"], args.timeout_s)
        prompt = session.expect([b"login: "], args.timeout_s)
        host = prompt.before.rsplit(b"\n", 1)[-1].decode(errors="replace").strip()
        session.note("demo: login prompt reached")
        lines = transcript.lines
        session.close()
    finally:
        proc.terminate()
        proc.wait(10)
    elapsed = time.monotonic() - started
    out.say(f"kernel {kernel} booted; OpenAFS started; login prompt of {host!r} reached")
    out.say(f"{lines} console lines captured in {elapsed:.1f} s")
    for kind, path in transcript.paths().items():
        out.say(f"  {kind:5} {path}")
    out.result(True, kernel=kernel, host=host, lines=lines, elapsed_s=round(elapsed, 2), transcript=transcript.paths(), banner=banner.pattern)
    return 0
