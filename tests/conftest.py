"""Shared fixtures: the simulator as a real peer, free ports, secret scanning."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LAB_PASSWORD = "Lab-s3cret-Pw!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sim:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    send_log: Path
    act_log: Path

    def sent_bytes(self) -> bytes:
        out = bytearray()
        if self.send_log.exists():
            for line in self.send_log.read_text().splitlines():
                out += json.loads(line)["text"].encode("latin-1")
        return bytes(out)

    def acts(self) -> list[dict[str, object]]:
        if not self.act_log.exists():
            return []
        return [json.loads(line) for line in self.act_log.read_text().splitlines()]


def sim_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONSOLEBOT_LAB_PASSWORD"] = LAB_PASSWORD
    return env


def start_sim(tmp: Path, *extra: str, timeout_s: float = 20.0) -> Sim:
    ready = tmp / f"ready-{time.monotonic_ns()}.json"
    send_log = tmp / "sim-send.jsonl"
    act_log = tmp / "sim-act.jsonl"
    argv = [
        sys.executable, "-m", "consolebot", "lab", "serve", "--port", "0", "--ready-file", str(ready),
        "--send-log", str(send_log), "--act-log", str(act_log), "--line-delay-ms", "1", "--login-fail-delay-s", "0.2",
        *extra,
    ]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=sim_env())
    end = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}")
        if time.monotonic() > end:
            proc.kill()
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    return Sim(proc, json.loads(ready.read_text()), send_log, act_log)


def stop_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    s = start_sim(tmp_path)
    try:
        yield s
    finally:
        stop_proc(s.proc)


def assert_no_secret(secret: str, *texts: str | bytes, folder: Path | None = None) -> None:
    """Fail if ``secret`` appears in any text or any file under ``folder``."""
    needle = secret.encode()
    for t in texts:
        data = t.encode() if isinstance(t, str) else t
        assert needle not in data, "secret leaked into an output"
    if folder is not None:
        for p in folder.rglob("*"):
            if p.is_file() and not p.name.startswith("sim-"):
                assert needle not in p.read_bytes(), f"secret leaked into {p}"


def cb_env(tmp: Path, inventory: Path | None = None) -> dict[str, str]:
    """An environment for running the consolebot CLI in isolation: own state, keyring file, inventory."""
    env = sim_env()
    env["CONSOLEBOT_STATE_DIR"] = str(tmp / "state")
    env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg-config")
    env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    env["PYTHONUNBUFFERED"] = "1"
    if inventory is not None:
        env["CONSOLEBOT_INVENTORY"] = str(inventory)
    return env


def write_host(folder: Path, name: str, address: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(
        f'simulated = true\nconsole_hostnames = ["deleuze-sim"]\n\n[console]\ntransport = "{address.split(":")[0]}"\n'
        f'address = "{address}"\n\n[login]\nusers = ["root"]\n{extra}'
    )
    return path


def consolebot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "consolebot", *args]


_MARKED = re.compile(r"^echo '[^']*''[^']*'; (.*); echo '[^']*''[^']*':\$\?$")


def typed_commands(acts: list[dict[str, object]], act: str = "line") -> list[str]:
    """The commands consolebot typed (simulator act log entries ``act``: a console shell's lines, or
    ``ssh``), unwrapped from its Shell's start/end markers."""
    out = []
    for a in acts:
        if a["act"] == act and (act != "line" or a.get("state") == "shell"):
            text = str(a.get("text"))
            m = _MARKED.match(text)
            out.append(m.group(1) if m else text)
    return out
