"""One lock per console, and how a running capture yields it to a writer.

Files in ``STATE/locks/`` for console HOST (``flock`` locks, released by the
kernel when their holder dies, so no lock outlives a killed process):

* ``HOST.lock``: the writer lock. Every command that writes to the console
  holds it exclusively for its whole run and writes who it is into the file;
  a second writer fails at once with ``ConsoleBusy`` (exit 5) naming the holder.
* ``HOST.want``: a writer that holds ``HOST.lock`` creates it, holding its pid,
  to ask a capture of that console to let go.
* ``HOST.conn``: held exclusively by whoever has the console connection open
  (a capture, or a writer). A capture releases it after it has drained and
  closed its connection, marking the gap in its transcript; the writer waits
  for it, connects, and on release removes ``HOST.want``; the capture then
  takes ``HOST.conn`` again and reconnects. A capture never steals a console.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

from consolebot.errors import ConsoleBusy
from consolebot.paths import ensure_local_dir, state_dir


def lock_dir() -> Path:
    return ensure_local_dir(state_dir() / "locks", "lock folder")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileLock:
    """An ``flock`` on a file; ``try_acquire`` never blocks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def acquire_within(self, timeout_s: float) -> bool:
        """Block until the lock is ours (the kernel wakes us when it is freed) or ``timeout_s`` passes."""
        if self.try_acquire():
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if threading.current_thread() is not threading.main_thread():
            os.close(fd)
            return self._poll_acquire(timeout_s)

        def _alarm(signum: int, frame: object) -> None:
            raise TimeoutError

        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except TimeoutError:
            os.close(fd)
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        self.fd = fd
        return True

    def _poll_acquire(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not self.try_acquire():
            if time.monotonic() > end:
                return False
            time.sleep(0.05)  # off the main thread there is no signal to interrupt a blocking flock
        return True

    def write_info(self, info: dict[str, object]) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(info).encode(), 0)

    def read_info(self) -> dict[str, object]:
        try:
            data = self.path.read_text()
            info = json.loads(data) if data.strip() else {}
            return info if isinstance(info, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None


def describe_holder(info: dict[str, object]) -> str:
    if not info:
        return "another process"
    return (
        f"'{info.get('command', '?')}' (pid {info.get('pid', '?')}, user {info.get('user', '?')}"
        f"@{info.get('host', '?')}, since {info.get('since', '?')})"
    )


class ConsoleWriter:
    """Given a console name and the command taking it, hold the console for writing.

    ``acquire()`` raises ``ConsoleBusy`` naming the holder when another writer
    has it, or when a capture does not let go within ``yield_timeout_s``.
    """

    def __init__(self, console: str, command: str, yield_timeout_s: float = 15.0, folder: Path | None = None) -> None:
        self.console = console
        self.command = command
        self.yield_timeout_s = yield_timeout_s
        self.folder = folder or lock_dir()
        self.lock = FileLock(self.folder / f"{console}.lock")
        self.conn = FileLock(self.folder / f"{console}.conn")
        self.want = self.folder / f"{console}.want"

    def acquire(self) -> None:
        if not self.lock.try_acquire():
            holder = describe_holder(self.lock.read_info())
            raise ConsoleBusy(f"console of {self.console} is held by {holder}; wait for it or stop it")
        self.lock.write_info(
            {
                "pid": os.getpid(),
                "command": self.command,
                "user": getpass.getuser(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        self.want.write_text(str(os.getpid()))
        if not self.conn.acquire_within(self.yield_timeout_s):
            holder = describe_holder(self.conn.read_info())
            self.release()
            raise ConsoleBusy(
                f"console of {self.console}: the connection holder {holder} did not let go within "
                f"{self.yield_timeout_s:g} s"
            )
        self.conn.write_info({"pid": os.getpid(), "command": self.command})

    def release(self) -> None:
        try:
            self.want.unlink()
        except FileNotFoundError:
            pass
        self.conn.release()
        self.lock.release()

    def __enter__(self) -> ConsoleWriter:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CaptureClaim:
    """A capture's side: hold ``HOST.conn`` while connected; see when a writer wants the console."""

    def __init__(self, console: str, folder: Path | None = None) -> None:
        self.console = console
        self.folder = folder or lock_dir()
        self.conn = FileLock(self.folder / f"{console}.conn")
        self.want = self.folder / f"{console}.want"

    def writer_waiting(self) -> int | None:
        """Return the pid of a live writer asking for the console, else None (removing a stale request)."""
        try:
            text = self.want.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            pid = int(text)
        except ValueError:
            return None
        if pid == os.getpid() or _pid_alive(pid):
            return pid
        try:
            self.want.unlink()
        except FileNotFoundError:
            pass
        return None

    def try_take(self) -> bool:
        """Take the connection lock unless a writer wants or has it."""
        if self.conn.held:
            return True
        if self.writer_waiting() is not None:
            return False
        if not self.conn.try_acquire():
            return False
        self.conn.write_info({"pid": os.getpid(), "command": "capture"})
        return True

    def release(self) -> None:
        self.conn.release()
