"""Real peers for the pyserial transports: socat pseudo-terminals, an RFC 2217 server, a TCP echo server.

Every helper is a context manager that stops what it started (processes, threads, sockets) on exit,
whatever happened inside. None of them sleeps a fixed time: readiness is an event (socat's "starting
data transfer loop" line, a listening socket, ``select``) or a short poll bounded by a deadline.

* ``free_port()``: a free TCP port on 127.0.0.1 (nothing listens there: a refused connection).
* ``socat_pty_pair()`` yields ``PtyPair(near, far)``: two linked pty paths; bytes written to one
  come out of the other. consolebot opens ``near``; a test drives ``far`` (see ``PtyEnd``).
* ``serial_pty_peer(command)`` yields the device path of a pty whose far end is ``command``'s
  stdin/stdout (socat ``EXEC``), e.g. ``[sys.executable, "-m", "consolebot", "lab", "serve", "--stdio"]``.
* ``rfc2217_server(device)`` yields an ``Rfc2217Server`` (``.url`` = ``rfc2217://127.0.0.1:PORT``):
  pyserial's own ``PortManager`` in front of ``device`` (opened without flushing it), recording
  BREAK requests (``.breaks``, ``.wait_break()``) and input purges (``.input_purges``); with
  ``break_bytes`` it also writes those bytes into the port when a BREAK starts (a pty cannot carry
  a real one). ``rfc2217_peer(command)`` is ``serial_pty_peer(command)`` behind such a server.
* ``tcp_echo_server()`` yields a ``TcpEchoServer`` (``.url`` = ``socket://127.0.0.1:PORT``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import serial
import serial.rfc2217

SOCAT = "socat"
_READY_LINE = "starting data transfer loop"
_SOCAT_UNSAFE = set(" ,:!'\"\\;{}[]()<>|$&*?`~%")  # characters socat's address parser treats specially


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (bind to 0, read it, release it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def require_socat() -> str:
    path = shutil.which(SOCAT)
    if path is None:
        raise RuntimeError("socat is not installed; run: sudo scripts/install-test-deps")
    return path


# -- socat ------------------------------------------------------------------------------------
class _Socat:
    """A socat process whose stderr (``-d -d``) is collected in ``log`` by a reader thread."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None, timeout_s: float) -> None:
        argv = [require_socat(), "-d", "-d", *args]
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # a stop signal reaches socat only, never the test runner
        )
        self._reader = threading.Thread(target=self._read_stderr, name="socat-stderr", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"socat did not start within {timeout_s:g} s: {self.log[-5:]}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"socat exited with {self.proc.wait()}: {self.log[-5:]}")
            if _READY_LINE in line:
                return

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop socat and whatever it forked (its process group, which this class created)."""
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(5)
        self._reader.join(2)
        if self._reader.is_alive():  # an EXEC child outlived socat and holds its stderr open
            self._signal(signal.SIGKILL)
            self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)


@contextlib.contextmanager
def _work_dir(directory: str | os.PathLike[str] | None) -> Iterator[Path]:
    if directory is not None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if _SOCAT_UNSAFE & set(str(path)):
            raise ValueError(
                f"{path}: socat cannot take a path with any of {''.join(sorted(_SOCAT_UNSAFE))!r}"
            )
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="consolebot-pty-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class PtyPair:
    """Two linked pseudo-terminals: ``near`` for consolebot, ``far`` for the simulated target."""

    near: str
    far: str
    socat: subprocess.Popen[bytes]
    log: list[str]


@contextlib.contextmanager
def socat_pty_pair(
    directory: str | os.PathLike[str] | None = None, *, timeout_s: float = 10.0
) -> Iterator[PtyPair]:
    """Run ``socat pty,raw,echo=0,link=NEAR pty,raw,echo=0,link=FAR``; yield the two paths."""
    with _work_dir(directory) as work:
        near, far = work / "near", work / "far"
        proc = _Socat([f"pty,raw,echo=0,link={near}", f"pty,raw,echo=0,link={far}"], None, timeout_s)
        try:
            yield PtyPair(str(near), str(far), proc.proc, proc.log)
        finally:
            proc.stop()


@contextlib.contextmanager
def serial_pty_peer(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    child_pty: bool = False,
    timeout_s: float = 10.0,
) -> Iterator[str]:
    """Yield the path of a pty whose other end is ``command``'s stdin/stdout.

    socat ``pty,raw,echo=0,link=PATH EXEC:...``; the command is wrapped in a small shell script
    (``exec`` + ``shlex.join``) so no argument is mangled by socat's own address syntax. The
    command's stdio is a socketpair (``child_pty=True``: a raw pty), its stderr goes to socat's log,
    ``env`` (default: this process's environment) is its environment. When the command exits
    socat exits and the device reports EOF/EIO. The device keeps working across close/reopen.
    """
    if not command:
        raise ValueError("serial_pty_peer: empty command")
    with _work_dir(directory) as work:
        script = work / "peer.sh"
        script.write_text(f"#!/bin/sh\nexec {shlex.join(command)}\n")
        script.chmod(0o755)
        device = work / "console"
        child = f"EXEC:{script}" + (",pty,raw,echo=0" if child_pty else "")
        proc = _Socat([f"pty,raw,echo=0,link={device}", child], env, timeout_s)
        try:
            yield str(device)
        finally:
            proc.stop()


ECHO_PEER = r"""
import os, sys
banner = os.environ.get("PEER_BANNER", "PEER READY\r\n").encode()
os.write(1, banner)
buf = b""
while True:
    data = os.read(0, 4096)
    if not data:
        break
    os.write(1, data.upper())
    buf = (buf + data)[-16:]
    if b"quit" in buf:
        break
"""


def echo_peer_command() -> list[str]:
    """A peer program for ``serial_pty_peer``: writes ``$PEER_BANNER`` (default "PEER READY\\r\\n"),
    then echoes every byte upper-cased; exits on EOF or after receiving ``quit``."""
    return [sys.executable, "-c", ECHO_PEER]


# -- driving a pty end directly -------------------------------------------------------------------
class PtyEnd:
    """The far end of a ``PtyPair`` opened raw and non-blocking, with bounded waits."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)  # TCSANOW: never discard what is already queued
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.received = bytearray()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)
                continue
            view = view[n:]

    def read_until(self, expected: bytes, timeout_s: float = 5.0) -> bytes:
        """Read until ``expected`` has arrived (since the last call); return all bytes read."""
        end = time.monotonic() + timeout_s
        start = len(self.received)
        while expected not in self.received[start:]:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.path}: {expected!r} not seen; got {bytes(self.received[start:])!r}"
                )
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    self.received += os.read(self.fd, 65536)
                except BlockingIOError:
                    pass
        return bytes(self.received[start:])

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PtyEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pending_input(path: str) -> int:
    """How many bytes wait unread in the input queue of the tty at ``path`` (it is not consumed)."""
    import array
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
        return int(buf[0])
    finally:
        os.close(fd)


def wait_pending_input(path: str, at_least: int, timeout_s: float = 5.0) -> None:
    """Bounded poll until the tty at ``path`` holds ``at_least`` unread bytes."""
    end = time.monotonic() + timeout_s
    while pending_input(path) < at_least:
        if time.monotonic() > end:
            raise TimeoutError(f"{path}: fewer than {at_least} bytes arrived within {timeout_s:g} s")
        time.sleep(0.005)


# -- RFC 2217 server ------------------------------------------------------------------------------
class RecordingSerial(serial.Serial):
    """The server's serial port: records BREAK and purge requests, and tolerates a pty
    (which has no modem lines and ignores BREAK)."""

    def __init__(self) -> None:
        self.breaks: list[bool] = []
        self.break_changed = threading.Condition()
        self.input_purges = 0
        self.control_errors: list[str] = []
        self.break_bytes = b""  # written into the port when a BREAK starts (for an in-band peer)
        self._opening = False
        super().__init__()

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reconfigure_port(self, force_update: bool = False) -> None:
        try:
            super()._reconfigure_port(force_update)  # type: ignore[misc]
        except termios.error as exc:
            # PortManager only rolls back (and reports the old value) on ValueError; a pty
            # rejects parity and data bits other than 8N with EINVAL
            raise ValueError(f"the port rejects these settings: {exc}") from exc

    def _reset_input_buffer(self) -> None:
        if not self._opening:  # pyserial flushes on open; we keep what the target already sent
            super()._reset_input_buffer()  # type: ignore[misc]

    def reset_input_buffer(self) -> None:
        self.input_purges += 1
        super().reset_input_buffer()

    def _update_break_state(self) -> None:
        with self.break_changed:
            self.breaks.append(bool(getattr(self, "_break_state", False)))
            self.break_changed.notify_all()
        try:
            super()._update_break_state()  # type: ignore[misc]
        except OSError as exc:
            self.control_errors.append(f"break: {exc}")
        if self.break_bytes and getattr(self, "_break_state", False):
            self.write(self.break_bytes)

    def _update_dtr_state(self) -> None:
        try:
            super()._update_dtr_state()  # type: ignore[misc]
        except OSError as exc:  # ENOTTY on a pty
            self.control_errors.append(f"dtr: {exc}")

    def _update_rts_state(self) -> None:
        try:
            super()._update_rts_state()  # type: ignore[misc]
        except OSError as exc:
            self.control_errors.append(f"rts: {exc}")

    def _line(self, getter: Callable[[], bool], default: bool) -> bool:
        try:
            return getter()
        except OSError:
            return default

    @property
    def cts(self) -> bool:
        return self._line(lambda: bool(serial.Serial.cts.fget(self)), True)  # type: ignore[attr-defined]

    @property
    def dsr(self) -> bool:
        return self._line(lambda: bool(serial.Serial.dsr.fget(self)), True)  # type: ignore[attr-defined]

    @property
    def ri(self) -> bool:
        return self._line(lambda: bool(serial.Serial.ri.fget(self)), False)  # type: ignore[attr-defined]

    @property
    def cd(self) -> bool:
        return self._line(lambda: bool(serial.Serial.cd.fget(self)), True)  # type: ignore[attr-defined]


class _Connection:
    """What ``PortManager`` writes to: a thread-safe ``write``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


@dataclass
class Rfc2217Server:
    """A running RFC 2217 server (one client at a time)."""

    host: str
    port: int
    serial: RecordingSerial
    connections: int = 0
    client_connected: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    _current: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"rfc2217://{self.host}:{self.port}"

    @property
    def breaks(self) -> list[bool]:
        """Every BREAK state the client set, in order: one ``send_break`` is ``[True, False]``."""
        return list(self.serial.breaks)

    @property
    def input_purges(self) -> int:
        """How many times a client asked to flush the port's input (consolebot never should)."""
        return self.serial.input_purges

    def wait_break(self, timeout_s: float = 5.0) -> bool:
        """Wait until a complete BREAK (on, then off) has reached the port."""

        def complete() -> bool:
            b = self.serial.breaks
            return any(b[i] and not b[i + 1] for i in range(len(b) - 1))

        with self.serial.break_changed:
            return self.serial.break_changed.wait_for(complete, timeout_s)

    def drop_client(self) -> None:
        """Close the current client connection (the client then sees end of stream)."""
        sock = self._current
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _serve_rfc2217(server: Rfc2217Server, listener: socket.socket, stop_r: int) -> None:
    while True:
        ready = select.select([listener.fileno(), stop_r], [], [])[0]
        if stop_r in ready:
            return
        try:
            sock, _ = listener.accept()
        except OSError:
            continue
        server.connections += 1
        server._current = sock
        server.client_connected.set()
        try:
            _serve_client(server, sock, stop_r)
        finally:
            server._current = None
            sock.close()
        if select.select([stop_r], [], [], 0)[0]:
            return


def _net_to_serial(
    server: Rfc2217Server, sock: socket.socket, manager: serial.rfc2217.PortManager, done_w: int
) -> None:
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            payload = b"".join(manager.filter(data))
            if payload:
                server.serial.write(payload)
    except Exception as exc:  # recorded for the test to inspect
        server.errors.append(f"net->serial: {exc!r}")
    finally:
        os.write(done_w, b"x")


def _serve_client(server: Rfc2217Server, sock: socket.socket, stop_r: int) -> None:
    """Bridge one client and the port: the client's bytes through ``PortManager.filter`` (which
    acts on the RFC 2217 requests) to the port on a worker thread, the port's bytes escaped back."""
    ser = server.serial
    assert ser.fd is not None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = _Connection(sock)
    done_r, done_w = os.pipe()
    manager = serial.rfc2217.PortManager(ser, conn)  # type: ignore[arg-type]
    worker = threading.Thread(
        target=_net_to_serial, args=(server, sock, manager, done_w), name="rfc2217-net-to-serial", daemon=True
    )
    worker.start()
    try:
        while True:
            ready = select.select([ser.fd, done_r, stop_r], [], [])[0]
            if done_r in ready or stop_r in ready:
                break
            try:
                data = os.read(ser.fd, 4096)
            except BlockingIOError:
                continue
            if not data:
                break
            conn.write(b"".join(manager.escape(data)))
    except OSError as exc:
        server.errors.append(f"serial->net: {exc!r}")
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        worker.join(5)
        os.close(done_r)
        os.close(done_w)


@contextlib.contextmanager
def rfc2217_server(
    device: str, *, baudrate: int = 115200, host: str = "127.0.0.1", break_bytes: bytes = b""
) -> Iterator[Rfc2217Server]:
    """Serve ``device`` over RFC 2217 on ``host`` (an ephemeral port) until the block ends.

    The port is opened once, at ``baudrate``, without flushing, and kept open between clients.
    A pty cannot carry a BREAK, so ``break_bytes`` (if given) are written into the port when a
    client starts one: a peer run with ``--break-sequence`` then sees the BREAK in band.
    """
    ser = RecordingSerial()
    ser.break_bytes = break_bytes
    ser.port = device
    ser.baudrate = baudrate
    ser.timeout = 0
    ser.open()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stop_r, stop_w = os.pipe()
    thread: threading.Thread | None = None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(4)
        server = Rfc2217Server(host, int(listener.getsockname()[1]), ser)
        thread = threading.Thread(
            target=_serve_rfc2217, args=(server, listener, stop_r), name="rfc2217-server", daemon=True
        )
        thread.start()
        yield server
    finally:
        os.write(stop_w, b"x")
        if thread is not None:
            thread.join(10)
        listener.close()
        ser.close()
        os.close(stop_r)
        os.close(stop_w)


@contextlib.contextmanager
def rfc2217_peer(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    baudrate: int = 115200,
    break_bytes: bytes = b"",
    child_pty: bool = False,
) -> Iterator[Rfc2217Server]:
    """``command`` behind a pty behind an RFC 2217 server: yield the server (``.url`` to connect).
    ``break_bytes``: see ``rfc2217_server`` (e.g. the simulator's ``--break-sequence``)."""
    with (
        serial_pty_peer(command, env=env, child_pty=child_pty) as device,
        rfc2217_server(device, baudrate=baudrate, break_bytes=break_bytes) as server,
    ):
        yield server


# -- plain TCP ------------------------------------------------------------------------------------
@dataclass
class TcpEchoServer:
    host: str
    port: int
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    client_connected: threading.Event = field(default_factory=threading.Event)
    _current: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def drop_client(self) -> None:
        sock = self._current
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def tcp_echo_server(
    banner: bytes = b"", *, echo: bool = True, transform: Callable[[bytes], bytes] = bytes.upper
) -> Iterator[TcpEchoServer]:
    """A TCP server on 127.0.0.1 (one client at a time): sends ``banner`` on connect, then answers
    every chunk with ``transform(chunk)`` (``echo=False``: stays silent, e.g. to play a non-RFC 2217 peer)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    server = TcpEchoServer("127.0.0.1", int(listener.getsockname()[1]))
    stop_r, stop_w = os.pipe()

    def serve() -> None:
        while True:
            if stop_r in select.select([listener.fileno(), stop_r], [], [])[0]:
                return
            try:
                sock, _ = listener.accept()
            except OSError:
                continue
            server.connections += 1
            server._current = sock
            server.client_connected.set()
            try:
                if banner:
                    sock.sendall(banner)
                while True:
                    if stop_r in select.select([sock.fileno(), stop_r], [], [])[0]:
                        return
                    data = sock.recv(4096)
                    if not data:
                        break
                    server.received += data
                    if echo:
                        sock.sendall(transform(data))
            except OSError:
                pass
            finally:
                server._current = None
                sock.close()

    thread = threading.Thread(target=serve, name="tcp-echo-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        os.write(stop_w, b"x")
        thread.join(10)
        listener.close()
        os.close(stop_r)
        os.close(stop_w)
