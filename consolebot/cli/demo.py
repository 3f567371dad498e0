"""``consolebot demo``: the main job on the built-in simulated site, no hardware needed.

It starts the simulated site with Deleuze hung (rebooting into a crash boot whose old init
script lets services start without AFS, a 20 s salvage, Postgres failing two starts,
courier-authdaemon surviving its first stop, the second candidate password right; Mire's web
server and both domtool slaves broken, Outpost's zones stale) and runs ``recover`` against it
(shells held on Mire and Outpost first, their restarts and checks last) with a throwaway in-memory keyring, then prints the report. It can never
touch a real machine: it writes its own temporary inventory, passes it explicitly (ignoring
``$CONSOLEBOT_INVENTORY`` and ``./hardware``), and refuses any host whose console hostname or
BMC GUID is not the simulator's, or whose console is not on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import ConsoleUnreachable, Refused
from consolebot.secrets.secret import Secret

SIM_FLAGS = ["--site", "--scenario", "hung", "--reboots-into", "salvage-old-init", "--postgres-failed-starts", "2",
             "--courier-survives-stop", "once", "--accepted-password-index", "2", "--salvage-seconds", "20",
             "--login-fail-delay-s", "0.5"]


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="recover a simulated hung Deleuze end to end (no hardware)",
                       description=__doc__)
    p.add_argument("--dir", default=None, help="transcript folder (default: a new temporary folder)")
    p.add_argument("--report", metavar="FILE", default=None, help="also write the report as Markdown")
    p.set_defaults(handler=demo_cmd)


class MemoryStore:
    """A throwaway keyring: candidate passwords held in memory for one run."""

    def __init__(self, candidates: dict[tuple[str, str], list[Secret]]) -> None:
        self._c = candidates

    def candidates(self, host: str, user: str) -> list[Secret]:
        return list(self._c.get((host, user), []))

    def resolve_ref(self, ref: str) -> Secret:
        raise Refused(f"the demo holds no secret for {ref}")


def start_simulator(workdir: Path, flags: list[str], env_extra: dict[str, str],
                    timeout_s: float = 20.0) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``consolebot lab serve`` on free loopback ports; return the process and what it serves."""
    ready = workdir / "sim-ready.json"
    argv = [sys.executable, "-m", "consolebot", "lab", "serve", "--port", "0", "--bmc-port", "0",
            "--ready-file", str(ready), "--send-log", str(workdir / "sim-send.jsonl"),
            "--act-log", str(workdir / "sim-act.jsonl"), *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSOLEBOT_LAB_")}
    env.update(env_extra)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
            raise ConsoleUnreachable(f"the simulator did not start: {err[-1] if err else 'no message'}")
        if time.monotonic() > end:
            proc.kill()
            raise ConsoleUnreachable("the simulator did not start in time")
        time.sleep(0.02)  # its ready file is written by another process: there is no event to await
    return proc, json.loads(ready.read_text())


def write_inventory(folder: Path, served: dict[str, Any]) -> Path:
    """The shipped lab-* entries of the hosts served, pointed at the ports the simulator chose."""
    from consolebot.inventory.load import shipped_folder

    folder.mkdir(parents=True, exist_ok=True)
    defaults = {"deleuze": (7101, 7103), "mire": (7111, 7113), "outpost": (7121, 7123)}
    for name, ports in served["hosts"].items():
        telnet, bmc = defaults[name]
        text = (shipped_folder() / f"lab-{name}.toml").read_text()
        text = text.replace(f"telnet://127.0.0.1:{telnet}", f"telnet://127.0.0.1:{ports['telnet']}")
        text = text.replace(f"port = {bmc}", f"port = {ports['bmc']}")
        text = text.replace(f"--bmc-port {bmc}", f"--bmc-port {ports['bmc']}")
        if name == "deleuze" and len(served["hosts"]) == 1:
            text = text.replace('others = ["lab-mire", "lab-outpost"]', "others = []")
        (folder / f"lab-{name}.toml").write_text(text)
    return folder


def check_simulated(host: Any, served: dict[str, Any], name: str = "deleuze") -> None:
    """Refuse anything that is not the simulator's own host."""
    from consolebot.power.base import normalise_guid

    sim = served["hosts"][name]
    if not host.simulated or list(host.console_hostnames) != [sim["console_hostname"]]:
        raise Refused(f"{host.source}: not the simulator's host (console hostname {host.console_hostnames})")
    if host.bmc is None or normalise_guid(host.bmc.guid) != normalise_guid(sim["guid"]):
        raise Refused(f"{host.source}: BMC GUID is not the simulator's")
    if not host.console.address.startswith("telnet://127.0.0.1:") or host.bmc.address != "127.0.0.1":
        raise Refused(f"{host.source}: the demo only talks to loopback")


def demo_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.cli.recover import run_recover
    from consolebot.inventory.load import load_inventory
    from consolebot.paths import ensure_local_dir

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="consolebot-demo-"))
    folder = ensure_local_dir(Path(args.dir) if args.dir else workdir / "transcripts")
    os.environ["CONSOLEBOT_STATE_DIR"] = str(workdir / "state")  # the demo's own locks, never the real ones
    wrong, right = Secret(secrets.token_urlsafe(12), "demo/root#1"), Secret(secrets.token_urlsafe(12), "demo/root#2")
    out.redactor.add(wrong.reveal())
    out.redactor.add(right.reveal())
    store = MemoryStore({("lab-deleuze", "root"): [wrong, right]})
    proc, served = start_simulator(workdir, SIM_FLAGS,
                                   {"CONSOLEBOT_LAB_PASSWORDS": wrong.reveal() + "\n" + right.reveal()})
    try:
        inv = load_inventory(str(write_inventory(workdir / "inventory", served)))
        host = inv.get("lab-deleuze")
        for name in served["hosts"]:
            check_simulated(inv.get(f"lab-{name}"), served, name)
        if list(host.others) != [f"lab-{n}" for n in served["hosts"] if n != "deleuze"]:
            raise Refused(f"{host.source}: others must be the simulator's other hosts, not {list(host.others)}")
        out.say(f"demo: a simulated Deleuze ({host.console_hostnames[0]}) is hung; recovering it "
                f"(transcripts in {folder})")
        ns = argparse.Namespace(
            dry_run=False, from_step="preflight", clean=False, yes=True, allow_power=False, max_rung=5,
            assume_identity=False, boot_timeout_s=120.0, salvage_deadline_s=300.0, salvage_poll_s=5.0,
            postgres_max_restarts=4, report=args.report, yield_timeout_s=15.0, steal=False, json=args.json,
        )
        code = run_recover(ns, out, host, folder, inv.folder, store=store)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    out.say(f"demo: wall time {time.monotonic() - started:.1f} s")
    return code
