"""What the IPMI console transports and power backends share: the BMC target, ipmitool runs, messages.

* :class:`BmcTarget`: host, port, interface, cipher suites and one BMC user with its password (a
  :class:`~consolebot.secrets.secret.Secret`, never printed). :func:`bmc_target` builds one from the
  inventory's ``[bmc]`` for the console (``sol_user``) or for power (``power_user``).
* :class:`Ipmitool`: runs ``ipmitool`` with the password in its environment only (``-E`` reads
  ``IPMI_PASSWORD``); argv never holds a secret. It falls back from the configured cipher suite
  (17 by default) to the inventory's fallback (3) once, when the BMC refuses the suite itself
  (never after a refused password: a second failed login may count towards a BMC's lockout), and
  says so in :attr:`Ipmitool.notes`.
* The system GUID: the 16 bytes of Get System GUID (NetFn App, 0x37) as the BMC sends them, in
  lower-case hex (:func:`guid_hex`). Tools print it in different byte orders (ipmitool 1.8.19's
  ``mc guid`` as sent, newer ones and dmidecode with the first three fields byte-swapped), so
  :func:`guid_matches` accepts an inventory GUID written either way.
* :class:`PyghmiLoop`: the one thread of this process that talks to pyghmi (see there).
* :class:`ChassisPower`: the power acts on top of three primitives (status, control, GUID) that the
  pyghmi and ipmitool backends implement.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from consolebot.errors import ConfigError, TargetError, TransportError, UsageError
from consolebot.inventory.model import BmcSpec
from consolebot.power.base import ACTS, EVIDENCE, PowerBackend, PowerResult, normalise_guid
from consolebot.secrets.secret import Secret

PASSWORD_ENV = "IPMI_PASSWORD"
GET_SYSTEM_GUID = ("0x06", "0x37")
GET_PAYLOAD_INSTANCE_INFO_SOL = ("0x06", "0x4b", "0x01", "0x01")  # payload type SOL, instance 1

# The BMC refuses the cipher suite itself (not the user or the password).
CIPHER_REFUSED = re.compile(
    r"invalid (?:authentication|integrity|confidentiality) algorithm|cipher suite"
    r"|no matching cipher|unsupported (?:authentication|integrity|confidentiality)",
    re.IGNORECASE,
)
# Completion codes with which a BMC refuses Chassis Control "pulse diagnostic interrupt".
NMI_REFUSED = re.compile(
    r"invalid data field|invalid command|not supported|parameter out of range|illegal|cannot execute",
    re.IGNORECASE,
)
_HOSTNAME = re.compile(r"^[A-Za-z0-9._:%\[\]-]+$")
# (host, port, configured suite) -> the suite that worked: the fallback is tried and noted once per process
_WORKING_SUITE: dict[tuple[str, int, int], int] = {}
_FALLBACK_NOTED: set[tuple[str, int, str]] = set()


def fallback_noted_once(host: str, port: int, who: str) -> bool:
    """True the first time ``who`` reports a fallback to another cipher suite for this BMC in this process."""
    key = (host, port, who)
    if key in _FALLBACK_NOTED:
        return False
    _FALLBACK_NOTED.add(key)
    return True


@dataclass(frozen=True)
class BmcTarget:
    """One BMC user on one BMC. ``repr`` and ``describe`` never show the password."""

    host: str
    user: str
    password: Secret = field(repr=False)
    port: int = 623
    interface: str = "lanplus"
    cipher_suite: int = 17
    cipher_fallback: int | None = 3

    def __post_init__(self) -> None:
        if not self.host or self.host.startswith("-") or not _HOSTNAME.match(self.host):
            raise ConfigError(f"BMC address {self.host!r} is not a host name or address")
        if not self.user or self.user.startswith("-") or any(not c.isprintable() for c in self.user):
            raise ConfigError(f"BMC user {self.user!r} is empty, starts with '-' or has control characters")
        if not 0 < int(self.port) < 65536:
            raise ConfigError(f"BMC port {self.port} is not a port number")
        if self.interface not in ("lanplus", "lan"):
            raise ConfigError(f"BMC interface {self.interface!r}: use lanplus (IPMI 2.0) or lan (IPMI 1.5)")

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def bmc_target(bmc: BmcSpec, role: str, resolve: Callable[[str], Secret], where: str = "bmc") -> BmcTarget:
    """Given the inventory's ``[bmc]``, ``role`` ("sol" or "power") and a keyring resolver, return the target.

    Raise ``ConfigError`` when the user or its keyring reference is missing (``SecretUnavailable``
    from ``resolve`` passes through).
    """
    if role == "sol":
        user, ref, names = bmc.sol_user, bmc.sol_secret, ("sol_user", "sol_secret")
    elif role == "power":
        user, ref, names = bmc.power_user, bmc.power_secret, ("power_user", "power_secret")
    else:
        raise ValueError(f"role {role!r}")
    if not user or not ref:
        raise ConfigError(f"{where}: {names[0]} and {names[1]} (a keyring:HOST/USER reference) are needed for "
                          f"IPMI {'serial-over-LAN' if role == 'sol' else 'power control'}")
    return BmcTarget(bmc.address, user, resolve(ref), bmc.port, bmc.interface, bmc.cipher_suite,
                     bmc.cipher_fallback)


def guid_hex(raw: bytes | Sequence[int]) -> str:
    """The 16 GUID bytes as sent by the BMC, as 32 lower-case hex digits."""
    data = bytes(raw)
    if len(data) != 16:
        raise TargetError(f"the BMC sent a system GUID of {len(data)} bytes, not 16")
    return data.hex()


def guid_swapped(hex32: str) -> str:
    """The other byte order: the first three fields (4, 2 and 2 bytes) reversed (SMBIOS/RFC 4122 text)."""
    b = bytes.fromhex(hex32)
    return (b[3::-1] + b[5:3:-1] + b[7:5:-1] + b[8:]).hex()


def guid_matches(reported: str, expected: str) -> bool:
    """True when ``expected`` (from the inventory, any punctuation) is ``reported`` in either byte order."""
    want = normalise_guid(expected)
    got = normalise_guid(reported)
    return len(want) == 32 and len(got) == 32 and want in (got, guid_swapped(got))


def parse_raw_hex(text: str) -> bytes:
    """``ipmitool raw`` output (hex bytes separated by blanks, maybe over lines) to bytes."""
    words = text.split()
    try:
        return bytes(int(w, 16) for w in words)
    except ValueError:
        raise TargetError(f"unexpected ipmitool raw output: {' '.join(words)[:120]!r}") from None


def owner_session(data: bytes) -> int:
    """Get Payload Instance Info's answer: the session ID that holds the payload (0: nobody)."""
    if len(data) < 4:
        raise TargetError(f"Get Payload Instance Info answered {len(data)} bytes, not at least 4")
    return int.from_bytes(data[:4], "little")


def one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- ipmitool ------------------------------------------------------------------------------------------------
@dataclass
class IpmitoolResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return (self.stdout + "\n" + self.stderr).strip()

    def last_error(self) -> str:
        """ipmitool's most telling line."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith(("Error", "Set Chassis", "Unable", "Info:")) or "failed" in ln:
                return ln
        return lines[-1] if lines else (self.stdout.strip().splitlines() or [f"exit status {self.returncode}"])[-1]


class Ipmitool:
    """Given a target, run ``ipmitool -I IF [-C SUITE] -H HOST -p PORT -U USER -E ...`` (password via env).

    ``suite`` is the cipher suite in use: the configured one until the BMC refuses it, then the
    fallback (recorded in ``notes``). ``program`` is looked up on ``PATH`` (tests put a recorder first).
    """

    def __init__(self, target: BmcTarget, program: str = "ipmitool", privilege: str | None = None,
                 timeout_s: float = 30.0, who: str = "ipmitool") -> None:
        if privilege is not None and privilege not in ("CALLBACK", "USER", "OPERATOR", "ADMINISTRATOR"):
            raise ValueError(f"privilege {privilege!r}")
        self.target = target
        self.program = program
        self.privilege = privilege
        self.timeout_s = timeout_s
        self.who = who
        self.suite: int = target.cipher_suite
        self.notes: list[str] = []
        known = _WORKING_SUITE.get(self._key())
        if known is not None and known != self.suite:  # refused earlier in this process: do not ask again
            self._note(f"refused IPMI cipher suite {self.suite} earlier in this run", known)
            self.suite = known

    def _key(self) -> tuple[str, int, int]:
        return (self.target.host, self.target.port, self.target.cipher_suite)

    def argv(self, *args: str, suite: int | None = None) -> list[str]:
        t = self.target
        argv = [self.program, "-I", t.interface]
        if t.interface == "lanplus":
            argv += ["-C", str(self.suite if suite is None else suite)]
        argv += ["-H", t.host, "-p", str(t.port), "-U", t.user]
        if self.privilege is not None:
            argv += ["-L", self.privilege]
        return [*argv, "-E", *args]

    def env(self) -> dict[str, str]:
        """This process's environment plus the password (for a child only)."""
        env = dict(os.environ)
        env[PASSWORD_ENV] = self.target.password.reveal()
        return env

    def cipher_refused(self, text: str) -> bool:
        """True when ``text`` (ipmitool's messages) says the BMC refused the suite, and a fallback is left."""
        t = self.target
        return (t.interface == "lanplus" and t.cipher_fallback is not None and self.suite != t.cipher_fallback
                and bool(CIPHER_REFUSED.search(text)))

    def fall_back(self, text: str) -> None:
        """Switch to the fallback suite and say so (``notes``)."""
        fallback = self.target.cipher_fallback
        assert fallback is not None
        line = next((ln.strip() for ln in text.splitlines() if CIPHER_REFUSED.search(ln)), one_line(text))
        self._note(f"refused IPMI cipher suite {self.suite} ({one_line(line, 120)})", fallback)
        self.suite = fallback
        _WORKING_SUITE[self._key()] = fallback

    def _note(self, what: str, suite: int) -> None:
        if fallback_noted_once(self.target.host, self.target.port, self.who):
            self.notes.append(f"BMC {self.target.host}:{self.target.port} {what}; {self.who} uses cipher suite {suite}")

    def run(self, *args: str, timeout_s: float | None = None) -> IpmitoolResult:
        """Run one ipmitool command; fall back to the other cipher suite once if the BMC refuses this one.

        Raise ``TransportError`` if ipmitool cannot be started or does not end in time.
        """
        result = self._run_once(args, timeout_s)
        if result.returncode != 0 and self.cipher_refused(result.text):
            self.fall_back(result.text)
            result = self._run_once(args, timeout_s)
        return result

    def _run_once(self, args: Sequence[str], timeout_s: float | None) -> IpmitoolResult:
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            p = subprocess.run(self.argv(*args), env=self.env(), capture_output=True, text=True, errors="replace",
                               stdin=subprocess.DEVNULL, timeout=limit, check=False)
        except FileNotFoundError:
            raise TransportError(f"{self.program!r} is not installed (Debian package ipmitool)") from None
        except subprocess.TimeoutExpired:
            raise TransportError(f"ipmitool {' '.join(args)} on {self.target.describe()}: no answer within "
                                 f"{limit:g} s") from None
        return IpmitoolResult(p.returncode, p.stdout, p.stderr)

    def check(self, *args: str, timeout_s: float | None = None) -> IpmitoolResult:
        """Run; raise ``TransportError`` naming ipmitool's message if it fails."""
        r = self.run(*args, timeout_s=timeout_s)
        if r.returncode != 0:
            raise TransportError(f"ipmitool {' '.join(args)} on {self.target.describe()}: {r.last_error()}")
        return r

    def raw(self, *args: str, timeout_s: float | None = None) -> bytes:
        """``ipmitool raw``: the answer's data bytes.

        Raise ``TargetError`` when the BMC answered with an error completion code (``rsp=0x..``),
        ``TransportError`` when it did not answer.
        """
        r = self.run("raw", *args, timeout_s=timeout_s)
        if r.returncode != 0:
            what = f"ipmitool raw {' '.join(args)} on {self.target.describe()}: {r.last_error()}"
            if "rsp=0x" in r.text:
                raise TargetError(what)
            raise TransportError(what)
        return parse_raw_hex(r.stdout)

    def sol_owner(self, timeout_s: float | None = None) -> int:
        """The session ID that holds SOL instance 1 now (0: none), from an independent session."""
        return owner_session(self.raw(*GET_PAYLOAD_INSTANCE_INFO_SOL, timeout_s=timeout_s))


# -- pyghmi: one thread for every session of this process ---------------------------------------------------
T = TypeVar("T")


class PyghmiLoop:
    """The one thread of this process that calls pyghmi.

    pyghmi has no thread of its own that delivers data: ``Console.wait_for_rsp`` (a classmethod)
    pumps every pyghmi session at once, and its objects are not safe to call from two threads (a
    SOL acknowledgement handled in one thread while another sends data corrupts the console's
    sequence state). So every pyghmi call, the SOL consoles' and the power backends', runs here:
    callers hand a function to :meth:`call` and wait for its result; between jobs the thread runs
    the registered tickers (each console's connection and liveness checks) and pumps with
    ``wait_for_rsp(PUMP_S)``, which returns early when a packet arrives. A job waits at most
    ``PUMP_S`` before it starts (pyghmi offers nothing to wake it sooner).

    pyghmi also shares one session between a ``Command`` and a ``Console`` opened with the same
    (BMC, port, user, password): the console then never connects, or the command hangs. :meth:`claim`
    refuses that combination with a clear ``ConfigError`` (use a separate BMC user for power).

    Credentials go to pyghmi as bytes. pyghmi 1.6.19 files a session being set up under the
    credentials as given, but removes that entry under their bytes form: given ``str``, the entry
    stays, and every later ``Session`` with the same credentials gets the old object back and waits
    forever for its login (a second console after the first one closed never connects).

    The thread starts with the first job and ends ``IDLE_EXIT_S`` after the last user released it.
    """

    PUMP_S = 0.05
    IDLE_EXIT_S = 2.0
    _instance: PyghmiLoop | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._wake = threading.Event()
        self._tickers: dict[int, Callable[[], None]] = {}
        self._holds = 0
        self._claims: dict[tuple[str, int, str], tuple[str, int]] = {}
        self._thread: threading.Thread | None = None
        self.last_error = ""

    @classmethod
    def get(cls) -> PyghmiLoop:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = PyghmiLoop()
            return cls._instance

    # -- users --------------------------------------------------------------------------------
    def hold(self) -> None:
        """A pyghmi session exists: keep pumping (keepalives, incoming data) until ``release``."""
        with self._lock:
            self._holds += 1
            self._start_thread()

    def release(self) -> None:
        with self._lock:
            self._holds = max(0, self._holds - 1)

    def add_ticker(self, key: int, tick: Callable[[], None]) -> None:
        """Call ``tick()`` on the loop thread between pumps (it must not block for long)."""
        with self._lock:
            self._tickers[key] = tick

    def remove_ticker(self, key: int) -> None:
        with self._lock:
            self._tickers.pop(key, None)

    def claim(self, target: BmcTarget, kind: str) -> None:
        """Record that a ``kind`` ("console" or "command") session to ``target``'s user is in use.

        Raise ``ConfigError`` when the other kind already uses the same BMC user (pyghmi would share
        one session between them and hang).
        """
        key = (target.host, target.port, target.user)
        with self._lock:
            other, count = self._claims.get(key, (kind, 0))
            if count and other != kind:
                raise ConfigError(
                    f"BMC user {target.describe()} is already used by a pyghmi {other} in this process; pyghmi "
                    f"would share one session between the console and power control and hang: give power "
                    f"control its own BMC user (bmc.power_user)")
            self._claims[key] = (kind, count + 1)

    def unclaim(self, target: BmcTarget, kind: str) -> None:
        key = (target.host, target.port, target.user)
        with self._lock:
            held, count = self._claims.get(key, (kind, 0))
            if count <= 1:
                self._claims.pop(key, None)
            else:
                self._claims[key] = (held, count - 1)

    def call(self, fn: Callable[[], T], timeout_s: float, what: str) -> T:
        """Run ``fn`` on the loop thread; return its result or raise its exception.

        Raise ``TransportError`` if it has not finished within ``timeout_s`` (a job still queued is
        cancelled; one already running finishes in the background).
        """
        if threading.current_thread() is self._thread:
            return fn()
        future: Future[T] = Future()
        with self._lock:
            self._jobs.append((fn, future))
            self._start_thread()
        self._wake.set()
        try:
            return future.result(timeout_s)
        except FutureTimeout:
            future.cancel()
            raise TransportError(f"{what}: no answer within {timeout_s:g} s") from None

    # -- the thread ---------------------------------------------------------------------------------------
    def _start_thread(self) -> None:
        """Under ``_lock``: start the thread unless it runs."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="consolebot-pyghmi", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            with self._lock:
                busy = bool(self._jobs or self._holds or self._tickers)
                if busy:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= self.IDLE_EXIT_S:
                    self._thread = None
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
                tickers = list(self._tickers.values())
                pump = self._holds > 0 and _pyghmi_io_running()
            for fn, future in jobs:
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)
            for tick in tickers:
                try:
                    tick()
                except Exception as exc:  # a ticker's failure must not stop the others
                    self.last_error = f"{type(exc).__name__}: {exc}"
            if pump:
                try:
                    from pyghmi.ipmi import console

                    console.Console.wait_for_rsp(self.PUMP_S)
                except Exception as exc:  # pyghmi's own failure in one session
                    self.last_error = f"{type(exc).__name__}: {exc}"
            else:
                self._wake.wait(self.PUMP_S)
                self._wake.clear()


def _pyghmi_io_running() -> bool:
    """True once pyghmi's I/O thread exists (its first session made it). Before, ``wait_for_rsp`` would
    wait for that thread forever."""
    from pyghmi.ipmi.private import session

    return getattr(session, "iothread", None) is not None


# -- power acts on three primitives -----------------------------------------------------------------------------
class ChassisPower(PowerBackend):
    """``act`` for the IPMI backends, on top of ``_status``, ``_control`` and ``_guid``.

    ``on``/``off`` are proven by reading the status until it says so (the BMC sends no event: the
    status is polled every ``poll_interval_s``). ``reset``, ``cycle`` and ``diag`` return the status
    read afterwards and the console evidence the caller must await. ``cycle`` without a native
    command (``native_cycle`` False: pyghmi has none) is off, a status read of off, then on.
    A BMC that refuses ``diag`` raises ``TargetError`` "NMI not supported by this BMC".
    """

    native_cycle = True

    def __init__(self, target: BmcTarget, poll_interval_s: float = 0.5) -> None:
        self.target = target
        self.poll_interval_s = poll_interval_s
        self.notes: list[str] = []  # what the caller should record (a cipher suite fallback)

    def take_notes(self) -> list[str]:
        """The notes not yet taken, for the caller's transcript."""
        notes, self.notes = self.notes, []
        return notes

    # primitives ------------------------------------------------------------------------------------
    @abstractmethod
    def _status(self) -> str:
        """"on" or "off"; ``TransportError`` when the BMC does not answer."""

    @abstractmethod
    def _control(self, act: str) -> None:
        """Send Chassis Control ``act`` (on, off, reset, cycle, diag); ``BmcRefused`` when refused."""

    @abstractmethod
    def _guid(self) -> bytes:
        """The 16 bytes of Get System GUID."""

    # the interface ------------------------------------------------------------------------------------
    def status(self) -> str:
        return self._status()

    def guid(self) -> str:
        return guid_hex(self._guid())

    def act(self, act: str, timeout_s: float = 30.0) -> PowerResult:
        if act not in ACTS:
            raise UsageError(f"unknown power act {act!r}; use one of {', '.join(ACTS)}")
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        if act == "status":
            state = self._status()
            return PowerResult(act, state, EVIDENCE[act], True, f"power is {state}", {"status_s": _since(t0)})
        if act in ("on", "off"):
            self._send(act)
            timings["command_s"] = _since(t0)
            state, reached = self._wait_state(act, timeout_s - (time.monotonic() - t0))
            timings["settled_s"] = _since(t0)
            detail = (f"power is {state}" if reached else
                      f"the BMC accepted power {act} but the status still reads {state} after {timeout_s:g} s")
            return PowerResult(act, state, EVIDENCE[act], reached, detail, timings)
        if act == "cycle" and not self.native_cycle:
            self._send("off")
            state, reached = self._wait_state("off", timeout_s / 2)
            timings["off_s"] = _since(t0)
            if not reached:
                raise TargetError(f"{self.describe()}: power cycle: the status still reads {state} after power off")
            self._send("on")
            timings["command_s"] = _since(t0)
            detail = "power off, read off, power on; the proof is the next boot on the console"
        else:
            self._send(act)
            timings["command_s"] = _since(t0)
            detail = ("NMI sent; the proof is the NMI line on the console" if act == "diag"
                      else "the proof is the next boot on the console")
        state = self._status()
        timings["status_s"] = _since(t0)
        return PowerResult(act, state, EVIDENCE[act], False, detail, timings)

    def _send(self, act: str) -> None:
        try:
            self._control(act)
        except BmcRefused as exc:
            if act == "diag" and NMI_REFUSED.search(exc.reason):
                raise TargetError(f"{self.describe()}: NMI not supported by this BMC "
                                  f"(power diag refused: {exc.reason})") from None
            raise TargetError(f"{self.describe()}: the BMC refused power {act}: {exc.reason}") from None

    def _wait_state(self, want: str, timeout_s: float) -> tuple[str, bool]:
        """Read the status until it is ``want``; return the last state read and whether it was reached.

        The BMC has no event to await, so this polls, ``poll_interval_s`` apart.
        """
        end = time.monotonic() + max(0.0, timeout_s)
        while True:
            state = self._status()
            if state == want:
                return state, True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return state, False
            time.sleep(min(self.poll_interval_s, remaining))


class BmcRefused(Exception):
    """The BMC answered a Chassis Control request with an error completion code (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
