"""The whole simulated site: Mire and Outpost after Deleuze's outage, their front ends, their SSH path,
and ``consolebot lab serve --site`` as a process (start-up time, clean stop on SIGINT and SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consolebot.secrets.secret import Secret
from consolebot.session.chat import ChatScript
from consolebot.wiring import find_script
from tests.lab_sim_helpers import LabSim, login, run, wait_until

SIM = [sys.executable, "-m", "consolebot", "lab", "serve"]
STOP_TIMEOUT_S = 10.0


def wait_ready(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> dict[str, object]:
    end = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"simulator exited with {proc.returncode}"
        assert time.monotonic() < end, "simulator did not start"
        time.sleep(0.01)
    return dict(json.loads(path.read_text()))


def test_after_the_outage_mire_and_outpost_need_restarts(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--site", "--scenario", "salvage-old-init", "--salvage-seconds", "1") as sim:
        d = sim.console("deleuze")
        login(d, "deleuze-sim")
        m = sim.console("mire")
        m.sendline("")  # a getty that has waited for weeks: Enter shows it
        login(m, "mire-sim")
        o = sim.console("outpost")
        o.sendline("")
        login(o, "outpost-sim")
        # Mire serves errors; Outpost's zones are stale; the domtool slaves do not answer
        assert run(m, "mire-sim", "wget -q -O /dev/null http://localhost/; echo $?") == "8\n"
        out = run(o, "outpost-sim", "domtool-dnscheck; echo rc=$?")
        assert out == ("hcoop.net: serial 2024051401 here, 2024051403 on deleuze: STALE\n"
                       "example.org: serial 2024051401 here, 2024051403 on deleuze: STALE\nrc=1\n")
        # a restart while Deleuze still salvages fails: apache2's configuration lives in AFS
        out = run(m, "mire-sim", "systemctl restart apache2; echo rc=$?; systemctl is-active apache2")
        assert out.startswith("Job for apache2.service failed because the control process exited with error code.")
        assert out.endswith("rc=1\nfailed\n")
        wait_until(d, "deleuze-sim", "bos status deleuze -localauth", lambda o_: "file server running" in o_)
        # Deleuze is back: restart the services of the runbook's 4.1
        assert run(m, "mire-sim", "/etc/init.d/apache2 restart") == \
            "Restarting apache2 (via systemctl): apache2.service.\n"
        assert run(m, "mire-sim", "wget -q -O /dev/null http://localhost/; echo $?") == "0\n"
        assert run(m, "mire-sim", "systemctl restart domtool-slave; systemctl is-active domtool-slave") == "active\n"
        # the slave's restart alone leaves named serving stale zones (the last outage): bind9's restart reloads them
        assert run(o, "outpost-sim", "service domtool-slave restart; domtool-dnscheck; echo rc=$?").endswith(
            "STALE\nrc=1\n")
        assert run(o, "outpost-sim", "service bind9 restart >/dev/null; domtool-dnscheck; echo rc=$?") == (
            "hcoop.net: serial 2024051403: up to date\nexample.org: serial 2024051403: up to date\nrc=0\n")
        assert run(o, "outpost-sim", "dig +short @localhost hcoop.net SOA") == \
            "ns1.hcoop.net. hostmaster.hcoop.net. 2024051403 10800 3600 604800 3600\n"
        status = run(o, "outpost-sim", "systemctl status named")
        assert status.startswith("● named.service - BIND Domain Name Server\n")
        assert "     Active: active (running) since " in status
        # on Deleuze the whole domtool chain answers once its own services are restarted after AFS
        for svc in ("postgresql", "postgresql", "domtool-server"):
            run(d, "deleuze-sim", f"/etc/init.d/{svc} restart")
        assert run(d, "deleuze-sim", "domtool-admin ping; echo rc=$?") == (
            "deleuze.hcoop.net (domtool-server): ok\nmire.hcoop.net (domtool-slave): ok\n"
            "outpost.hcoop.net (domtool-slave): ok\nrc=0\n")
        assert run(d, "deleuze-sim", "domtool example.org") == "Configuration published.\n"
        # a sysvinit Deleuze has no systemd
        assert run(d, "deleuze-sim", "systemctl is-active apache2; echo rc=$?") == (
            "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
            "Failed to connect to bus: Host is down\nrc=1\n")


def test_kvm_menu_lists_the_site_and_sp_cli_reaches_mire(tmp_path: Path) -> None:
    env = {"CONSOLEBOT_LAB_PASSWORD": "labpass", "CONSOLEBOT_LAB_KVM_PASSWORD": "kvm-Secret-9"}
    with LabSim(tmp_path, "--site", "--kvm-menu", "--sp-cli", env=env) as sim:
        s = sim.console("outpost")
        kvm = ChatScript.load(find_script("kvm-menu.chat"))
        kvm.run(s, lambda ref: Secret("kvm-Secret-9", ref), {"kvm_user": "admin", "port": "2", "kvm_secret": "keyring:kvm1/admin"})
        sp = ChatScript.load(find_script("sp-console.chat"))  # port 2 is Mire: its service processor first
        sp.run(s, lambda ref: Secret("unused", ref), {})
        s.sendline("")
        login(s, "mire-sim")
        assert run(s, "mire-sim", "hostname") == "mire-sim\n"
        s.send(b"\x1b(")  # ESC ( : back to the service processor
        s.expect([b"Serial console stopped.\r\n\r\n-> "], 5)
        s.sendline("show /SYS")
        s.expect([b"power_state = On"], 5)
        s.sendline("reset /SYS")
        s.expect([b"Are you sure you want to reset /SYS (y/n)? "], 5)
        s.sendline("y")
        s.expect([b"Performing hard reset on /SYS"], 5)
        s.sendline("start -script /SP/console")
        s.expect([b"mire-sim login: "], 10)
        acts = sim.acts("mire")
        sent = (tmp_path / "transcripts" / "outpost.raw").read_bytes()
    menu = b"  1  deleuze-sim\r\n  2  mire-sim\r\n  3  outpost-sim\r\nSelect port: "
    assert menu in sent and b"kvm-Secret-9" not in sent
    assert [a["text"] for a in acts if a["act"] == "sp"][:2] == ["start /SP/console", "y"]
    assert [a["kind"] for a in acts if a["act"] == "boot"] == ["crash"]


def test_the_ssh_path_runs_on_the_same_state_as_the_console(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--site") as sim:
        bmc_port = str(sim.port("mire", "bmc"))
        shell = [*SIM, "--stdio", "--host", "mire", "--shell", "--bmc-port", bmc_port]
        env = dict(os.environ, SSH_ORIGINAL_COMMAND="systemctl stop apache2; systemctl is-active apache2")
        p = subprocess.run(shell, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert (p.returncode, p.stdout) == (3, "inactive\n")
        m = sim.console("mire")
        m.sendline("")
        login(m, "mire-sim")
        assert run(m, "mire-sim", "systemctl is-active apache2") == "inactive\n"  # the console sees it
        p = subprocess.run([*shell, "-c", "hostname; uptime >/dev/null && echo up"], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert (p.returncode, p.stdout) == (0, "mire-sim\nup\n")
        p = subprocess.run(shell, input="systemctl start apache2\nsystemctl is-active apache2\n", capture_output=True,
                           text=True, timeout=30)
        assert (p.returncode, p.stdout) == (0, "active\n")
        acts = sim.acts("mire")
    assert [a["text"] for a in acts if a["act"] == "ssh"][:1] == ["systemctl stop apache2; systemctl is-active apache2"]


def test_ssh_refuses_and_ssh_hangs(tmp_path: Path) -> None:
    base = [*SIM, "--stdio", "--host", "outpost", "--shell", "--bmc-port", "1"]
    p = subprocess.run([*base, "--ssh-refuses", "-c", "true"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 255 and "Permission denied (publickey,password)." in p.stderr
    # standalone (nothing on the control port): a copy of Outpost, already up
    p = subprocess.run([*base, "-c", "domtool-dnscheck"], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout.splitlines()[0]) == (0, "hcoop.net: serial 2024051403: up to date")
    hung = subprocess.Popen([*base, "--ssh-hangs", "-c", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        try:
            hung.wait(1.0)
            raise AssertionError("--ssh-hangs answered")
        except subprocess.TimeoutExpired:
            pass
        assert hung.stdout is not None
        hung.stdout.close()  # the SSH client gives up: the hang ends with it
        assert hung.wait(STOP_TIMEOUT_S) == 255
    finally:
        if hung.poll() is None:
            hung.kill()


def test_site_process_starts_quickly_and_stops_on_sigint_and_sigterm(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        ready = tmp_path / f"ready-{sig.name}.json"
        t0 = time.monotonic()
        proc = subprocess.Popen([*SIM, "--site", "--port", "0", "--raw-port", "0", "--ready-file", str(ready)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            info = wait_ready(ready, proc)
            startup_s = time.monotonic() - t0
            with capsys.disabled():
                print(f"\nconsolebot lab serve --site: ready in {startup_s:.2f} s ({sig.name} run)")
            assert startup_s < 10.0  # a smoke bound, not a timing assertion
            hosts = info["hosts"]
            assert isinstance(hosts, dict) and sorted(hosts) == ["deleuze", "mire", "outpost"]
            assert all({"telnet", "raw", "bmc"} <= set(h) for h in hosts.values())
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert b"consolebot lab: stopped" in out and b"Traceback" not in err
        assert b"deleuze (deleuze-sim): telnet 127.0.0.1:" in out
