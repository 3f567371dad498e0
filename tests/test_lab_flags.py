"""Every ``consolebot lab serve`` flag changes what the simulated site does (one test each, or a group)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consolebot.errors import UsageError
from tests.lab_sim_helpers import LabSim, lab_args, login, run, wait_until

H = "deleuze-sim"
SIM = [sys.executable, "-m", "consolebot", "lab", "serve"]


def sysrq(s: object, key: str) -> None:
    s.send_break()  # type: ignore[attr-defined]
    s.send(key)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mask", "key", "answer"), [
    ("1", "t", b"sysrq: Show State\r\n"),
    ("438", "s", b"sysrq: Emergency Sync\r\n"),  # 438 = 2+4+16+32+128+256: sync allowed...
    ("438", "e", b"sysrq: This sysrq operation is disabled.\r\n"),  # ...signals (64) not
    ("16", "u", b"sysrq: This sysrq operation is disabled.\r\n"),
    ("16", "7", b"sysrq: This sysrq operation is disabled.\r\n"),  # loglevel needs bit 2
    ("438", "7", b"sysrq: Changing Loglevel\r\n"),
])
def test_sysrq_mask(tmp_path: Path, mask: str, key: str, answer: bytes) -> None:
    with LabSim(tmp_path, "--sysrq-mask", mask) as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        sysrq(s, key)
        s.expect([answer], 5)


def test_sysrq_mask_0_passes_the_key_to_the_tty(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--sysrq-mask", "0") as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        sysrq(s, "b")
        r = s.expect([b"b"], 5)
        assert b"sysrq" not in r.before and s.settle(0.2, 3)


def test_sysrq_wording_follows_the_kernel(tmp_path: Path) -> None:
    # squeeze's 2.6.32: "SysRq : " and an unprefixed "Loglevel set to"
    with LabSim(tmp_path, "--scenario", "salvage-wait", "--salvage-seconds", "0") as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        sysrq(s, "5")
        s.expect([b"] SysRq : Changing Loglevel\r\n"], 5)
        s.expect([b"] Loglevel set to 5\r\n"], 5)
        # read on the simulator's loop: the handler that printed the line may still be setting the level
        assert sim.call(lambda: sim.machine().console_loglevel) == 5


@pytest.mark.parametrize("failed", ["2", "never"])
def test_postgres_failed_starts(tmp_path: Path, failed: str) -> None:
    with LabSim(tmp_path, "--scenario", "salvage-old-init", "--salvage-seconds", "0", "--postgres-failed-starts",
                failed) as sim:
        s = sim.console()
        login(s, H)
        run(s, H, "/etc/init.d/postgresql stop")
        results = [run(s, H, "/etc/init.d/postgresql start >/dev/null; echo $?") for _ in range(3)]
    assert results == (["1\n", "1\n", "0\n"] if failed == "2" else ["1\n", "1\n", "1\n"])


def test_postgres_starts_at_once_after_a_clean_boot(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--postgres-failed-starts", "3") as sim:
        s = sim.console()
        login(s, H)
        assert run(s, H, "/etc/init.d/postgresql restart") == "Restarting PostgreSQL 15 database server: main.\n"


def test_courier_survives_stop_once(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--courier-survives-stop", "once") as sim:
        s = sim.console()
        login(s, H)
        first = run(s, H, "sv stop courier-authdaemon; echo rc=$?")
        assert first.startswith("timeout: run: courier-authdaemon: (pid ") and first.endswith(
            "s, want down, got TERM\nrc=1\n")
        assert "authdaemond" in run(s, H, "ps aux")  # still there, as the runbook warns
        assert run(s, H, "sv stop courier-authdaemon") == "ok: down: courier-authdaemon: 0s, normally up\n"


def test_courier_survives_stop_always_until_sigkill(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--courier-survives-stop", "always") as sim:
        s = sim.console()
        login(s, H)
        for _ in range(2):
            assert run(s, H, "sv stop courier-authdaemon").startswith("timeout: run: courier-authdaemon:")
        run(s, H, "killall authdaemond")
        assert run(s, H, "pgrep authdaemond >/dev/null; echo $?") == "0\n"
        assert run(s, H, "sv restart courier-authdaemon; echo rc=$?").endswith("got TERM\nrc=1\n")
        out = run(s, H, "sv force-stop courier-authdaemon")
        assert out.startswith("kill: run: courier-authdaemon: (pid ")
        assert run(s, H, "pgrep authdaemond; echo $?") == "1\n"
        assert run(s, H, "sv status courier-authdaemon").startswith("down: courier-authdaemon: ")


def test_runsv_restarts_a_killed_service_that_is_wanted_up(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        s = sim.console()
        login(s, H)
        before = run(s, H, "pgrep authdaemond | head -n 1")
        run(s, H, "killall authdaemond")
        after = wait_until(s, H, "pgrep authdaemond | head -n 1", lambda o: o.strip() != "")
        assert after != before


def test_stuck_service_never_stops(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--stuck-service", "spamassassin") as sim:
        s = sim.console()
        login(s, H)
        out = run(s, H, "/etc/init.d/spamassassin stop; echo rc=$?")
        assert out == "Stopping SpamAssassin Mail Filter Daemon: spamd \x1b[31mfailed!\x1b[0m\nrc=1\n"
        run(s, H, "killall -9 spamd")
        ps = run(s, H, "ps aux | grep 'spamd --create-prefs'")
        assert " D " in ps  # uninterruptible: not even SIGKILL
        s.sendline("reboot")
        s.expect([b"Killing all remaining processes...failed.\r\n"], 10)
        s.expect([f"{H} login: ".encode()], 10)


def test_console_hostname_and_bare_login(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--console-hostname", "fs01", "--bare-login") as sim:
        s = sim.console()
        r = s.expect([b"\r\nlogin: "], 10)
        assert r.before.endswith(b"Debian GNU/Linux 12 fs01 ttyS1\r\n")
        login(s, "fs01", at_prompt=True)
        assert run(s, "fs01", "hostname; uname -n") == "fs01\nfs01\n"
        s.sendline("exit")
        s.expect([b"logout\r\n\r\nDebian GNU/Linux 12 fs01 ttyS1\r\n\r\nlogin: "], 5)


def test_quiet_boot_has_no_kernel_banner(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--quiet") as sim:
        s = sim.console()
        r = s.expect([f"{H} login: ".encode()], 10)
        assert b"Loading Linux 6.1.0-18-amd64 ..." in r.before and b"Loading, please wait..." in r.before
        assert b"Linux version" not in r.before and b"] " not in r.before.replace(b"[....] ", b"")
        assert b"Begin: " not in r.before  # initramfs is silent too
        assert b"Starting AFS services: openafs afsd.\r\n" in r.before


def test_kmsg_during_commands(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--kmsg-during-commands", "--scenario", "salvage-old-init", "--salvage-seconds", "60") as sim:
        s = sim.console()
        login(s, H)
        raw = run(s, H, "bos status deleuze -localauth", raw=True)
        first = raw.splitlines()[0]
        assert first.startswith("Instance fs, ") and "] afs: Lost contact with file server 192.0.2.10" in first
        assert run(s, H, "bos status deleuze -localauth") == (  # the kernel line taken out, the output whole
            "Instance fs, currently running normally.\n    Auxiliary status is: salvaging file system.\n")
        assert run(s, H, "dmesg -n 1; cat /proc/sys/kernel/printk", raw=True) == "1\t4\t1\t7\n"
        assert "afs:" not in run(s, H, "bos status deleuze -localauth", raw=True)  # below the console loglevel


def test_time_scale_stretches_sv_waits(tmp_path: Path) -> None:
    durations = []
    for scale in ("0.001", "0.1"):
        with LabSim(tmp_path / scale, "--courier-survives-stop", "always", "--time-scale", scale) as sim:
            s = sim.console()
            login(s, H)
            t0 = time.monotonic()
            run(s, H, "sv stop courier-authdaemon")
            durations.append(time.monotonic() - t0)
    assert durations[0] < 0.5 <= 0.7 <= durations[1]  # 7 s x 0.1 = 0.7 s


@pytest.mark.parametrize("kind", ["clean", "salvage-wait"])
def test_reboots_into(tmp_path: Path, kind: str) -> None:
    with LabSim(tmp_path, "--scenario", "hung", "--reboots-into", kind, "--salvage-seconds", "0.2") as sim:
        s = sim.console()
        s.expect([b"INFO: task apache2:24411 blocked"], 10)
        sysrq(s, "b")
        s.expect([f"{H} login: ".encode()], 20)
        boots = [a["kind"] for a in sim.acts() if a["act"] == "boot"]
        sent = sim.sent()
    assert boots == [kind]
    assert (b"Waiting for OpenAFS salvager to finish:" in sent) == (kind == "salvage-wait")
    assert (b"afs: Lost contact" in sent) == (kind != "clean" and kind != "salvage-wait")


def test_line_delay_and_login_fail_delay(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--line-delay-ms", "8", "--login-fail-delay-s", "0.4", fast=False) as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        s.sendline("root")
        s.expect([b"Password: "], 5)
        t0 = time.monotonic()
        s.sendline("wrong")
        s.expect([b"Login incorrect"], 5)
        waited = time.monotonic() - t0
        times = [json.loads(x)["t"] for x in (sim.folder / "send-deleuze.jsonl").read_text().splitlines()[:30]]
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    assert gaps[len(gaps) // 2] >= 0.007  # the median gap between boot lines
    assert waited >= 0.4


def test_no_wait_boots_before_anyone_connects(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--no-wait") as sim:
        wait_s = 0.0
        while not [a for a in sim.acts() if a["act"] == "boot"] and wait_s < 5:
            time.sleep(0.02)
            wait_s += 0.02
        acts = sim.acts()
    assert acts[0]["act"] == "boot" and not [a for a in acts if a["act"] == "connect"]


def test_wait_for_the_first_client_by_default(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        assert sim.acts() == []
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        assert [a["act"] for a in sim.acts()][:2] == ["connect", "boot"]


def test_host_alone_and_logs_per_host(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--host", "outpost") as sim:
        assert sorted(sim.ports["hosts"]) == ["outpost"]
        s = sim.console("outpost")
        s.sendline("")
        login(s, "outpost-sim")
        assert run(s, "outpost-sim", "systemctl is-active named") == "active\n"
    with LabSim(tmp_path / "site", "--site") as sim:
        sim.bmc("mire").status()
        sim.bmc("outpost").guid()
    assert {p.name for p in (tmp_path / "site" / "lab").iterdir()} >= {"act-mire.jsonl", "act-outpost.jsonl"}
    assert [a["cmd"] for a in sim.acts("outpost")] == ["guid"]


def test_raw_port_with_an_in_band_break_sequence(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--raw-port", "0", "--break-sequence", "\\x05cl1") as sim:
        with socket.create_connection(("127.0.0.1", sim.port("deleuze", "raw")), timeout=5) as c:
            data = b""
            while f"{H} login: ".encode() not in data:
                data += c.recv(65536)
            c.sendall(b"\x05cl1s")
            while b"sysrq: Emergency Sync" not in data:
                data += c.recv(65536)
        acts = sim.acts()
    assert [a["act"] for a in acts if a["act"] in ("break", "sysrq")] == ["break", "sysrq"]


def test_ports_ready_file_and_no_telnet(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([*SIM, "--no-telnet", "--raw-port", "0", "--bmc-port", "0", "--ready-file", str(ready)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.01)
        info = json.loads(ready.read_text())
    finally:
        proc.terminate()
        out, _err = proc.communicate(timeout=10)
    assert "telnet" not in info and {"raw", "bmc"} <= set(info)
    assert proc.returncode == 0 and b"raw 127.0.0.1:" in out


def test_inventory_ports_are_the_default() -> None:
    from consolebot.cli.lab import build_options, plan_ports

    args = lab_args("--site")
    _opts, profiles = build_options(args, {})
    plan = plan_ports(args, profiles)
    assert {n: (p.telnet, p.raw, p.bmc) for n, p in plan.items()} == {
        "deleuze": (7101, 7102, 7103), "mire": (7111, 7112, 7113), "outpost": (7121, 7122, 7123)}
    stdio = plan_ports(lab_args("--stdio"), profiles[:1])
    assert (stdio["deleuze"].telnet, stdio["deleuze"].raw, stdio["deleuze"].bmc) == (None, None, None)


def test_usage_errors() -> None:
    from consolebot.cli.lab import build_options

    with pytest.raises(UsageError, match="--site or --host"):
        build_options(lab_args("--site", "--host", "mire"), {})
    with pytest.raises(UsageError, match="Deleuze's fileserver"):
        build_options(lab_args("--host", "mire", "--scenario", "salvage-wait"), {})
    with pytest.raises(UsageError, match="1 candidate password"):
        build_options(lab_args("--accepted-password-index", "2"), {})
    with pytest.raises(UsageError, match="no such service"):
        build_options(lab_args("--stuck-service", "bind9"), {})
    with pytest.raises(UsageError, match="belong to --shell"):
        build_options(lab_args("--ssh-hangs"), {})
