"""consolebot's power backend for the simulated BMC: every act, each with its console evidence, and the GUID."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from consolebot.errors import TargetError, TransportError, UsageError
from consolebot.inventory.load import load_host_file, shipped_folder
from consolebot.power.base import PowerBackend
from consolebot.power.lab_bmc import LabBmc
from consolebot.wiring import power_backend
from tests.lab_sim_helpers import LabSim, login, run

H = "deleuze-sim"


def test_status_off_on_reset_cycle_diag_with_console_evidence(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--salvage-seconds", "30") as sim:
        s = sim.console()
        login(s, H)
        bmc = sim.bmc()
        assert isinstance(bmc, PowerBackend) and bmc.describe().startswith("lab BMC at 127.0.0.1:")
        st = bmc.act("status")
        assert (st.state, st.evidence, st.proven) == ("on", "status", True)

        # diag: an NMI; the kernel's unknown_nmi_error lines (6.1: without the power-saving line)
        r = bmc.act("diag")
        assert (r.state, r.evidence, r.proven) == ("on", "console-nmi", False)
        s.expect([b"] Uhhuh. NMI received for unknown reason 3d on CPU 0.\r\n"], 5)
        s.expect([b"] Dazed and confused, but trying to continue\r\n"], 5)

        # off: the console goes silent, the status proves it
        r = bmc.act("off")
        assert (r.state, r.evidence, r.proven) == ("off", "status", True)
        s.sendline("")
        assert s.settle(0.3, 3)
        with pytest.raises(TargetError, match="reset refused: chassis power is off"):
            bmc.act("reset")
        with pytest.raises(TargetError, match="cycle refused"):
            bmc.act("cycle")

        # on: a fresh boot, and a hard power-off leaves the fileserver to salvage
        r = bmc.act("on")
        assert (r.state, r.proven) == ("on", True)
        s.expect([b"] Linux version "], 10)
        login(s, H)
        assert "salvaging file system" in run(s, H, "bos status localhost -localauth")

        # reset: no kernel message, the next bytes are the firmware's
        r = bmc.act("reset")
        assert (r.state, r.evidence, r.proven) == ("on", "console-boot", False)
        s.expect([b"Initializing firmware interfaces..."], 5)
        s.expect([f"{H} login: ".encode()], 10)

        # cycle: off, then on again after a pause
        r = bmc.act("cycle")
        assert r.evidence == "console-boot"
        s.expect([b"Initializing firmware interfaces..."], 5)
        s.expect([f"{H} login: ".encode()], 10)

        guid = bmc.guid()
        bmc.close()
        acts = sim.acts()
    inv = load_host_file(shipped_folder() / "lab-deleuze.toml")
    assert inv.bmc is not None and guid == inv.bmc.guid == "1ab0de1e000040008000000000007101"
    assert [a["cmd"] for a in acts if a["act"] == "bmc" and a["cmd"] != "status"] == [
        "diag", "off", "reset", "cycle", "on", "reset", "cycle", "guid"]
    assert [a["count"] for a in acts if a["act"] == "boot"] == [1, 2, 3, 4]


def test_each_host_has_its_own_guid_and_the_inventory_wires_the_lab_backend(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--site") as sim:
        guids = {h: sim.bmc(h).guid() for h in ("deleuze", "mire", "outpost")}
        info = sim.bmc("mire").request("info")
    assert len(set(guids.values())) == 3
    for host, guid in guids.items():
        entry = load_host_file(shipped_folder() / f"lab-{host}.toml")
        assert entry.bmc is not None and entry.bmc.power_backend == "lab" and entry.bmc.guid == guid
        backend = power_backend(entry)
        assert isinstance(backend, LabBmc) and backend.port == entry.bmc.port == entry.bmc.port
    assert info["console_hostname"] == "mire-sim" and info["power"] == "on"


def test_a_bmc_that_is_not_there_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bmc = LabBmc("127.0.0.1", port, timeout_s=1.0)
    with pytest.raises(TransportError, match="cannot connect"):
        bmc.status()
    with pytest.raises(UsageError, match="loopback"):
        LabBmc("192.0.2.10", 7103)


def test_soft_off_is_an_orderly_halt(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        reply = sim.bmc().request("soft")
        assert reply["acpi"] is True
        s.expect([b"INIT: Switching to runlevel: 0\r\n"], 5)
        s.expect([b"Will now halt.\r\n"], 5)
        s.expect([b"reboot: Power down\r\n"], 5)
        assert sim.bmc().status() == "off"
