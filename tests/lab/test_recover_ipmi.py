"""consolebot recover end to end against the real guest behind ipmi_sim, over IPMI SOL: hung, SysRq
reboot, crash boot with a salvage, services stopped and started, Postgres restarts, domtool. Prints
consolebot's own overhead: the total time minus the guest's boot and salvage time (transcript times)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from consolebot.inventory.load import shipped_folder
from consolebot.lab.guest import GuestConfig, LabBuilder
from consolebot.secrets.secret import Secret
from tests.conftest import LAB_PASSWORD, assert_no_secret, cb_env, consolebot_cmd
from tests.lab.conftest import record_timing
from tests.peers.ipmi_peers import BmcUser, ipmi_sim_peer, qemu_target

HOST = "deleuze-lab"
ADMIN = BmcUser("admin", "Sol-adm1n-Pw!", "admin")
OPERATOR = BmcUser("operator", "Pwr-0perat-Pw!", "operator")
GUID = "0ddba11d0c0ffee0d15ea5e0123abcd1"
WRONG = "wrong-candidate-7"
SALVAGE_S = 15.0


def services_toml() -> str:
    text = (shipped_folder() / "deleuze.toml").read_text()
    return text[text.index("[[service]]"):]


def test_recover_over_ipmi_sol(tmp_path: Path) -> None:
    kit = LabBuilder(log=lambda text: None).ensure(password=Secret(LAB_PASSWORD, "lab/root"))
    bmc_dir = tmp_path / "bmc"
    config = GuestConfig(hostname=HOST, sysrq=1, hang_boots=1, salvage_s=SALVAGE_S, pg_fail_starts=2,
                         courier_stubborn_stops=1)
    target = qemu_target(bmc_dir, kit, config)
    with ipmi_sim_peer(bmc_dir, target, [ADMIN, OPERATOR], GUID) as sim:
        inv = tmp_path / "inv"
        inv.mkdir()
        (inv / "lab-ipmi.toml").write_text(
            f'console_hostnames = ["{HOST}"]\n[console]\ntransport = "ipmitool-sol"\n'
            f'[bmc]\naddress = "{sim.host}"\nport = {sim.port}\ncipher_suite = 17\ncipher_fallback = 3\n'
            'sol_user = "admin"\nsol_secret = "keyring:lab-bmc/admin"\npower_user = "operator"\n'
            f'power_secret = "keyring:lab-bmc/operator"\npower_backend = "pyghmi"\nguid = "{GUID}"\n'
            '[login]\nusers = ["root"]\n\n' + services_toml())
        env = cb_env(tmp_path, inv)
        for entry, pw in (("lab-bmc admin", ADMIN.password), ("lab-bmc operator", OPERATOR.password),
                          ("lab-ipmi root", WRONG), ("lab-ipmi root", LAB_PASSWORD)):
            subprocess.run(consolebot_cmd("passwords", "add", *entry.split()), input=pw + "\n", text=True, env=env,
                           check=True, capture_output=True, timeout=60)
        end = time.monotonic() + 120
        while b"Starting periodic command scheduler" not in (
                target.serial_log.read_bytes() if target.serial_log and target.serial_log.exists() else b""):
            assert time.monotonic() < end, "the hung guest did not reach its services"
            time.sleep(0.2)  # QEMU's own log file: no event to await across processes
        t0 = time.monotonic()
        proc = subprocess.run(consolebot_cmd("recover", "--json", "lab-ipmi", "--yes", "--salvage-poll-s", "2",
                                             "--boot-timeout-s", "120"),
                              capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
        total_s = time.monotonic() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in res["steps"]}
    assert all(s["outcome"] == "ok" for k, s in steps.items() if k not in ("prepare", "others")), \
        {k: v["outcome"] for k, v in steps.items()}
    assert steps["prepare"]["outcome"] == steps["others"]["outcome"] == "skipped"  # a host with no 'others'
    assert res["logged_out"] is True and res["login"]["candidate"] == 2
    evidence = " ".join(" ".join(s["evidence"]) for s in res["steps"])
    assert "rung 2 sysrq: rebooted" in evidence and "salvage done" in evidence
    assert "/etc/init.d/postgresql restart" in evidence
    # the guest's own time (boot after the SysRq reset, and the salvage) from the transcript's times
    records = [json.loads(x) for x in (tmp_path / "state" / "transcripts" / "lab-ipmi.jsonl").read_text().splitlines()]
    reset = next(r for r in records if r.get("kind") == "sysrq.ack" and "Resetting" in r["fields"].get("action", ""))
    prompt = next(r for r in records if r.get("kind") == "login.prompt" and r["t"] > reset["t"])

    def seconds(a: str, b: str) -> float:
        from datetime import datetime

        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        return (datetime.strptime(b, fmt) - datetime.strptime(a, fmt)).total_seconds()

    boot_s = seconds(reset["t"], prompt["t"])
    salvage_s = steps["salvage"]["elapsed_s"]
    record_timing("recover over ipmitool SOL: total", total_s)
    record_timing("recover: the guest's boot (SysRq reset to login prompt)", boot_s)
    record_timing("recover: the salvage wait", salvage_s)
    record_timing("recover: consolebot's own overhead (total - boot - salvage)", total_s - boot_s - salvage_s)
    for secret in (ADMIN.password, OPERATOR.password, LAB_PASSWORD, WRONG):
        assert_no_secret(secret, proc.stdout, proc.stderr, folder=tmp_path / "state")
