"""Run a command over SSH while SSH answers; tell a refusal or a hang from a result.

``ssh -o BatchMode=yes -o ConnectTimeout=N`` with the user's agent or the inventory's key; or the
inventory's ``[ssh] exec`` command line instead of ssh (a jump wrapper, the simulator's SSH path),
given the remote command as its last argument as ssh is.
A first probe (``true``) must finish within ``probe_timeout_s``: a server that accepts the
connection and then hangs (NSS lookups on a dead AFS server) fails it, and the caller
falls back to the console.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

from consolebot.inventory.model import SshSpec


@dataclass(frozen=True)
class SshOutcome:
    ok: bool
    reason: str  # "ok", "refused", "hung", "error"
    exit_code: int | None = None
    output: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0


def ssh_argv(spec: SshSpec, extra_options: dict[str, str] | None = None) -> list[str]:
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(spec.connect_timeout_s))}",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", "-p", str(spec.port)]
    if spec.key:
        argv += ["-i", os.path.expanduser(spec.key), "-o", "IdentitiesOnly=yes"]
    if spec.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(spec.known_hosts)}", "-o", "StrictHostKeyChecking=yes"]
    for k, v in (extra_options or {}).items():
        argv += ["-o", f"{k}={v}"]
    argv.append(f"{spec.user}@{spec.address}")
    return argv


def exec_argv(spec: SshSpec) -> list[str]:
    """The ``[ssh] exec`` command line as an argv; a first word ``consolebot`` is this very consolebot."""
    argv = shlex.split(spec.exec or "")
    if argv and argv[0] == "consolebot":
        argv = [sys.executable, "-m", "consolebot", *argv[1:]]
    return argv


def remote_argv(spec: SshSpec, command: str | None, tty: bool = False,
                extra_options: dict[str, str] | None = None) -> list[str]:
    """The argv that runs ``command`` on the host (a login shell when None; ``tty``: ask ssh for a terminal)."""
    if spec.exec:
        return exec_argv(spec) + ([command] if command is not None else [])
    argv = ssh_argv(spec, extra_options)
    if tty:
        argv[1] = "-tt"
    return argv + (["--", command] if command is not None else [])


def ssh_run(spec: SshSpec, command: str, timeout_s: float, extra_options: dict[str, str] | None = None) -> SshOutcome:
    """Run ``command`` on the host over SSH; never raises for a refusal or a hang."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(remote_argv(spec, command, extra_options=extra_options), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SshOutcome(False, "hung", elapsed_s=round(time.monotonic() - t0, 3),
                          stderr=f"no answer within {timeout_s:g} s")
    except FileNotFoundError:
        return SshOutcome(False, "error", stderr="ssh is not installed", elapsed_s=round(time.monotonic() - t0, 3))
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode == 255:
        return SshOutcome(False, "refused", 255, "", err.splitlines()[-1] if err else "ssh failed",
                          round(time.monotonic() - t0, 3))
    return SshOutcome(True, "ok", proc.returncode, proc.stdout.decode("utf-8", "replace"), err,
                      round(time.monotonic() - t0, 3))


def ssh_usable(spec: SshSpec, probe_timeout_s: float, extra_options: dict[str, str] | None = None) -> SshOutcome:
    """Probe SSH with ``true``: ok only when it connects, authenticates and returns in time."""
    return ssh_run(spec, "true", probe_timeout_s, extra_options)
