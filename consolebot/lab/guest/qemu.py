"""Run the lab guest under QEMU (TCG) with its serial console on a telnet port.

* ``-accel tcg``: KVM fails on these machines (no vmx/svm: "emulation failure"). TCG boots the
  guest in about 2-3 s.
* The serial console is ``-chardev socket,...,telnet=on`` on a free loopback port chosen per run,
  ``wait=on`` by default: QEMU starts the guest only when the first client connects, so that client
  reads the whole boot from ``Linux version``. The chardev's ``logfile`` keeps every byte the guest
  sent, connected or not (a faithful reference for transcripts).
* ``-qmp`` on another free loopback port gives the power button: ``system_reset`` is a power reset.
* The state disk is a small raw image on an NVMe controller (built into the cloud kernel): the boot
  counter and the unclean-shutdown flag survive resets and power cycles.
* ``-nodefaults -display none -monitor none``; QEMU runs in its own session and is killed by the
  kernel if this process dies (``PR_SET_PDEATHSIG``). ``stop()`` ends its children first, then QEMU
  itself by PID, and reaps it: no zombie is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from consolebot.errors import ConsoleBotError
from consolebot.lab.guest.builder import LabKit
from consolebot.transport.telnet import TelnetTransport

LOOPBACK = "127.0.0.1"
STATE_DISK_BYTES = 1 << 20
WAITING_MARK = "QEMU waiting for connection on"
_TOKEN = re.compile(r"^[A-Za-z0-9._-]+$")


class LabStartError(ConsoleBotError):
    """QEMU did not start, or did not answer on its ports."""


@dataclass(frozen=True)
class GuestConfig:
    """How the guest behaves. Everything but memory and waiting goes to the kernel command line as
    ``lab.KEY=VALUE`` options, which the guest's /init reads."""

    hostname: str = "deleuze-lab"
    sysrq: int | None = 1  # written to kernel.sysrq at boot; None leaves Debian's default, 438
    quiet: bool = False  # the kernel's 'quiet': no 'Linux version' on the console
    hang_boots: int = 0  # boots 1..N reach their services, then stop answering on the console
    salvage_s: float = 8.0  # after an unclean shutdown, how long the AFS salvage takes
    salvage_wait: bool = False  # the fileserver script waits for the salvager (the runbook's fix)
    pg_fail_starts: int = 2  # after a crash, how many PostgreSQL starts fail (the boot's included)
    courier_stubborn_stops: int = 1  # how many stops courier-authdaemon survives per boot
    memory_mib: int = 256
    wait_for_client: bool = True  # QEMU's wait=on: boot when the first client connects
    # no Spectre/Meltdown mitigations: page-table switches on every system call are slow under TCG
    kernel_extra: tuple[str, ...] = ("mitigations=off",)
    qemu_extra: tuple[str, ...] = ()  # more QEMU arguments (devices, debugging)

    def kernel_cmdline(self) -> str:
        if not _TOKEN.match(self.hostname):
            raise ValueError(f"hostname {self.hostname!r}: letters, digits, '.', '_' and '-' only")
        opts = {
            "host": self.hostname,
            "sysrq": "default" if self.sysrq is None else str(int(self.sysrq)),
            "hang": str(int(self.hang_boots)),
            "salvage_s": f"{float(self.salvage_s):g}",
            "salvage_wait": "1" if self.salvage_wait else "0",
            "pg_fail": str(int(self.pg_fail_starts)),
            "courier_stubborn": str(int(self.courier_stubborn_stops)),
        }
        words = ["console=ttyS0,115200", "printk.devkmsg=on"]
        if self.quiet:
            words.append("quiet")
        words += list(self.kernel_extra)
        words += [f"lab.{k}={v}" for k, v in opts.items()]
        return " ".join(words)


@dataclass(frozen=True)
class DiskState:
    """What the guest's state disk says: boots so far, and whether the last one ended cleanly."""

    boots: int
    clean: bool


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` now (QEMU binds it a moment later; ``start`` retries on a clash)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def read_disk_state(path: Path) -> DiskState:
    """Given the raw state disk image, return its boot counter and clean flag (as the guest wrote them)."""
    try:
        with open(path, "rb") as f:
            sector = f.read(512)
    except FileNotFoundError:
        return DiskState(0, True)
    words = sector.split(b"\n", 1)[0].replace(b"\0", b"").decode("ascii", "replace").split()
    if not words or words[0] != "CBLAB1":
        return DiskState(0, True)
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    return DiskState(int(fields.get("boots", "0")), fields.get("clean", "1") == "1")


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: the child of fork only calls it


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL when the parent dies."""
    _PRCTL(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def descendants(pid: int) -> list[int]:
    """Given a PID, return its descendants' PIDs, deepest first (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    order: list[int] = []

    def visit(p: int) -> None:
        for c in children.get(p, []):
            visit(c)
            order.append(c)

    visit(pid)
    return order


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """End ``proc``: its descendants first (TERM, then KILL), then itself by PID; reap what is ours."""
    kids = descendants(proc.pid)
    for pid in kids:
        _signal(pid, signal.SIGTERM)
    end = time.monotonic() + timeout_s / 2
    for pid in kids:
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.02)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


def qmp(host: str, port: int, command: str, timeout_s: float = 10.0, **arguments: Any) -> Any:
    """Run one QMP command on QEMU's QMP port; return its ``return`` value."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        stream = sock.makefile("rwb")

        def reply() -> dict[str, Any]:
            while True:
                line = stream.readline()
                if not line:
                    raise LabStartError(f"QMP {host}:{port}: connection closed during {command}")
                msg: dict[str, Any] = json.loads(line)
                if "event" not in msg:
                    return msg

        def call(name: str, args: dict[str, Any]) -> Any:
            request: dict[str, Any] = {"execute": name}
            if args:
                request["arguments"] = args
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            msg = reply()
            if "error" in msg:
                raise LabStartError(f"QMP {name}: {msg['error'].get('desc', msg['error'])}")
            return msg.get("return")

        greeting = reply()
        if "QMP" not in greeting:
            raise LabStartError(f"QMP {host}:{port}: unexpected greeting {greeting!r}")
        call("qmp_capabilities", {})
        return call(command, arguments)


class QemuGuest:
    """Given a kit and a configuration, run one guest: start, stop, reset, power-cycle, connect."""

    def __init__(self, kit: LabKit, config: GuestConfig | None = None, run_dir: Path | None = None,
                 name: str = "guest", host: str = LOOPBACK) -> None:
        self.kit = kit
        self.config = config or GuestConfig()
        self.name = name
        self.host = host
        self._own_dir = run_dir is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="consolebot-lab-")) if run_dir is None else run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state_disk = self.run_dir / f"{name}-state.img"
        self.serial_log = self.run_dir / f"{name}-serial.log"
        self.stderr_log = self.run_dir / f"{name}-qemu.err"
        self.port = 0
        self.qmp_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # monotonic time QEMU was started
        self._stderr_lines: list[str] = []
        self._listening = threading.Event()
        self._exited = threading.Event()
        self._reader: threading.Thread | None = None

    # -- the command -----------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        def esc(path: Path) -> str:  # commas in QEMU option values are doubled
            return str(path).replace(",", ",,")

        wait = "on" if self.config.wait_for_client else "off"
        return [
            self.kit.qemu,
            "-name", f"consolebot-lab-{self.name}",
            "-accel", "tcg",
            "-m", str(self.config.memory_mib),
            "-smp", "1",
            "-nodefaults", "-no-user-config",
            "-display", "none",
            "-monitor", "none",
            "-kernel", str(self.kit.kernel.boot_image),
            "-initrd", str(self.kit.initramfs),
            "-append", self.config.kernel_cmdline(),
            "-qmp", f"tcp:{self.host}:{self.qmp_port},server=on,wait=off",
            "-chardev",
            f"socket,id=console0,host={self.host},port={self.port},server=on,wait={wait},telnet=on,"
            f"logfile={esc(self.serial_log)},logappend=on",
            "-serial", "chardev:console0",
            "-drive", f"file={esc(self.state_disk)},if=none,id=state0,format=raw",
            "-device", "nvme,serial=cblabstate,drive=state0",
            *self.config.qemu_extra,
        ]

    # -- life cycle ------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start QEMU; return once its console port listens (raise ``LabStartError`` otherwise)."""
        if self.running:
            return
        if not self.state_disk.exists():
            with open(self.state_disk, "wb") as f:
                f.truncate(STATE_DISK_BYTES)
        keep_port = self.port
        last = ""
        for _attempt in range(4):
            self.port = keep_port or free_port(self.host)
            self.qmp_port = free_port(self.host)
            while self.qmp_port == self.port:
                self.qmp_port = free_port(self.host)
            self._spawn()
            try:
                self._wait_listening(timeout_s)
                return
            except LabStartError as exc:
                last = str(exc)
                self.stop()
                if "in use" not in last:
                    raise
                keep_port = 0  # someone took a port between our probe and QEMU's bind: pick others
        raise LabStartError(f"QEMU could not bind its ports: {last}")

    def _spawn(self) -> None:
        self._stderr_lines = []
        self._listening.clear()
        self._exited.clear()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True,
                                        name=f"qemu-{self.name}-stderr")
        self._reader.start()

    def _read_stderr(self, pipe: IO[bytes]) -> None:
        with open(self.stderr_log, "ab") as log:
            for raw in iter(pipe.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                self._stderr_lines.append(line)
                if WAITING_MARK in line:
                    self._listening.set()
        pipe.close()
        self._exited.set()

    def _wait_listening(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        if self.config.wait_for_client:
            # wait=on: QEMU says it waits for the client once the port listens
            while not self._listening.wait(min(0.2, max(0.0, end - time.monotonic()))):
                if self._exited.is_set() or time.monotonic() >= end:
                    break
        else:
            # wait=off: the chardevs exist once QMP answers
            while time.monotonic() < end and not self._exited.is_set():
                try:
                    qmp(self.host, self.qmp_port, "query-status", timeout_s=max(0.5, end - time.monotonic()))
                except (ConnectionRefusedError, LabStartError, OSError):
                    self._exited.wait(0.05)
                    continue
                self._listening.set()
                break
        if self._listening.is_set() and self.running:
            return
        tail = " / ".join(self._stderr_lines[-4:]) or "no message"
        if self.running:
            raise LabStartError(f"QEMU ({self.name}) did not listen on {self.host}:{self.port} within "
                                f"{timeout_s:g} s: {tail}")
        raise LabStartError(f"QEMU ({self.name}) exited with {self.proc.returncode if self.proc else '?'}: {tail}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop QEMU (its children first, then it by PID) and reap it. Idempotent."""
        if self.proc is not None:
            stop_process(self.proc, timeout_s)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        if self._reader is not None:
            self._reader.join(timeout_s)
            self._reader = None

    def close(self) -> None:
        """Stop, and remove the run folder if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> QemuGuest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- power -----------------------------------------------------------------------------------------------
    def power_reset(self, timeout_s: float = 10.0) -> None:
        """Press reset (QMP ``system_reset``): the guest reboots at once, without shutting down."""
        qmp(self.host, self.qmp_port, "system_reset", timeout_s=timeout_s)

    def power_cycle(self, timeout_s: float = 30.0) -> None:
        """Pull the plug and power on again: a new QEMU on the same console port and state disk."""
        self.stop()
        self.start(timeout_s)

    # -- console and state --------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"telnet://{self.host}:{self.port}"

    def transport(self, connect_timeout_s: float = 10.0) -> TelnetTransport:
        """An unopened telnet transport to the guest's serial console."""
        return TelnetTransport(self.host, self.port, connect_timeout_s=connect_timeout_s)

    def serial_output(self) -> bytes:
        """Every byte the guest sent on its serial console so far (QEMU's chardev log)."""
        try:
            return self.serial_log.read_bytes()
        except FileNotFoundError:
            return b""

    def disk_state(self) -> DiskState:
        return read_disk_state(self.state_disk)

    def rss_kib(self) -> int | None:
        """QEMU's resident memory, for reports."""
        if not self.running:
            return None
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def __repr__(self) -> str:
        return f"<QemuGuest {self.name} pid={self.pid} {self.address}>"
