"""The reboot ladder through IPMI: a hung real guest behind OpenIPMI's ipmi_sim, via consolebot's CLI.

sysrq 1: rung 2 (SysRq over SOL) reboots it, proven, over both SOL transports. sysrq 0: rung 2 is
"not delivered"; without --allow-power the run stops (exit 6) claiming nothing; with it, rung 4 (an
IPMI power reset) reboots it, proven. Identity comes from the BMC's GUID (a hung console shows no name).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consolebot.lab.guest import GuestConfig, LabBuilder
from consolebot.secrets.secret import Secret
from tests.conftest import LAB_PASSWORD, assert_no_secret, cb_env, consolebot_cmd
from tests.lab.conftest import record_timing
from tests.peers.ipmi_peers import BmcUser, ipmi_sim_peer, qemu_target

HOST = "deleuze-lab"
ADMIN = BmcUser("admin", "Sol-adm1n-Pw!", "admin")
OPERATOR = BmcUser("operator", "Pwr-0perat-Pw!", "operator")
GUID = "0ddba11d0c0ffee0d15ea5e0123abcde"


@pytest.fixture
def hung_site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], Path]]:
    sysrq, sol, power = request.param
    kit = LabBuilder(log=lambda text: None).ensure(password=Secret(LAB_PASSWORD, "lab/root"))
    bmc_dir = tmp_path / "bmc"
    target = qemu_target(bmc_dir, kit, GuestConfig(hostname=HOST, sysrq=sysrq, hang_boots=1, salvage_s=2.0))
    with ipmi_sim_peer(bmc_dir, target, [ADMIN, OPERATOR], GUID) as sim:
        inv = tmp_path / "inv"
        inv.mkdir()
        (inv / "lab-ipmi.toml").write_text(
            f'console_hostnames = ["{HOST}"]\n[console]\ntransport = "{sol}-sol"\n'
            f'[bmc]\naddress = "{sim.host}"\nport = {sim.port}\ncipher_suite = 17\ncipher_fallback = 3\n'
            'sol_user = "admin"\nsol_secret = "keyring:lab-bmc/admin"\npower_user = "operator"\n'
            f'power_secret = "keyring:lab-bmc/operator"\npower_backend = "{power}"\nguid = "{GUID}"\n'
            '[login]\nusers = ["root"]\n')
        env = cb_env(tmp_path, inv)
        for user, pw in (("admin", ADMIN.password), ("operator", OPERATOR.password)):
            subprocess.run(consolebot_cmd("passwords", "add", "lab-bmc", user), input=pw + "\n", text=True, env=env,
                           check=True, capture_output=True, timeout=60)
        # the hung boot must have reached its services (until then the kernel's default mask applies)
        end = time.monotonic() + 120
        while b"Starting periodic command scheduler" not in (target.serial_log.read_bytes()
                                                             if target.serial_log and target.serial_log.exists() else b""):
            assert time.monotonic() < end, "the hung guest did not reach its services"
            time.sleep(0.2)  # QEMU's own log file: no event to await across processes
        yield env, tmp_path


def reboot(env: dict[str, str], *extra: str) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(consolebot_cmd("reboot", "--json", "lab-ipmi", "--yes", "--reboot-timeout-s", "90", *extra),
                          capture_output=True, text=True, env=env, timeout=400, stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr


@pytest.mark.parametrize("hung_site", [(1, "ipmitool", "pyghmi"), (None, "pyghmi", "ipmitool")], indirect=True,
                         ids=["ipmitool-sol-sysrq-1", "pyghmi-sol-sysrq-438"])
def test_sysrq_reboots_the_hung_guest_at_rung_2(hung_site: tuple[dict[str, str], Path]) -> None:
    env, tmp = hung_site
    t0 = time.monotonic()
    code, res, err = reboot(env)
    record_timing("IPMI ladder: SysRq over SOL to reboot evidence", time.monotonic() - t0)
    assert code == 0, err
    assert res["outcome"] == "rebooted"
    assert [(r["name"], r["outcome"]) for r in res["rungs"]] == [("nudge", "hung"), ("sysrq", "rebooted")]  # type: ignore[index]
    assert res["identity"]["method"] == "guid"  # type: ignore[index]
    assert_no_secret(ADMIN.password, err, folder=tmp / "state")
    assert_no_secret(OPERATOR.password, err, folder=tmp / "state")


@pytest.mark.parametrize("hung_site", [(0, "ipmitool", "pyghmi"), (0, "pyghmi", "ipmitool")], indirect=True,
                         ids=["ipmitool-sol", "pyghmi-sol"])
def test_sysrq_off_not_delivered_then_power_reset(hung_site: tuple[dict[str, str], Path]) -> None:
    env, tmp = hung_site
    code, res, err = reboot(env)
    assert code == 6, err
    assert res["outcome"] == "not-rebooted"
    rungs = {r["name"]: r["outcome"] for r in res["rungs"]}  # type: ignore[union-attr]
    assert rungs["sysrq"] == "not-delivered" and rungs.get("power-reset") == "skipped"
    t0 = time.monotonic()
    code, res, err = reboot(env, "--allow-power")
    record_timing("IPMI ladder: SysRq not delivered, power reset to reboot evidence", time.monotonic() - t0)
    assert code == 0, err
    assert [(r["name"], r["outcome"]) for r in res["rungs"]][-1] == ("power-reset", "rebooted")  # type: ignore[index]
    assert_no_secret(ADMIN.password, err, folder=tmp / "state")
    assert_no_secret(OPERATOR.password, err, folder=tmp / "state")
