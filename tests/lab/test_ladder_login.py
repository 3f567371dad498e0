"""The reboot ladder, login and run against the real kernel, through consolebot's own CLI.

Each test boots its own guest (its state matters); the CLI talks to QEMU's telnet serial with an
inventory written for the guest and candidates in a real keyring file backend.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from consolebot.lab.guest.qemu import GuestConfig
from tests.conftest import LAB_PASSWORD, assert_no_secret, cb_env, consolebot_cmd
from tests.lab.conftest import GuestFactory, LabGuest, record_timing

WRONG = "wrong-candidate-9"


def setup_host(guest: LabGuest, tmp: Path, candidates: list[str]) -> dict[str, str]:
    inv = tmp / "inv"
    inv.mkdir(exist_ok=True)
    (inv / "lab-guest.toml").write_text(
        f'console_hostnames = ["{guest.hostname}"]\n[console]\ntransport = "telnet"\n'
        f'address = "{guest.qemu.address}"\n[login]\nusers = ["root"]\nmax_attempts = 5\n')
    env = cb_env(tmp, inv)
    for pw in candidates:
        subprocess.run(consolebot_cmd("passwords", "add", "lab-guest", "root"), input=pw + "\n", text=True, env=env,
                       check=True, capture_output=True, timeout=60)
    return env


def cli(env: dict[str, str], *args: str, timeout_s: float = 240) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(consolebot_cmd(args[0], "--json", *args[1:]), capture_output=True, text=True, env=env, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr


@pytest.mark.parametrize("sysrq", [1, None], ids=["sysrq-1", "sysrq-438"])
def test_ladder_reboots_a_hung_guest_at_rung_2(guest_factory: GuestFactory, tmp_path: Path, sysrq: int | None) -> None:
    guest = guest_factory(GuestConfig(sysrq=sysrq, hang_boots=1, salvage_s=2), "hung")
    env = setup_host(guest, tmp_path, [LAB_PASSWORD])
    # let the hung boot reach its services (the first client connection starts QEMU's boot)
    code, res, err = cli(env, "probe", guest.qemu.address, "--for", "60", "--until", "Starting periodic command",
                         "--dir", str(tmp_path / "probe"))
    assert code == 0, err
    t0 = time.monotonic()
    code, res, err = cli(env, "reboot", "lab-guest", "--yes", "--assume-identity", "--reboot-timeout-s", "60")
    record_timing(f"ladder (sysrq {sysrq or 438}): nudge + SysRq s u b to reboot evidence", time.monotonic() - t0)
    assert code == 0, err
    assert res["outcome"] == "rebooted"
    rungs = res["rungs"]
    assert [r["name"] for r in rungs] == ["nudge", "sysrq"]  # type: ignore[index]
    assert rungs[0]["outcome"] == "hung" and rungs[1]["outcome"] == "rebooted"  # type: ignore[index]
    assert rungs[1]["evidence"] in ("boot.start", "boot.firmware", "init.start", "login.prompt")  # type: ignore[index]
    assert res["identity"]["method"] == "assumed"  # type: ignore[index]
    raw = (tmp_path / "state" / "transcripts" / "lab-guest.raw").read_bytes()
    assert b"sysrq: Resetting" in raw


def test_ladder_leaves_a_live_guest_alone(guest_factory: GuestFactory, tmp_path: Path) -> None:
    guest = guest_factory(GuestConfig(sysrq=1), "live")
    env = setup_host(guest, tmp_path, [LAB_PASSWORD])
    code, res, err = cli(env, "probe", guest.qemu.address, "--for", "60", "--until", "login: ",
                         "--dir", str(tmp_path / "probe"))
    code, res, err = cli(env, "reboot", "lab-guest", "--yes")
    assert code == 0, err
    assert res["outcome"] == "alive"
    raw = (tmp_path / "state" / "transcripts" / "lab-guest.raw").read_bytes()
    assert b"sysrq" not in raw.lower()


def test_login_second_candidate_and_run_with_kernel_noise(guest_factory: GuestFactory, tmp_path: Path) -> None:
    guest = guest_factory(GuestConfig(sysrq=1), "login")
    env = setup_host(guest, tmp_path, [WRONG, LAB_PASSWORD])
    t0 = time.monotonic()
    # kernel lines at the emergency level arrive while the command runs (dmesg -n 1 stays off)
    cmd = "echo before; lab-kmsg -a 0.3 -n 3 -i 0.2 CBTEST-KMSG-LINE; sleep 1.5; echo after"
    code, res, err = cli(env, "run", "lab-guest", "--", cmd)
    record_timing("run on the console: boot wait, login (2nd candidate), command, logout", time.monotonic() - t0)
    assert code == 0, err
    assert res["path"] == "console" and res["candidate"] == 2 and res["logged_out"] is True
    assert res["output"] == "before\nafter"
    assert len([k for k in res["kernel_lines"] if "CBTEST-KMSG-LINE" in k]) == 3  # type: ignore[union-attr]
    raw = (tmp_path / "state" / "transcripts" / "lab-guest.raw").read_bytes()
    assert raw.count(b"CBTEST-KMSG-LINE") >= 3 + 1  # the three lines really arrived (plus the typed command)
    assert len(re.findall(rb"login\[\d+\]: invalid password", raw)) == 1
    code, res, err = cli(env, "run", "lab-guest", "--", "echo x; exit 7")
    assert code == 7 and res["logged_out"] is True
    assert_no_secret(LAB_PASSWORD, err, folder=tmp_path / "state")
    assert_no_secret(WRONG, err, folder=tmp_path / "state")


def test_all_candidates_wrong_stops_after_the_list(guest_factory: GuestFactory, tmp_path: Path) -> None:
    guest = guest_factory(GuestConfig(sysrq=1), "wrong")
    env = setup_host(guest, tmp_path, ["wrong-1-aaaa", "wrong-2-bbbb"])
    code, res, err = cli(env, "run", "lab-guest", "--", "true")
    assert code == 255 and "no candidate accepted after 2 attempt(s)" in err
    raw = (tmp_path / "state" / "transcripts" / "lab-guest.raw").read_bytes()
    # counted from busybox's own lines on the console, not from consolebot's sends
    assert len(re.findall(rb"login\[\d+\]: invalid password", raw)) == 2
