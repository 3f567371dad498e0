"""IPMI serial-over-LAN through pyghmi's ``Console``, in this process.

Every pyghmi call runs on the one :class:`~consolebot.power.ipmi_common.PyghmiLoop` thread, which
pumps all pyghmi sessions with ``Console.wait_for_rsp``. Console data is handed over in memory and
announced on a pipe: ``fileno()`` is the pipe's read end, readable whenever data or an error is
waiting, so an event loop polls it like a socket. Only bytes are sent (pyghmi breaks on ``str``
when it retransmits); pyghmi's error dicts become ``ConsoleBusy`` (the payload is active for another
client) or ``ConsoleUnreachable`` at ``open()``, and ``ConsoleClosed`` afterwards.

``steal``: only then is the Console opened with ``force=True`` (pyghmi deactivates the other
client's payload and activates its own); ``notes`` records that it did.

A dropped session
-----------------
pyghmi does not notice when another client deactivates (or takes over) the SOL payload: it keeps
``connected`` True and simply receives nothing more. So the transport checks at the IPMI level:
when the console has been quiet for ``liveness_interval_s``, it sends Get Payload Instance Info
(NetFn App 0x4B, SOL instance 1) on the console's own session and compares the owner session ID
with its own. That is one small request and answer on an established session (no new login, no
second user) per quiet interval, and nothing while data flows (received data proves the payload is
still ours); pyghmi's own keepalive sends the same request, but only every 25 to 29 s. A different
owner (or 0) ends the console with ``ConsoleClosed`` saying who took it; the transport then never
deactivates the payload, which belongs to someone else now.

``close()`` deactivates the payload only after the same check says it is still ours, then closes
the IPMI session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from consolebot.errors import ConfigError, ConsoleBusy, ConsoleClosed, ConsoleUnreachable, TransportError
from consolebot.power.ipmi_common import BmcTarget, PyghmiLoop, fallback_noted_once, one_line, owner_session
from consolebot.transport.base import Ability, Transport

_BUSY_ERROR = "SOL Session active for another client"


class PyghmiSolTransport(Transport):
    """Given a BMC target (the console's user), the SOL console through pyghmi."""

    scheme = "pyghmi-sol"
    abilities = frozenset({Ability.BREAK, Ability.EXCLUSIVE, Ability.WRITE, Ability.POLLABLE})

    def __init__(self, target: BmcTarget, *, steal: bool = False, connect_timeout_s: float = 30.0,
                 liveness_interval_s: float = 5.0, write_timeout_s: float = 30.0,
                 close_timeout_s: float = 10.0) -> None:
        super().__init__()
        if target.interface != "lanplus":
            raise ConfigError(f"{target.describe()}: serial-over-LAN needs IPMI 2.0 (interface lanplus)")
        self.target = target
        self.steal = steal
        self.connect_timeout_s = connect_timeout_s
        self.liveness_interval_s = liveness_interval_s
        self.write_timeout_s = write_timeout_s
        self.close_timeout_s = close_timeout_s
        self.notes: list[str] = []
        self._loop = PyghmiLoop.get()
        self._lock = threading.Lock()
        self._inbox = bytearray()
        self._error: str | None = None
        self._open_error: TransportError | None = None
        self._ready = threading.Event()
        self._con: Any = None
        self._session: Any = None
        self._session_id = 0
        self._last_rx = 0.0
        self._last_check = 0.0
        self._check_liveness = liveness_interval_s > 0
        self._rfd = -1
        self._wfd = -1
        self._held = False

    def describe(self) -> str:
        return f"pyghmi-sol://{self.target.describe()}"

    def take_notes(self) -> list[str]:
        """The notes not yet taken (cipher fallback, steal), for the caller's transcript."""
        notes, self.notes = self.notes, []
        return notes

    # -- open / close -----------------------------------------------------------------------------------
    def open(self) -> None:
        if not self._closed:
            return
        self._inbox.clear()
        self._error = None
        self._open_error = None
        self._ready.clear()
        self._con = self._session = None
        self._check_liveness = self.liveness_interval_s > 0
        self._loop.claim(self.target, "console")
        self._loop.hold()
        self._held = True
        try:
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)
            self._loop.call(self._start, self.connect_timeout_s, f"{self.describe()}: SOL activation")
            if not self._ready.wait(self.connect_timeout_s):
                raise ConsoleUnreachable(f"{self.describe()}: no SOL session within {self.connect_timeout_s:g} s")
            if self._open_error is not None:
                raise self._open_error
        except BaseException:
            self._teardown()
            raise
        self._closed = False

    def close(self) -> None:
        if self._closed and not self._held:
            return
        self._closed = True
        self._teardown()

    def _teardown(self) -> None:
        self._loop.remove_ticker(id(self))
        if self._con is not None:
            try:
                self._loop.call(self._stop, self.close_timeout_s, f"{self.describe()}: SOL deactivation")
            except TransportError:
                pass
        if self._held:
            self._held = False
            self._loop.release()
            self._loop.unclaim(self.target, "console")
        with self._lock:  # the loop thread may still deliver (and wake) until the descriptors are gone
            fds = (self._rfd, self._wfd)
            self._rfd = self._wfd = -1
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- on the loop thread -----------------------------------------------------------------------------
    def _start(self) -> None:
        from pyghmi.ipmi import console

        t = self.target
        self._loop.add_ticker(id(self), self._tick)
        try:
            self._con = console.Console(bmc=t.host, userid=t.user.encode(), password=t.password.reveal().encode(),
                                        iohandler=self._on_io, port=t.port, force=self.steal)
        except Exception as exc:  # bad address, socket errors
            self._opened(ConsoleUnreachable(f"{self.describe()}: {one_line(str(exc))}"))
            return
        self._session = getattr(self._con, "ipmi_session", None)
        self._tick()

    def _stop(self) -> None:
        self._loop.remove_ticker(id(self))
        con, session = self._con, self._session
        self._con = None
        if con is None:
            return
        ours = False
        if self._error is None and getattr(con, "activated", False) and session is not None:
            try:
                ours = self._owner(session) == self._session_id
            except Exception:
                ours = False
        if not ours:
            con.activated = False  # the payload is not ours (any more): leave it alone
        with contextlib.suppress(Exception):
            con.close()  # deactivates the payload only if still ``activated``
        if session is not None:
            session.sol_handler = None  # else logout() would deactivate the payload once more
            with contextlib.suppress(Exception):
                session.logout()

    def _on_io(self, data: Any) -> None:
        if isinstance(data, dict):
            if "error" in data:
                self._failed(str(data["error"]))
            elif "info" in data:
                self.notes.append(f"{self.describe()}: the BMC says: {data['info']}")
            return
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        with self._lock:
            self._inbox += data
            self._last_rx = time.monotonic()
            self._wake()

    def _failed(self, text: str) -> None:
        if not self._ready.is_set():
            if text == _BUSY_ERROR:
                err: TransportError = ConsoleBusy(
                    f"{self.describe()}: the BMC's SOL payload is active for another client; "
                    "consolebot takes it over only with --steal")
            else:
                err = ConsoleUnreachable(f"{self.describe()}: {text}")
            self._opened(err)
            return
        with self._lock:
            if self._error is None:
                self._error = text
            self._wake()

    def _opened(self, error: TransportError | None) -> None:
        self._open_error = error
        self._ready.set()

    def _tick(self) -> None:
        con = self._con
        if con is None:
            return
        if not self._ready.is_set():
            if getattr(con, "connected", False):
                self._connected(con)
            return
        if self._error is not None or not self._check_liveness:
            return
        now = time.monotonic()
        if now - max(self._last_rx, self._last_check) < self.liveness_interval_s:
            return
        self._last_check = now
        self._liveness()

    def _connected(self, con: Any) -> None:
        session = con.ipmi_session
        self._session = session
        self._session_id = int(getattr(session, "sessionid", 0))
        self._last_check = self._last_rx = time.monotonic()
        if self.steal and bool(getattr(con, "retriedpayload", False)):
            self.notes.append(f"--steal: the SOL payload of {self.target.host}:{self.target.port} was active "
                              "for another client; pyghmi deactivated it (force) and took the console over")
        if self.target.cipher_suite == 17 and getattr(session, "currhashlib", None) is hashlib.sha1 \
                and fallback_noted_once(self.target.host, self.target.port, self.scheme):
            self.notes.append(f"BMC {self.target.host}:{self.target.port} refused IPMI cipher suite 17 "
                              "(SHA-256); pyghmi uses cipher suite 3 (SHA-1)")
        self._opened(None)

    def _owner(self, session: Any) -> int:
        rsp = session.raw_command(netfn=6, command=0x4B, data=(1, 1))
        if "error" in rsp:
            raise _CheckRefused(str(rsp["error"]))
        return owner_session(bytes(rsp["data"]))

    def _liveness(self) -> None:
        session, con = self._session, self._con
        if session is None or con is None:
            return
        try:
            owner = self._owner(session)
        except _CheckRefused as exc:
            self._check_liveness = False
            self.notes.append(f"{self.describe()}: the BMC refuses Get Payload Instance Info ({exc}); "
                              "a SOL session dropped by another client cannot be detected")
            return
        except Exception as exc:
            self._failed(f"the BMC stopped answering on the SOL session ({one_line(str(exc))})")
            return
        if owner != self._session_id:
            con.activated = False  # never deactivate what another client holds now
            who = "deactivated by another client" if owner == 0 else f"taken over by another session ({owner:#x})"
            self._failed(f"SOL payload {who} (Get Payload Instance Info)")

    def _wake(self) -> None:
        """Under ``_lock``: make ``fileno()`` readable."""
        if self._wfd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wfd, b"!")

    # -- the transport primitives -------------------------------------------------------------------------
    def fileno(self) -> int:
        if self._closed:
            raise ConsoleClosed(f"{self.describe()}: not open")
        return self._rfd

    def _read_available(self) -> bytes:
        if self._closed:
            raise ConsoleClosed(f"{self.describe()}: not open")
        with self._lock:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(self._rfd, 4096):
                    pass
            data = bytes(self._inbox)
            self._inbox.clear()
            error = self._error
        if data:
            return data
        if error is not None:
            raise ConsoleClosed(f"{self.describe()}: {error}")
        return b""

    def write(self, data: bytes) -> None:
        payload = bytes(data)  # pyghmi must get bytes: it breaks on str when it retransmits
        if payload:
            self._call_console(lambda con: con.send_data(payload), "SOL write")

    def _send_break(self) -> None:
        self._call_console(lambda con: con.send_break(), "SOL break")

    def _call_console(self, fn: Callable[[Any], None], what: str) -> None:
        if self._closed:
            raise ConsoleClosed(f"{self.describe()}: not open")
        if self._error is not None:
            raise ConsoleClosed(f"{self.describe()}: {self._error}")

        def job() -> None:
            con = self._con
            if con is None:
                raise ConsoleClosed(f"{self.describe()}: not open")
            fn(con)

        try:
            self._loop.call(job, self.write_timeout_s, f"{self.describe()}: {what}")
        except ConsoleClosed:
            raise
        except TransportError as exc:
            raise ConsoleClosed(str(exc)) from None
        except Exception as exc:  # pyghmi's IpmiException: the session is gone
            raise ConsoleClosed(f"{self.describe()}: {what}: {one_line(str(exc))}") from None
        if self._error is not None:
            raise ConsoleClosed(f"{self.describe()}: {self._error}")


class _CheckRefused(Exception):
    """The BMC answered the liveness check with an error completion code."""
