"""A real OpenSSH server for Mire that accepts the login and then hangs (NSS lookups stuck on a dead
AFS server): recover's others step falls back to Mire's console within ``[ssh] connect_timeout_s``.

sshd authenticates the real ssh client with a key, then runs the simulator's shell mode for Mire as
its ForceCommand; the simulator (``--sshd mire=hangs``) never lets that login produce a shell.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import cb_env, consolebot_cmd
from tests.peers.process_peers import sshd_peer

DEADLINE_S = 3.0


def test_real_sshd_accepts_then_hangs_falls_back_to_the_console(tmp_path: Path) -> None:
    from consolebot.cli.demo import start_simulator, write_inventory

    proc, served = start_simulator(tmp_path, ["--site", "--scenario", "clean", "--sshd", "mire=hangs",
                                              "--time-scale", "0.2", "--line-delay-ms", "1"],
                                   {"CONSOLEBOT_LAB_PASSWORDS": "Right-cand-2y"})
    try:
        bmc = served["hosts"]["mire"]["bmc"]
        force = f"{sys.executable} -m consolebot lab serve --stdio --host mire --shell --bmc-port {bmc}"
        with sshd_peer(tmp_path, force_command=force) as sshd:
            inv = write_inventory(tmp_path / "inv", served)
            mire = inv / "lab-mire.toml"
            text = re.sub(r'\[ssh\]\nexec = "[^"]*"\nconnect_timeout_s = 5\n',
                          f'[ssh]\naddress = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
                          f'key = "{sshd.identity}"\nknown_hosts = "{sshd.known_hosts}"\n'
                          f'connect_timeout_s = {DEADLINE_S}\n', mire.read_text())
            assert f"port = {sshd.port}" in text
            mire.write_text(text)
            env = cb_env(tmp_path, inv)
            subprocess.run(consolebot_cmd("passwords", "add", "lab-deleuze", "root"), input="Right-cand-2y\n",
                           text=True, env=env, check=True, capture_output=True, timeout=60)
            run = subprocess.run(consolebot_cmd("recover", "--json", "lab-deleuze", "--only", "others", "--yes"),
                                 capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
            sshd_log = sshd.log_text()
    finally:
        proc.terminate()
        proc.wait(10)
    assert run.returncode == 0, run.stderr
    res = json.loads(run.stdout.strip().splitlines()[-1])
    m = res["others"]["lab-mire"]
    assert m["outcome"] == "ok" and m["via"] == "console" and m["checks"] == {"web": "pass"}, m
    # the real sshd accepted the key; the session then never produced a shell
    assert "Accepted publickey" in sshd_log
    hung = next(e for e in m["evidence"] if "accepted but no shell" in e)
    assert f"within {DEADLINE_S:g} s" in hung and hung.endswith(": using the console")
    gave_up_s = float(re.search(r"gave up after ([\d.]+) s", hung).group(1))  # type: ignore[union-attr]
    assert DEADLINE_S * 0.9 <= gave_up_s <= DEADLINE_S * 10  # the deadline ended it (a loose smoke bound)
    assert any(e.startswith("console login as root") for e in m["evidence"])
    assert res["others"]["lab-outpost"]["via"] == "ssh"  # Outpost's own SSH path still answers
    print(f"real sshd hung: gave up after {gave_up_s:.1f} s (deadline {DEADLINE_S:g} s), then the console")
