"""Fixtures of the real lab: a Debian cloud kernel with busybox, standing in for Deleuze, under QEMU.

Every test under ``tests/lab`` is marked ``lab``. A missing host package (qemu-system-x86,
busybox-static, cpio, openssl) is an error, never a skip: ``.ci/run`` installs them.

* ``lab_kit`` (session): the cache built or reused by ``LabBuilder.ensure()`` (kernel, runit, initramfs
  with root's password ``LAB_PASSWORD``).
* ``guest_factory`` (function) and ``module_guest_factory`` (module): ``factory(config, name)`` starts a
  QEMU guest and returns a ``LabGuest``; every guest is stopped at the end of the scope, by PID,
  children first, whatever happened.
* ``LabGuest.console(name)``: a context manager giving a ``GuestConsole`` over a fresh telnet
  connection and session, with a transcript in the guest's folder; it closes the connection on exit
  (QEMU's telnet chardev takes one client at a time).
* ``record_timing(what, seconds)``: prints a timing now and in the summary at the end of the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consolebot.errors import ConsoleClosed
from consolebot.lab.guest import GuestConfig, GuestConsole, LabBuilder, LabKit, QemuGuest
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Ability, Transport
from tests.conftest import LAB_PASSWORD

HERE = Path(__file__).resolve().parent
TIMINGS: list[tuple[str, float]] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.lab)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("lab timings (TCG, this machine)")
    width = max(len(what) for what, _ in TIMINGS)
    for what, seconds in TIMINGS:
        terminalreporter.write_line(f"{what:<{width}}  {seconds:6.2f} s")


def record_timing(what: str, seconds: float) -> None:
    """Print a timing (measured, never asserted beyond a loose smoke bound) and keep it for the summary."""
    TIMINGS.append((what, seconds))
    print(f"lab timing: {what}: {seconds:.2f} s")


@pytest.fixture(scope="session")
def lab_password() -> Secret:
    return Secret(LAB_PASSWORD, "lab-guest/root")


@pytest.fixture(scope="session")
def lab_kit(lab_password: Secret) -> LabKit:
    """The kernel and initramfs, fetched and built into the lab cache (or reused from it)."""
    t0 = time.monotonic()
    kit = LabBuilder(log=lambda text: print(f"lab-build: {text}")).ensure(password=lab_password)
    record_timing("lab cache ready (build or reuse)", time.monotonic() - t0)
    return kit


@dataclass
class LabGuest:
    """A started QEMU guest, its root password and its folder of transcripts."""

    qemu: QemuGuest
    password: Secret
    folder: Path

    @property
    def hostname(self) -> str:
        return self.qemu.config.hostname

    def open_console(self, name: str = "console") -> GuestConsole:
        """Connect and return a console; the caller closes ``console.session``."""
        transport = self.qemu.transport()
        transport.open()
        redactor = Redactor()
        session = Session(transport, Transcript(self.folder, name, redactor), redactor)
        return GuestConsole(session, self.hostname, self.password)

    @contextlib.contextmanager
    def console(self, name: str = "console") -> Iterator[GuestConsole]:
        con = self.open_console(name)
        try:
            yield con
        finally:
            con.session.close()


class GuestPool:
    """Starts guests and stops every one of them at ``close()``."""

    def __init__(self, kit: LabKit, password: Secret, folder: Path) -> None:
        self.kit = kit
        self.password = password
        self.folder = folder
        self.guests: list[LabGuest] = []

    def start(self, config: GuestConfig | None = None, name: str = "guest") -> LabGuest:
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        qemu = QemuGuest(self.kit, config or GuestConfig(), run_dir=folder, name=name)
        guest = LabGuest(qemu, self.password, folder)
        self.guests.append(guest)  # before start: a half-started QEMU is stopped too
        qemu.start()
        return guest

    def close(self) -> None:
        errors: list[BaseException] = []
        for guest in reversed(self.guests):
            try:
                guest.qemu.stop()
            except BaseException as exc:  # stop the others whatever happens
                errors.append(exc)
        self.guests.clear()
        if errors:
            raise errors[0]


GuestFactory = Callable[..., LabGuest]


@pytest.fixture
def guest_factory(lab_kit: LabKit, lab_password: Secret, tmp_path: Path) -> Iterator[GuestFactory]:
    """``guest_factory(config, name)``: a guest for this test only."""
    pool = GuestPool(lab_kit, lab_password, tmp_path)
    try:
        yield pool.start
    finally:
        pool.close()


@pytest.fixture(scope="module")
def module_guest_factory(lab_kit: LabKit, lab_password: Secret,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestFactory]:
    """``module_guest_factory(config, name)``: a guest shared by the tests of one module."""
    pool = GuestPool(lab_kit, lab_password, tmp_path_factory.mktemp("lab-guests"))
    try:
        yield pool.start
    finally:
        pool.close()


class ReplayTransport(Transport):
    """Replays recorded console bytes in small chunks, then reports the end of the stream."""

    scheme = "replay"
    abilities = frozenset({Ability.WRITE})

    def __init__(self, data: bytes, chunk_bytes: int = 97) -> None:
        super().__init__()
        self.data = data
        self.chunk_bytes = chunk_bytes
        self.offset = 0

    def open(self) -> None:
        self._closed = False

    def fileno(self) -> int:
        raise OSError("a replay has no descriptor")

    def _read_available(self) -> bytes:
        if self.offset >= len(self.data):
            raise ConsoleClosed("replay: end of the recording")
        chunk = self.data[self.offset : self.offset + self.chunk_bytes]
        self.offset += len(chunk)
        return chunk

    def read(self, max_bytes: int = 65536, timeout_s: float = 0.0) -> bytes:
        data = self.read_available()
        return data[:max_bytes]

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self._closed = True

    def describe(self) -> str:
        return "replay://recorded-console"
