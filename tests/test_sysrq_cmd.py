"""consolebot sysrq / reboot against the simulator: outcomes asserted from the simulator's own act log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Sim, cb_env, consolebot_cmd, start_sim, stop_proc, write_host


def site(tmp: Path, *sim_args: str, hostnames: str = '["deleuze-sim"]') -> tuple[Sim, dict[str, str]]:
    sim = start_sim(tmp, *sim_args)
    inv = tmp / "inv"
    path = write_host(inv, "lab-deleuze", f"telnet://127.0.0.1:{sim.ports['telnet']}")
    path.write_text(path.read_text().replace('["deleuze-sim"]', hostnames))
    return sim, cb_env(tmp, inv)


def run(env: dict[str, str], *args: str) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(consolebot_cmd(*args, "--json"), capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def sysrq_acts(sim: Sim) -> list[str]:
    return [str(a.get("key")) for a in sim.acts() if a["act"] == "sysrq"]


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_sysrq_s_u_b_acknowledged_and_reboots(tmp: Path) -> None:
    sim, env = site(tmp, "--sysrq-mask", "1")
    try:
        code, res, err = run(env, "sysrq", "lab-deleuze", "s", "u", "b", "--yes")
    finally:
        stop_proc(sim.proc)
    assert code == 0, err
    assert [k["outcome"] for k in res["keys"]] == ["ack", "ack", "ack"]  # type: ignore[index]
    assert res["identity"].startswith("the console shows hostname 'deleuze-sim'")  # type: ignore[union-attr]
    assert sysrq_acts(sim) == ["s", "u", "b"]
    assert [a["count"] for a in sim.acts() if a["act"] == "boot"][-1] == 2  # the simulator really rebooted


def test_mask_16_refuses_u_and_b_is_never_sent(tmp: Path) -> None:
    sim, env = site(tmp, "--sysrq-mask", "16")
    try:
        code, res, err = run(env, "sysrq", "lab-deleuze", "sub", "--yes")
    finally:
        stop_proc(sim.proc)
    assert code == 6
    assert [k["outcome"] for k in res["keys"]] == ["ack", "disabled"]  # type: ignore[index]
    assert sysrq_acts(sim) == ["s", "u"]
    assert "disabled" in err


def test_sysrq_off_is_not_delivered_and_the_line_is_cleared(tmp: Path) -> None:
    sim, env = site(tmp, "--sysrq-mask", "0")
    try:
        code, res, err = run(env, "sysrq", "lab-deleuze", "s", "u", "b", "--yes", "--ack-timeout-s", "1")
    finally:
        stop_proc(sim.proc)
    assert code == 6 and res["ok"] is False
    assert [k["outcome"] for k in res["keys"]] == ["not-delivered"]  # type: ignore[index]
    assert len([a for a in sim.acts() if a["act"] == "break"]) == 1  # no further key after the first
    assert "not delivered" in err


def test_identity_mismatch_refuses_and_sends_nothing(tmp: Path) -> None:
    sim, env = site(tmp, hostnames='["deleuze"]')
    try:
        code, res, err = run(env, "sysrq", "lab-deleuze", "b", "--yes")
    finally:
        stop_proc(sim.proc)
    assert code == 8
    assert "deleuze-sim" in err and "nothing was sent" in err
    assert not [a for a in sim.acts() if a["act"] in ("break", "sysrq")]


def test_no_yes_and_no_terminal_refuses(tmp: Path) -> None:
    sim, env = site(tmp)
    try:
        code, res, err = run(env, "sysrq", "lab-deleuze", "b")
    finally:
        stop_proc(sim.proc)
    assert code == 8 and "--yes" in err
    assert not [a for a in sim.acts() if a["act"] == "connect"]  # refused before attaching


def test_reboot_leaves_a_live_host_alone(tmp: Path) -> None:
    sim, env = site(tmp)
    try:
        code, res, err = run(env, "reboot", "lab-deleuze", "--yes")
    finally:
        stop_proc(sim.proc)
    assert code == 0, err
    assert res["outcome"] == "alive" and [r["name"] for r in res["rungs"]] == ["nudge"]  # type: ignore[index]
    assert not [a for a in sim.acts() if a["act"] in ("break", "sysrq")]


def lab_site(tmp: Path, *flags: str) -> tuple[object, dict[str, str]]:
    from consolebot.cli.demo import start_simulator
    from consolebot.inventory.load import shipped_folder

    proc, served = start_simulator(tmp, ["--line-delay-ms", "1", *flags], {})
    d = served["hosts"]["deleuze"]
    text = (shipped_folder() / "lab-deleuze.toml").read_text()
    text = text.replace("telnet://127.0.0.1:7101", f"telnet://127.0.0.1:{d['telnet']}").replace(
        "port = 7103", f"port = {d['bmc']}")
    inv = tmp / "inv"
    inv.mkdir(exist_ok=True)
    (inv / "lab-deleuze.toml").write_text(text)
    return proc, cb_env(tmp, inv)


def bmc_acts(tmp: Path) -> list[str]:
    path = tmp / "sim-act.jsonl"
    acts = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [str(a.get("cmd")) for a in acts if a["act"] == "bmc" and a.get("cmd") not in ("status", "guid", "info")]


def test_max_rung_1_only_nudges(tmp: Path) -> None:
    proc, env = lab_site(tmp, "--scenario", "hung")
    try:
        code, res, err = run(env, "reboot", "lab-deleuze", "--yes", "--max-rung", "1")
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(10)  # type: ignore[attr-defined]
    assert code == 6 and [r["name"] for r in res["rungs"]] == ["nudge"]  # type: ignore[index]
    assert not [json.loads(x) for x in (tmp / "sim-act.jsonl").read_text().splitlines()
                if json.loads(x)["act"] in ("break", "sysrq")]


def test_power_diag_proven_by_the_nmi_line_and_reset_by_a_boot(tmp: Path) -> None:
    proc, env = lab_site(tmp, "--scenario", "clean")
    try:
        code, res, err = run(env, "power", "lab-deleuze", "diag", "--yes", "--evidence-timeout-s", "20")
        assert code == 0, err
        assert res["evidence"] == "kernel.nmi"
        code, res, err = run(env, "power", "lab-deleuze", "reset", "--yes", "--evidence-timeout-s", "30")
        assert code == 0, err
        assert res["evidence"] in ("boot.start", "boot.firmware", "boot.loader", "init.start", "login.prompt")
        code, res, err = run(env, "power", "lab-deleuze", "status")
        assert code == 0 and res["state"] == "on"
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(10)  # type: ignore[attr-defined]
    assert bmc_acts(tmp) == ["diag", "reset"]


def test_quiet_kernel_reboot_proven_without_a_banner(tmp: Path) -> None:
    proc, env = lab_site(tmp, "--scenario", "hung", "--quiet")
    try:
        code, res, err = run(env, "reboot", "lab-deleuze", "--yes", "--reboot-timeout-s", "30")
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(10)  # type: ignore[attr-defined]
    assert code == 0, err
    r2 = res["rungs"][1]  # type: ignore[index]
    assert r2["outcome"] == "rebooted" and r2["evidence"] != "boot.start"
