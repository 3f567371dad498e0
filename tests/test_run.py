"""consolebot run: over SSH while it answers, else on the console; exit codes; always logged out."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    LAB_PASSWORD,
    Sim,
    assert_no_secret,
    cb_env,
    consolebot_cmd,
    free_port,
    start_sim,
    stop_proc,
    write_host,
)

WRONG = "not-the-password-1"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Sim, dict[str, str], Path]]:
    sim = start_sim(tmp_path, "--kmsg-during-commands")
    inv = tmp_path / "inv"
    write_host(inv, "lab-deleuze", f"telnet://127.0.0.1:{sim.ports['telnet']}")
    env = cb_env(tmp_path, inv)
    for pw in (WRONG, LAB_PASSWORD):  # the first candidate is wrong, the second right
        subprocess.run(consolebot_cmd("passwords", "add", "lab-deleuze", "root"), input=pw + "\n", text=True,
                       env=env, check=True, capture_output=True, timeout=60)
    try:
        yield sim, env, tmp_path
    finally:
        stop_proc(sim.proc)


def run(env: dict[str, str], *args: str, timeout_s: float = 120) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(consolebot_cmd("run", *args), capture_output=True, text=True, env=env, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    return proc.returncode, json.loads(last) if last.startswith("{") else {}, proc.stderr + proc.stdout


def logins(sim: Sim) -> list[bool]:
    return [bool(a["accepted"]) for a in sim.acts() if a["act"] == "password"]


def test_console_run_second_candidate_exit_codes_and_logout(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, tmp = site
    code, res, text = run(env, "lab-deleuze", "--json", "--", "echo", "hello-from-console")
    assert code == 0, text
    assert res["path"] == "console" and res["output"] == "hello-from-console"
    assert res["candidate"] == 2 and res["logged_out"] is True
    assert logins(sim) == [False, True]
    code, res, text = run(env, "lab-deleuze", "--json", "--", "false")
    assert code == 1 and res["exit_code"] == 1 and res["logged_out"] is True
    # the command's own exit ends its child shell, not the login shell: markers, exit code, logout as usual
    code, res, text = run(env, "lab-deleuze", "--json", "--", "echo partial; exit 3")
    assert code == 3 and res["output"] == "partial" and res["logged_out"] is True, text
    assert_no_secret(LAB_PASSWORD, text, folder=tmp / "state")
    assert_no_secret(WRONG, text, folder=tmp / "state")


def test_all_candidates_wrong_stops_after_the_list(tmp_path: Path) -> None:
    sim = start_sim(tmp_path)
    try:
        inv = tmp_path / "inv"
        write_host(inv, "lab-deleuze", f"telnet://127.0.0.1:{sim.ports['telnet']}", "max_attempts = 5\n")
        env = cb_env(tmp_path, inv)
        for pw in ("wrong-a-123", "wrong-b-456"):
            subprocess.run(consolebot_cmd("passwords", "add", "lab-deleuze", "root"), input=pw + "\n", text=True,
                           env=env, check=True, capture_output=True, timeout=60)
        code, res, text = run(env, "lab-deleuze", "--json", "--", "true")
    finally:
        stop_proc(sim.proc)
    assert code == 255 and res["ok"] is False
    assert "no candidate accepted after 2 attempt(s)" in text
    assert logins(sim) == [False, False]  # counted by the simulator, not by consolebot


def test_sigterm_mid_command_leaves_a_login_prompt(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, tmp = site
    proc = subprocess.Popen(consolebot_cmd("run", "lab-deleuze", "--json", "--", "sleep", "60"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while not any(a["act"] == "line" and "sleep 60" in str(a.get("text")) for a in sim.acts()):
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.1)  # polling the simulator's act log file: no event to await across processes
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is False and "interrupted" in result["error"]
    # the console itself: an Enter gets a login prompt, not a shell prompt
    from consolebot.secrets.redact import Redactor
    from consolebot.session.session import Session
    from consolebot.transport.telnet import TelnetTransport

    t = TelnetTransport("127.0.0.1", sim.ports["telnet"])
    t.open()
    s = Session(t, None, Redactor())
    r = s.poke([b"login: ", b"# "], tries=3, interval_s=2.0)
    s.close()
    assert r.match == b"login: "
    assert any(a["act"] == "line" and a.get("text") == "exit" for a in sim.acts())


def test_ssh_accepts_runs_over_ssh(tmp_path: Path) -> None:
    from tests.peers.process_peers import sshd_peer

    with sshd_peer(tmp_path, force_command='eval "$SSH_ORIGINAL_COMMAND"') as sshd:
        inv = tmp_path / "inv"
        write_host(inv, "lab-deleuze", "telnet://127.0.0.1:9", (
            f'\n[ssh]\naddress = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\nkey = "{sshd.identity}"\n'
            f'known_hosts = "{sshd.known_hosts}"\n'))
        env = cb_env(tmp_path, inv)
        code, res, text = run(env, "lab-deleuze", "--json", "--", "echo over-ssh; exit 3")
    assert code == 3, text
    assert res["path"] == "ssh" and res["output"] == "over-ssh\n"


@pytest.mark.parametrize("mode", ["refuses", "hangs"])
def test_ssh_refused_or_hung_falls_back_to_the_console(site: tuple[Sim, dict[str, str], Path], mode: str) -> None:
    from tests.peers.process_peers import sshd_peer

    sim, env, tmp = site
    inv = Path(env["CONSOLEBOT_INVENTORY"])
    host = inv / "lab-deleuze.toml"
    base = host.read_text()
    with sshd_peer(tmp, force_command="sleep 600") as sshd:
        port = sshd.port if mode == "hangs" else free_port()
        host.write_text(base + (
            f'\n[ssh]\naddress = "127.0.0.1"\nport = {port}\nuser = "{sshd.user}"\nkey = "{sshd.identity}"\n'
            f'known_hosts = "{sshd.known_hosts}"\nconnect_timeout_s = 3\n'))
        t0 = time.monotonic()
        code, res, text = run(env, "lab-deleuze", "--json", "--ssh-probe-timeout-s", "3", "--", "echo", "fallback")
        elapsed = time.monotonic() - t0
    assert code == 0, text
    assert res["path"] == "console" and res["output"] == "fallback"
    assert ("hung" if mode == "hangs" else "refused") in str(res["why"])
    print(f"ssh {mode}: fell back to the console, whole run {elapsed:.1f} s")
