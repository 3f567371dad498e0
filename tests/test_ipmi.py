"""IPMI serial-over-LAN and power through OpenIPMI's ipmi_sim, with the real ipmitool and pyghmi (issue 7).

One ipmi_sim per module (``tests/peers/ipmi_peers.py``), configured per run on free ports, cipher
suite 3 only, two BMC users (``admin`` for the console, ``operator`` for power) and a GUID of ours.
Its ``startcmd`` starts the real lab guest (``consolebot.lab.guest``) under QEMU: power on starts
QEMU, power off and reset go to QEMU over the VM link, SOL is ipmi_sim's telnet connection to the
guest's serial console (``wait=on``: the guest boots once ipmi_sim is connected).

1. The transport contract over ``ipmitool`` SOL and pyghmi SOL: the whole boot from ``Linux
   version`` to the login prompt, a login (and a ``~.`` typed at the start of a line that must not
   end the session), BREAK + ``b`` answered by ``sysrq: Resetting`` and a new boot, a quiet read.
2. Both power backends: status, off, on, reset, cycle, each proven (status reads; for reset and cycle
   the boot captured on a SOL console held across), and ``diag`` refused by ipmi_sim 2.0.33 as "NMI
   not supported by this BMC" (exit 6).
3. A second SOL client already active: exit 5; ``steal`` takes over and the transcript says so.
4. SOL deactivated from outside during ``capture``: detected, reconnected, the capture goes on, the
   gap is marked.
5. No password on any ipmitool command line (a recorder named ``ipmitool`` first on PATH), and none
   in any output file.
6. The BMC identity read (system GUID) matches the generated configuration.

Timings are printed (a table at the end of the run), never asserted beyond a loose smoke bound.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from consolebot.errors import ConfigError, ConsoleBusy, TargetError
from consolebot.lab.guest import GuestConfig, GuestConsole, LabBuilder, LabKit
from consolebot.power.base import PowerBackend, normalise_guid
from consolebot.power.ipmi_common import BmcTarget, PyghmiLoop, guid_matches
from consolebot.power.ipmitool_power import IpmitoolPower
from consolebot.power.pyghmi_power import PyghmiPower
from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Ability, Transport
from consolebot.transport.ipmitool_sol import IpmitoolSolTransport
from consolebot.transport.pyghmi_sol import PyghmiSolTransport
from tests.conftest import LAB_PASSWORD, assert_no_secret
from tests.peers.ipmi_peers import BmcUser, IpmiSim, argv_recorder, ipmi_sim_peer, qemu_target, recorded_calls

pytestmark = pytest.mark.lab

HOST = "deleuze-lab"
ADMIN = BmcUser("admin", "Sol-adm1n-Pw!", "admin")  # the console's BMC user
OPERATOR = BmcUser("operator", "Pwr-0perat-Pw!", "operator")  # the power user
GUID = "5ca1ab1e0c0ffee0d15ea5e0123abcde"  # as the BMC sends it (wire order)
SECRETS = (ADMIN.password, OPERATOR.password, LAB_PASSWORD)
TRANSPORTS = ("ipmitool", "pyghmi")
BOOT_TIMEOUT_S = 90.0  # a power-on takes about 12 s (ipmi_sim's 10 s SOL reconnect); this catches a hang
PROMPT_POKES = 45  # "\r" once a second: ipmi_sim loses the first burst of every other SOL session
SMOKE_BOUND_S = 120.0
LIVENESS_S = 1.0  # the tests' liveness interval (the default is 5 s)
TIMINGS: list[tuple[str, float]] = []


def record_timing(what: str, seconds: float) -> None:
    TIMINGS.append((what, seconds))
    print(f"ipmi timing: {what}: {seconds:.2f} s")


@pytest.fixture(scope="module", autouse=True)
def timing_table(request: pytest.FixtureRequest) -> None:
    """At the end of the run, the timings as a table (written through the terminal reporter)."""

    def show() -> None:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not TIMINGS:
            return
        reporter.section("IPMI lab timings (ipmi_sim + QEMU TCG, this machine)")
        width = max(len(w) for w, _ in TIMINGS)
        for what, seconds in TIMINGS:
            reporter.write_line(f"{what:<{width}}  {seconds:6.2f} s")

    request.config.add_cleanup(show)


# -- the peer -----------------------------------------------------------------------------------------------
@dataclass
class Lab:
    sim: IpmiSim
    out: Path  # every output of consolebot (transcripts): scanned for secrets at the end
    calls_log: Path  # the argv recorder's log
    kit: LabKit
    password: Secret

    def target(self, user: BmcUser = ADMIN) -> BmcTarget:
        return BmcTarget(self.sim.host, user.name, Secret(user.password, f"bmc/{user.name}"), self.sim.port)

    def transport(self, kind: str, steal: bool = False, liveness_interval_s: float = LIVENESS_S) -> Transport:
        if kind == "ipmitool":
            return IpmitoolSolTransport(self.target(), steal=steal, liveness_interval_s=liveness_interval_s)
        return PyghmiSolTransport(self.target(), steal=steal, liveness_interval_s=liveness_interval_s)

    def power(self, kind: str) -> PowerBackend:
        target = self.target(OPERATOR)
        return IpmitoolPower(target) if kind == "ipmitool" else PyghmiPower(target)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("ipmi")
    password = Secret(LAB_PASSWORD, "lab-guest/root")
    kit = LabBuilder(log=lambda text: print(f"lab-build: {text}")).ensure(password=password)
    calls = base / "ipmitool-calls.jsonl"
    bin_dir = argv_recorder(base / "bin", calls)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old_path}"
    bmc_dir = base / "bmc"  # ipmi_sim's configuration holds the BMC passwords: never scanned
    bmc_dir.mkdir()
    config = GuestConfig(hostname=HOST, salvage_s=2.0)
    try:
        with ipmi_sim_peer(bmc_dir, qemu_target(bmc_dir, kit, config), [ADMIN, OPERATOR], GUID) as sim:
            yield Lab(sim, base / "out", calls, kit, password)
    finally:
        os.environ["PATH"] = old_path


@contextlib.contextmanager
def attached(lab: Lab, kind: str, name: str, steal: bool = False,
             liveness_interval_s: float = LIVENESS_S) -> Iterator[tuple[GuestConsole, float]]:
    """Open a SOL transport of ``kind``; a session with a transcript; yield (console, seconds to open).

    The transport's notes (cipher fallback, steal) go into the transcript, as consolebot's commands do.
    """
    transport = lab.transport(kind, steal, liveness_interval_s)
    t0 = time.monotonic()
    transport.open()
    opened_s = time.monotonic() - t0
    red = Redactor()
    session = Session(transport, Transcript(lab.out / name, "console", red), red)
    for note in take_notes(transport):
        session.note(note, what="transport.note")
    try:
        yield GuestConsole(session, HOST, lab.password), opened_s
    finally:
        session.close()


def take_notes(transport: Transport) -> list[str]:
    take: Callable[[], list[str]] = getattr(transport, "take_notes", list)
    return take()


def to_login_prompt(con: GuestConsole, tries: int = PROMPT_POKES) -> None:
    """Poke until a prompt shows (ipmi_sim loses the first burst of every other session); log out of a shell."""
    r = con.session.poke([con.login_prompt, con.shell_prompt], tries=tries, interval_s=1.0)
    if r.index == 1:
        con.logout()


def banner(kit: LabKit) -> re.Pattern[bytes]:
    return re.compile(rb"\[ +0\.000000\] " + re.escape(kit.kernel.banner.encode()) + rb" \(")


def await_boot(con: GuestConsole, kit: LabKit, t0: float) -> tuple[float, float]:
    """Read a whole boot on the console: its first kernel line, then the login prompt; return both times."""
    con.session.expect([banner(kit)], BOOT_TIMEOUT_S)
    t_banner = time.monotonic() - t0
    con.wait_login_prompt(BOOT_TIMEOUT_S)
    return t_banner, time.monotonic() - t0


# == 1. the transport contract over both SOL transports =========================================================
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_contract_whole_boot_to_login_prompt_is_read(lab: Lab, kind: str) -> None:
    with attached(lab, kind, f"contract-boot-{kind}") as (con, _):
        s = con.session
        to_login_prompt(con)
        t0 = time.monotonic()
        assert lab.sim.ipmitool(OPERATOR.name, "chassis", "power", "reset").returncode == 0  # the test's own move
        s.expect([banner(lab.kit)], BOOT_TIMEOUT_S)
        s.expect([b"Run /init as init process"], BOOT_TIMEOUT_S)
        s.expect([b"INIT: Entering runlevel: 2"], 30)
        s.expect([b"Starting OpenAFS BOS server: bosserver.\r\n"], 30)
        r = s.expect([con.login_prompt], 30)
        assert b"Debian GNU/Linux 12 deleuze-lab /dev/ttyS0" in r.before
        boot_s = time.monotonic() - t0
    record_timing(f"{kind} SOL: power reset -> whole boot -> login prompt", boot_s)
    assert boot_s < SMOKE_BOUND_S
    # faithful: from the kernel's first line to the login prompt, the transcript holds exactly what the
    # guest sent on its serial port (QEMU's chardev log)
    raw = (lab.out / f"contract-boot-{kind}" / "console.raw").read_bytes()
    start = raw.rfind(b"[    0.000000] Linux version ")
    end = raw.rfind(b"deleuze-lab login: ")
    assert 0 <= start < end
    assert lab.sim.target.serial_log is not None
    assert raw[start:end] in lab.sim.target.serial_log.read_bytes()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_contract_login_and_command(lab: Lab, kind: str) -> None:
    t0 = time.monotonic()
    with attached(lab, kind, f"contract-login-{kind}") as (con, opened_s):
        s = con.session
        to_login_prompt(con)
        record_timing(f"{kind} SOL: activate -> prompt (open {opened_s:.2f} s)", time.monotonic() - t0)
        r = con.login()
        assert r.text() == "root@deleuze-lab:~# "
        # the guest may still be printing its boot's kernel messages (AFS at ~6 s): they would land inside the
        # command output compared below, so the console's log level is lowered first (as `Shell` does)
        con.run("dmesg -n 1")
        s.sendline("echo contract-ok")
        r = s.expect([re.compile(rb"\ncontract-ok\r\n")], 10)
        assert b"echo contract-ok" in r.before
        s.expect([con.shell_prompt], 10)
        # "~." typed at the start of a line is data for the guest, never the client's escape
        s.sendline("~.")
        s.expect([b"~.: not found"], 10)
        s.expect([con.shell_prompt], 10)
        assert con.run("echo '~.still~~here'") == "~.still~~here"
        s.sendline("exit")
        con.wait_login_prompt(10)
    assert_no_secret(LAB_PASSWORD, folder=lab.out / f"contract-login-{kind}")


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_contract_break_then_sysrq_b_reboots(lab: Lab, kind: str) -> None:
    with attached(lab, kind, f"contract-break-{kind}") as (con, _):
        s = con.session
        to_login_prompt(con)
        assert Ability.BREAK in s.transport.abilities
        t0 = time.monotonic()
        s.send_break()
        s.send("b")
        s.expect([b"sysrq: Resetting"], 10)
        t_ack = time.monotonic() - t0
        t_banner, t_login = await_boot(con, lab.kit, t0)
    record_timing(f"{kind} SOL: BREAK+b -> 'sysrq: Resetting'", t_ack)
    record_timing(f"{kind} SOL: BREAK+b -> login prompt", t_login)
    assert t_login < SMOKE_BOUND_S
    raw = (lab.out / f"contract-break-{kind}" / "console.raw").read_bytes()
    assert b"[send break]" not in raw  # ipmitool's answer to ~B is not console data
    assert sol_owner(lab) == 0  # closed mid-line (after "b"): the payload was deactivated all the same


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_contract_idle_read_times_out_quietly_and_close_is_idempotent(lab: Lab, kind: str) -> None:
    with attached(lab, kind, f"contract-idle-{kind}") as (con, _):
        to_login_prompt(con)
        assert con.session.settle(3.0, 30)  # after a crash boot, the salvager reports "back up" a little later
        transport = con.session.transport
        assert transport.read(1024, 0.2) == b""
        transport.close()
        transport.close()
        assert transport.closed
    assert sol_owner(lab) == 0  # closing (at a line start: "~.") deactivated the payload


def sol_owner(lab: Lab) -> int:
    """Which session holds the SOL payload now (0: none), read with the real ipmitool."""
    r = lab.sim.ipmitool(ADMIN.name, "raw", "0x06", "0x4b", "0x01", "0x01")
    assert r.returncode == 0, r.stderr
    return int.from_bytes(bytes(int(x, 16) for x in r.stdout.split()[:4]), "little")


# == 2. power backends =================================================================================================
@pytest.mark.parametrize(("power_kind", "console_kind"), [("pyghmi", "ipmitool"), ("ipmitool", "pyghmi")])
def test_power_backend(lab: Lab, power_kind: str, console_kind: str) -> None:
    power = lab.power(power_kind)
    label = f"{power_kind} power, {console_kind} SOL"
    try:
        with attached(lab, console_kind, f"power-{power_kind}", liveness_interval_s=5.0) as (con, _):
            to_login_prompt(con)
            r = power.act("status")
            assert (r.state, r.evidence, r.proven) == ("on", "status", True)
            assert power.status() == "on"
            # reset: the status stays "on"; the proof is the next boot on the console held across it
            t0 = time.monotonic()
            r = power.act("reset")
            assert (r.state, r.evidence, r.proven) == ("on", "console-boot", False)
            _, t_login = await_boot(con, lab.kit, t0)
            record_timing(f"{label}: power reset -> login prompt", t_login)
            # off: proven by the status, and the guest's QEMU is gone
            r = power.act("off")
            assert (r.state, r.evidence, r.proven) == ("off", "status", True)
            lab.sim.wait_target(False, 10)
            # on: proven by the status; the guest boots on the same console
            t0 = time.monotonic()
            r = power.act("on")
            assert (r.state, r.evidence, r.proven) == ("on", "status", True)
            _, t_login = await_boot(con, lab.kit, t0)
            record_timing(f"{label}: power on -> login prompt", t_login)
            # cycle (at the login prompt: see the report's pitfalls): a new QEMU, and a new boot on the console
            pids = lab.sim.target_pids()
            t0 = time.monotonic()
            r = power.act("cycle")
            assert (r.evidence, r.proven) == ("console-boot", False)
            _, t_login = await_boot(con, lab.kit, t0)
            record_timing(f"{label}: power cycle -> login prompt", t_login)
            assert lab.sim.target_pids() and lab.sim.target_pids() != pids
            # diag: ipmi_sim 2.0.33 refuses the NMI
            with pytest.raises(TargetError) as refused:
                power.act("diag")
            assert "NMI not supported by this BMC" in str(refused.value)
            assert refused.value.exit_code == 6
            assert power.status() == "on"
    finally:
        power.close()


# == 3. a second SOL client ==================================================================================================
@contextlib.contextmanager
def other_client(lab: Lab) -> Iterator[pexpect.spawn]:
    """Another SOL client (the real ipmitool, as a person would run it) holding the console."""
    argv = lab.sim.ipmitool_argv(ADMIN.name, "sol", "activate")
    child = pexpect.spawn(argv[0], argv[1:], env=lab.sim.ipmitool_env(ADMIN.name), timeout=20)
    try:
        child.expect(rb"\[SOL Session operational")
        yield child
    finally:
        # SIGKILL: a polite "~." would make ipmitool deactivate the payload, whoever holds it now
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_second_client_busy_then_steal(lab: Lab, kind: str) -> None:
    with other_client(lab):
        with pytest.raises(ConsoleBusy) as busy:
            lab.transport(kind).open()
        assert busy.value.exit_code == 5
        assert "steal" in str(busy.value)
        with attached(lab, kind, f"steal-{kind}", steal=True) as (con, _):
            to_login_prompt(con)
    jsonl = (lab.out / f"steal-{kind}" / "console.jsonl").read_text()
    log = (lab.out / f"steal-{kind}" / "console.log").read_text()
    assert "--steal:" in jsonl and "took the console over" in log


# == 4. SOL deactivated from outside during capture ============================================================================
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_capture_detects_foreign_deactivation_and_reconnects(lab: Lab, kind: str) -> None:
    folder = lab.out / f"capture-{kind}"
    received: list[bytes] = []
    console = CapturedConsole(kind, lambda: lab.transport(kind), Transcript(folder, "capture", Redactor()),
                              on_data=[received.append])
    loop = CaptureLoop([console])
    loop.start(wait=False)
    runner = threading.Thread(target=loop.run, args=(120.0,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: console.state == "connected" and console.connects == 1, 20, "the first connection")
        t0 = time.monotonic()
        assert lab.sim.ipmitool(ADMIN.name, "sol", "deactivate").returncode == 0
        wait_until(lambda: console.gaps >= 1, 20, "the gap")
        record_timing(f"{kind} SOL: foreign deactivate -> detected", time.monotonic() - t0)
        wait_until(lambda: console.connects >= 2 and console.state == "connected", 30, "the reconnection")
        record_timing(f"{kind} SOL: foreign deactivate -> reconnected", time.monotonic() - t0)
        # the capture goes on: the next boot arrives through the new session
        n = len(received)
        assert lab.sim.ipmitool(OPERATOR.name, "chassis", "power", "reset").returncode == 0
        wait_until(lambda: b"deleuze-lab login: " in b"".join(received[n:]), BOOT_TIMEOUT_S, "the next boot")
    finally:
        loop.stop()
        runner.join(30)
        loop.close()
    log = (folder / "capture.log").read_text()
    assert "gap: connection lost" in log and "deactivated by another client" in log
    assert "gap ended: reconnected" in log
    assert re.search(r"gap ended: reconnected to .* after [0-9.]+ s", log)
    assert "Linux version" in log.split("gap ended")[-1]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


# == 6. BMC identity ===============================================================================================================
@pytest.mark.parametrize("kind", ("pyghmi", "ipmitool"))
def test_bmc_identity_guid_matches_the_configuration(lab: Lab, kind: str) -> None:
    power = lab.power(kind)
    try:
        got = power.guid()
    finally:
        power.close()
    assert got == normalise_guid(GUID)
    assert guid_matches(got, GUID)
    swapped = GUID[6:8] + GUID[4:6] + GUID[2:4] + GUID[0:2] + GUID[10:12] + GUID[8:10] + GUID[14:16] + GUID[12:14]
    assert guid_matches(got, swapped + GUID[16:])  # the same GUID as dmidecode and newer ipmitool print it
    assert not guid_matches(got, "0" * 32)


def test_cipher_fallback_is_said(lab: Lab) -> None:
    """ipmi_sim has no cipher suite 17: each client says it fell back to 3 (once per process and client)."""
    from consolebot.power import ipmi_common

    ipmi_common._WORKING_SUITE.clear()
    ipmi_common._FALLBACK_NOTED.clear()
    for kind in TRANSPORTS:
        transport = lab.transport(kind)
        transport.open()
        try:
            notes = take_notes(transport)
        finally:
            transport.close()
        assert any("refused IPMI cipher suite 17" in n and "cipher suite 3" in n for n in notes), notes


# == 5. no password on any ipmitool command line, none in any output ===================================================================
def test_no_password_on_any_ipmitool_argv_nor_in_outputs(lab: Lab) -> None:
    calls = recorded_calls(lab.calls_log)
    kinds = {" ".join(c[c.index("-E") + 1 :][:2]) for c in calls if "-E" in c}
    for expected in ("sol activate", "sol deactivate", "raw 0x06", "chassis power"):
        assert expected in kinds, f"no recorded ipmitool call {expected!r}: {sorted(kinds)}"
    assert len(calls) >= 20
    for argv in calls:
        assert "-E" in argv, argv
        for option in ("-P", "-f", "-k", "-K", "-y", "-Y"):
            assert option not in argv, argv
        joined = "\0".join(argv)
        for secret in SECRETS:
            assert secret not in joined, "a password on an ipmitool command line"
    for secret in SECRETS:
        assert_no_secret(secret, folder=lab.out)


# == without the BMC: argv, escaping, filtering, descriptions ===========================================================
def test_argv_escape_and_break_answer_without_a_bmc() -> None:
    target = BmcTarget("bmc.example.org", "admin", Secret(ADMIN.password, "bmc/admin"), 6230, cipher_suite=17)
    t = IpmitoolSolTransport(target)
    assert t.argv == ["ipmitool", "-I", "lanplus", "-C", "17", "-H", "bmc.example.org", "-p", "6230", "-U", "admin",
                      "-E", "sol", "activate"]
    for text in (repr(t), t.describe(), repr(target), str(t.env_secrets)):
        assert ADMIN.password not in text
    # "~" where ipmitool looks for its escape (start of session, after CR or LF) is doubled
    assert t._encode(b"~.\r~~x\n~B a~.") == b"~~.\r~~~x\n~~B a~."
    # ipmitool's answer to ~B is removed, even split across reads; console bytes around it are kept
    t._acks = 1
    assert t._filter(b"abc~B [send", False) + t._filter(b" break]\r\nlogin: ", False) == b"abclogin: "
    assert t._filter(b"~B [send break]\r\n", False) == b"~B [send break]\r\n"  # none expected: console data
    power = IpmitoolPower(target)
    assert power.tool.argv("chassis", "power", "status")[-4:] == ["-E", "chassis", "power", "status"]
    assert "-L" in power.tool.argv() and ADMIN.password not in " ".join(power.tool.argv())
    # pyghmi shares one session between a Command and a Console of the same BMC user: refused up front
    loop = PyghmiLoop()
    loop.claim(target, "console")
    with pytest.raises(ConfigError, match="its own BMC user"):
        loop.claim(target, "command")
    loop.unclaim(target, "console")
    loop.claim(target, "command")
