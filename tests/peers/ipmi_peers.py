"""A real BMC for the IPMI tests: OpenIPMI's ``ipmi_sim``, configured per run, starting the target itself.

``ipmi_sim`` serves IPMI 2.0 over UDP (RMCP+, cipher suite 3 only: it has no SHA-256 suites),
chassis power and serial-over-LAN. Its ``startcmd`` is the target: "power on" starts it, "power
off" asks it over the VM link and then kills it. Two targets:

* :func:`qemu_target`: the real lab guest (``consolebot.lab.guest``) under QEMU, its serial console a
  telnet chardev with ``wait=on`` (the guest waits until ipmi_sim's SOL side connects, so no boot
  output is lost) and an ``ipmi-bmc-extern`` device on the VM link (reset and graceful power off).
* :func:`simulator_target`: consolebot's own simulator (``consolebot lab serve``): fast, telnet only.

Everything is generated in a folder of its own (the configuration holds the BMC passwords, so it
must never be inside a folder a test scans for leaked secrets): ``lan.conf``, ``lab.emu``, the
target's start script, ipmi_sim's state folder and log. Ports are free ones picked per run.

:meth:`IpmiSim.stop` ends ipmi_sim's children first and waits until ipmi_sim has reaped them, then
ends ipmi_sim and reaps it: killed the other way round, the target is left as a zombie that this
sandbox's init never reaps.

The module also writes :func:`argv_recorder`, a program named ``ipmitool`` that records its argv
as JSON lines and then runs the real one (the tests put its folder first on ``PATH``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import LAB_PASSWORD
from tests.peers.process_peers import descendants

LOOPBACK = "127.0.0.1"
REAL_IPMITOOL = shutil.which("ipmitool") or "/usr/bin/ipmitool"
EMU = """\
# a minimal BMC: one MC at 0x20 (ipmi_sim -f)
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""
SETPRIV = shutil.which("setpriv")  # util-linux: sets the target's parent-death signal
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: the forked child only calls it
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+-]+$")
_UNQUOTABLE = re.compile(r'["\\\s]')


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this process dies (PR_SET_PDEATHSIG)."""
    _PRCTL(1, int(signal.SIGTERM), 0, 0, 0)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def exists(pid: int) -> bool:
    """True while ``pid`` exists at all (a zombie included)."""
    return os.path.exists(f"/proc/{pid}")


def udp_bound(port: int) -> bool:
    """True once some socket is bound to UDP ``port`` on this machine (``/proc/net/udp``)."""
    needle = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            if any(needle in line.split(" rem_address")[0] for line in f.readlines()[1:]):
                return True
    return False


def tcp_established(port: int) -> bool:
    """True while a TCP connection to local ``port`` is established (``/proc/net/tcp``)."""
    with contextlib.suppress(OSError), open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "01" and parts[2].endswith(f":{port:04X}"):
                return True
    return False


# -- targets ---------------------------------------------------------------------------------------------
@dataclass
class Target:
    """What ipmi_sim runs on power on (``argv``, exec'ed by a start script), the telnet port its serial
    console listens on, and the VM-link port it connects to (None: no VM link)."""

    argv: list[str]
    serial_port: int
    vm_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    serial_log: Path | None = None  # every byte the target sent on its console, where known
    name: str = "target"


def simulator_target(folder: Path) -> Target:
    """consolebot's simulator on a free telnet port, booting at once (``--no-wait``)."""
    port = free_tcp_port()
    argv = [sys.executable, "-m", "consolebot", "lab", "serve", "--port", str(port), "--no-wait",
            "--line-delay-ms", "1", "--login-fail-delay-s", "0.2"]
    return Target(argv, port, None, {"CONSOLEBOT_LAB_PASSWORD": LAB_PASSWORD}, name="simulator")


def qemu_target(folder: Path, kit: object, config: object | None = None, name: str = "guest") -> Target:
    """The lab guest under QEMU, its console a telnet chardev (``wait=on``) and its BMC the VM link."""
    from consolebot.lab.guest import GuestConfig, LabKit, QemuGuest
    from consolebot.lab.guest.qemu import STATE_DISK_BYTES

    assert isinstance(kit, LabKit)
    cfg = config if isinstance(config, GuestConfig) else GuestConfig()
    guest = QemuGuest(kit, cfg, run_dir=folder, name=name)
    guest.port = free_tcp_port()
    guest.qmp_port = free_tcp_port()
    vm_port = free_tcp_port()
    if not guest.state_disk.exists():
        with open(guest.state_disk, "wb") as f:
            f.truncate(STATE_DISK_BYTES)
    argv = guest.argv() + [
        "-chardev", f"socket,id=ipmi0,host={LOOPBACK},port={vm_port},reconnect=1",
        "-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
        "-device", "isa-ipmi-kcs,bmc=bmc0",
    ]
    return Target(argv, guest.port, vm_port, serial_log=guest.serial_log, name=name)


# -- the BMC -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BmcUser:
    name: str
    password: str
    privilege: str  # user, operator, admin


@dataclass
class IpmiSim:
    """A running ipmi_sim and what it was configured with."""

    proc: subprocess.Popen[bytes]
    port: int
    guid: str  # the 32 hex digits of the configuration's ``guid`` (wire order)
    users: dict[str, BmcUser]
    folder: Path
    target: Target
    host: str = LOOPBACK

    # -- processes -------------------------------------------------------------
    def target_pids(self) -> list[int]:
        """The live target processes (ipmi_sim's children that are not zombies)."""
        return [p for p in descendants(self.proc.pid) if alive(p)]

    def wait_target(self, running: bool, timeout_s: float = 30.0) -> float:
        """Wait until the target runs (or is gone); return how long that took."""
        t0 = time.monotonic()
        end = t0 + timeout_s
        while bool(self.target_pids()) != running:
            if time.monotonic() > end:
                state = "start" if running else "stop"
                raise TimeoutError(f"ipmi_sim's target did not {state} within {timeout_s:g} s")
            time.sleep(0.02)
        return time.monotonic() - t0

    def wait_sol_link(self, timeout_s: float = 30.0) -> float:
        """Wait until ipmi_sim's SOL side is connected to the target's serial console."""
        t0 = time.monotonic()
        while not tcp_established(self.target.serial_port):
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"ipmi_sim did not connect SOL to the target within {timeout_s:g} s")
            time.sleep(0.05)
        return time.monotonic() - t0

    # -- the real ipmitool, for the test's own moves (never through the argv recorder) ------------------
    def ipmitool_argv(self, user: str, *args: str) -> list[str]:
        return [REAL_IPMITOOL, "-I", "lanplus", "-C", "3", "-H", self.host, "-p", str(self.port),
                "-U", user, "-E", *args]

    def ipmitool_env(self, user: str) -> dict[str, str]:
        env = dict(os.environ)
        env["IPMI_PASSWORD"] = self.users[user].password
        return env

    def ipmitool(self, user: str, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.ipmitool_argv(user, *args), env=self.ipmitool_env(user), capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Children first (ipmi_sim reaps them), then ipmi_sim itself (reaped here). No zombie is left."""
        if self.proc.poll() is None:
            kids = self.target_pids()
            for pid in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + timeout_s / 2
            while any(exists(p) for p in kids) and time.monotonic() < end:
                time.sleep(0.02)
            for pid in kids:
                if alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + timeout_s / 2
            while any(exists(p) for p in kids) and time.monotonic() < end:  # ipmi_sim reaps its children
                time.sleep(0.02)
            self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


def lan_conf(port: int, guid: str, users: list[BmcUser], target: Target, start_script: Path,
             name: str, poweroff_wait_s: int = 5, kill_wait_s: int = 5) -> str:
    """An ipmi_lan(5) configuration: one LAN channel on ``port``, the users, the target and its SOL."""
    lines = [
        f'name "{name}"',
        "set_working_mc 0x20",
        "  startlan 1",
        f"    addr {LOOPBACK} {port}",
        "    priv_limit admin",
        "    allowed_auths_callback none md2 md5 straight",
        "    allowed_auths_user none md2 md5 straight",
        "    allowed_auths_operator none md2 md5 straight",
        "    allowed_auths_admin none md2 md5 straight",
        f"    guid {guid}",
        "  endlan",
    ]
    if target.vm_port is not None:
        lines.append(f"  serial 15 {LOOPBACK} {target.vm_port} codec VM")
    lines += [
        f'  startcmd "{start_script}"',
        "  startnow true",
        f"  poweroff_wait {poweroff_wait_s}",
        f"  kill_wait {kill_wait_s}",
        f'  sol "telnet:{LOOPBACK}:{target.serial_port}" 115200',
        '  user 1 false ""        "unused"   user  10 none md2 md5 straight',
    ]
    for number, user in enumerate(users, start=2):
        lines.append(f'  user {number} true "{user.name}" "{user.password}" {user.privilege} 10 none md2 md5 straight')
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def ipmi_sim_peer(folder: Path, target: Target, users: list[BmcUser], guid: str,
                  ready_timeout_s: float = 15.0) -> Iterator[IpmiSim]:
    """Start ipmi_sim (which starts ``target`` at once) with a configuration generated in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if not _SAFE_PATH.match(str(folder)):
        raise ValueError(f"{folder}: ipmi_sim's startcmd takes no quotes, spaces or backslashes")
    for user in users:
        if _UNQUOTABLE.search(user.name + user.password) or not user.name:
            raise ValueError(f"BMC user {user.name!r}: names and passwords take no quotes, spaces or backslashes")
    start = folder / f"start-{target.name}.sh"
    # the target dies with ipmi_sim, as ipmi_sim dies with this process (no orphan if a test run is killed)
    die_with_bmc = [SETPRIV, "--pdeathsig", "KILL"] if SETPRIV else []
    start.write_text("#!/bin/sh\nexec " + shlex.join([*die_with_bmc, *target.argv]) + "\n")
    start.chmod(0o755)
    port = free_udp_port()
    conf = folder / "lan.conf"
    conf.write_text(lan_conf(port, guid, users, target, start, name=f"cb{port}"))
    emu = folder / "lab.emu"
    emu.write_text(EMU)
    state = folder / "state"
    state.mkdir(exist_ok=True)
    log = open(folder / "ipmi_sim.log", "ab")
    env = dict(os.environ)
    env.update(target.env)
    proc = subprocess.Popen(["ipmi_sim", "-c", str(conf), "-f", str(emu), "-s", str(state), "-n"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, preexec_fn=_die_with_parent)
    log.close()
    sim = IpmiSim(proc, port, guid, {u.name: u for u in users}, folder, target)
    try:
        end = time.monotonic() + ready_timeout_s
        while not udp_bound(port):
            if proc.poll() is not None:
                raise RuntimeError(f"ipmi_sim exited with {proc.returncode}: "
                                   f"{(folder / 'ipmi_sim.log').read_text(errors='replace')[-1000:]}")
            if time.monotonic() > end:
                raise RuntimeError(f"ipmi_sim did not bind UDP port {port} within {ready_timeout_s:g} s")
            time.sleep(0.02)
        yield sim
    finally:
        sim.stop()


# -- an ipmitool that records its argv ----------------------------------------------------------------------
RECORDER = '''\
#!{python}
"""ipmitool argv recorder (consolebot tests): log argv as one JSON line, then run the real ipmitool."""
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv) + "\\n")
os.execv({real!r}, [{real!r}] + sys.argv[1:])
'''


def argv_recorder(folder: Path, log: Path) -> Path:
    """Write a program named ``ipmitool`` into ``folder`` that records its argv in ``log``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ipmitool"
    path.write_text(RECORDER.format(python=sys.executable, log=str(log), real=REAL_IPMITOOL))
    path.chmod(0o755)
    return folder


def recorded_calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
