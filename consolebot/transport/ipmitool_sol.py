"""IPMI serial-over-LAN through ``ipmitool -I lanplus ... sol activate`` under a pty (pexpect).

The argv is ``ipmitool -I lanplus -C SUITE -H HOST -p PORT -U USER -E sol activate``: the password
reaches ipmitool only through its environment (``IPMI_PASSWORD``, read because of ``-E``), never
its argv. ipmitool's own messages go to a separate pipe (they never mix into console data); its
banner ``[SOL Session operational.  Use ~? for help]`` marks the open and is removed from the data.

* Cipher suite: the inventory's (17 by default). When the BMC refuses the suite itself ("invalid
  authentication algorithm" and the like, never a wrong password), ``open()`` tries the fallback
  (3) once and says so in ``notes`` and ``cipher_note``.
* Busy: "SOL payload already active on another session" is ``ConsoleBusy`` (exit 5). Only with
  ``steal`` does ``open()`` run ``ipmitool sol deactivate`` and try again, once; ``notes`` records it.
* Escape: ipmitool takes ``~`` as its escape at the start of a line (after ``\\r`` or ``\\n`` written
  by us, and at the start of the session); ``~~`` there sends one ``~``. ``write()`` doubles exactly
  those ``~``, so ``~.`` in data never ends the session.
* BREAK: ``~B`` at the start of a line (ipmitool sends a SOL packet with the break bit). Mid-line a
  ``\\r`` must go first, the one side effect (an Enter on the console), as with ssh's ``~B``.
  ipmitool's answer ``~B [send break]`` is removed from the data.
* End: "SOL session closed by BMC" and any end of ipmitool are ``ConsoleClosed`` naming the reason.

A dropped session
-----------------
When another client deactivates our SOL payload, ipmitool notices only when it next sends (and
a capture never sends). Right after ``open()`` the transport reads, on an independent session,
which session holds the payload (Get Payload Instance Info, ``ipmitool raw 0x06 0x4b 1 1``): that
is ipmitool's. A watchdog thread repeats that read whenever the console has been quiet for
``liveness_interval_s`` (one short ipmitool run, nothing while data flows). When the holder
changes (0: deactivated; another ID: taken over), it ends ipmitool, so the pty reports the end of
stream and ``read_available()`` raises ``ConsoleClosed`` with that reason.

Closing: ``~.`` at the start of a line makes ipmitool deactivate its payload and exit. Because
ipmitool deactivates whatever session holds the payload, ``close()`` checks the holder first: when
another client took it over, ipmitool is simply ended. Mid-line (``~.`` would not be recognised),
ipmitool is ended and the payload is deactivated from a separate session, after the same check.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time

from consolebot.errors import (
    ConfigError,
    ConsoleBotError,
    ConsoleBusy,
    ConsoleUnreachable,
    TargetError,
    TransportError,
)
from consolebot.escapes import escape_tilde
from consolebot.power.ipmi_common import PASSWORD_ENV, BmcTarget, Ipmitool
from consolebot.transport.base import Ability
from consolebot.transport.process import ProcessTransport

_BANNER = re.compile(rb"\[SOL Session operational\.  Use ~\? for help\]\r?\n?")
_BREAK_ACK = b"~B [send break]"
_BREAK_ACK_END = re.compile(rb"\r?\n")
_BUSY = "SOL payload already active on another session"
_ALREADY_OFF = "already de-activated"
_TELLING = ("closed by BMC", "Error", "Unable", "Info:", "No response", "failed")


class _CipherRefused(ConsoleUnreachable):
    """The BMC refused the cipher suite (``open()`` falls back)."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class IpmitoolSolTransport(ProcessTransport):
    """Given a BMC target (the console's user), the SOL console through ipmitool."""

    scheme = "ipmitool-sol"
    program_name = "ipmitool"
    client_escape = "~"
    abilities = frozenset({Ability.BREAK, Ability.EXCLUSIVE, Ability.WRITE, Ability.POLLABLE})

    def __init__(self, target: BmcTarget, *, steal: bool = False, program: str = "ipmitool",
                 open_timeout_s: float = 20.0, liveness_interval_s: float = 5.0, check_timeout_s: float = 15.0,
                 exit_wait_s: float = 3.0) -> None:
        if target.interface != "lanplus":
            raise ConfigError(f"{target.describe()}: serial-over-LAN needs IPMI 2.0 (interface lanplus)")
        self.target = target
        self.steal = steal
        self.tool = Ipmitool(target, program, timeout_s=check_timeout_s, who="ipmitool sol")
        self.liveness_interval_s = liveness_interval_s
        self.exit_wait_s = exit_wait_s
        super().__init__(self.tool.argv("sol", "activate"), env_secrets={PASSWORD_ENV: target.password},
                         separate_stderr=True, open_timeout_s=open_timeout_s, settle_s=0.0)
        self.notes: list[str] = list(self.tool.notes)
        self.cipher_note = self.notes[-1] if self.notes else ""
        self._active = False
        self._line_start = True
        self._acks = 0
        self._held = b""
        self._owner: int | None = None
        self._lost: str | None = None
        self._last_rx = 0.0
        self._child_lock = threading.Lock()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def describe(self) -> str:
        return f"ipmitool-sol://{self.target.describe()}"

    def take_notes(self) -> list[str]:
        """The notes not yet taken (cipher fallback, steal), for the caller's transcript."""
        notes, self.notes = self.notes, []
        return notes

    # -- open ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._child is not None:
            return
        stole = False
        while True:
            self.argv = self.tool.argv("sol", "activate")
            self._reset()
            try:
                super().open()
                break
            except _CipherRefused as exc:
                seen = len(self.tool.notes)
                self.tool.fall_back(exc.text)
                for note in self.tool.notes[seen:]:
                    self.cipher_note = note
                    self.notes.append(note)
            except ConsoleBusy:
                if not self.steal or stole:
                    raise
                self._take_over()
                stole = True
        self._active = True
        self._last_rx = time.monotonic()
        self._start_watch()

    def _reset(self) -> None:
        self._active = False
        self._line_start = True
        self._acks = 0
        self._held = b""
        self._owner = None
        self._lost = None
        self._watch_stop = threading.Event()

    def _take_over(self) -> None:
        r = self.tool.run("sol", "deactivate")
        if r.returncode != 0 and _ALREADY_OFF not in r.text:
            raise ConsoleBusy(f"{self.describe()}: --steal: ipmitool sol deactivate failed: {r.last_error()}")
        self.notes.append(f"--steal: the SOL payload of {self.target.host}:{self.target.port} was active on "
                          "another session; consolebot ran 'ipmitool sol deactivate' and took the console over")

    def _startup_ready(self) -> bool:
        m = _BANNER.search(self._inbox)
        if m is None:
            return False
        del self._inbox[: m.end()]
        return True

    def _startup_failure(self, status: str) -> ConsoleBotError:
        text = "\n".join([*self._diag_lines(), self._inbox.decode("utf-8", "replace")])
        if _BUSY in text:
            return ConsoleBusy(f"{self.describe()}: {_BUSY} (another client holds the console); "
                               "consolebot takes it over only with --steal")
        if self.tool.cipher_refused(text):
            return _CipherRefused(f"{self.describe()}: cipher suite {self.tool.suite} refused", text)
        return ConsoleUnreachable(f"{self.describe()}: ipmitool ended at once ({status})"
                                  + (f": {self._telling()}" if self._telling() else ""))

    def _startup_timeout(self) -> ConsoleBotError:
        line = self._telling()
        return ConsoleUnreachable(f"{self.describe()}: no SOL session within {self.open_timeout_s:g} s"
                                  + (f"; last message: {line}" if line else ""))

    def _telling(self) -> str:
        lines = self._diag_lines()
        for line in reversed(lines):
            if any(word in line for word in _TELLING):
                return line
        return lines[-1] if lines else ""

    def _closing_line(self) -> str:
        return self._lost or self._telling()

    # -- data ----------------------------------------------------------------------------------------------------
    def _encode(self, data: bytes) -> bytes:
        out, self._line_start = escape_tilde(data, self._line_start)  # "~~" sends one "~" through ipmitool
        return out

    @property
    def at_line_start(self) -> bool:
        """True when ``~B`` can be sent without an Enter first (ipmitool reads escapes only at a line start)."""
        return self._line_start

    def _send_break(self) -> None:
        prefix = b"" if self._line_start else b"\r"
        self._acks += 1
        self._write_raw(prefix + b"~B")
        self._line_start = True  # ipmitool consumed "~B" and still is at a line start

    def _filter(self, data: bytes, final: bool) -> bytes:
        if data:
            self._last_rx = time.monotonic()
        buf = self._held + data
        self._held = b""
        while self._acks:
            i = buf.find(_BREAK_ACK)
            if i < 0:
                break
            end = i + len(_BREAK_ACK)
            m = _BREAK_ACK_END.match(buf, end)
            if m is None and not final and len(buf) - end < 2:
                self._held = buf[i:]  # the line end may follow in the next read
                return buf[:i]
            buf = buf[:i] + buf[m.end() if m else end :]
            self._acks -= 1
        if self._acks and not final:
            for k in range(min(len(_BREAK_ACK) - 1, len(buf)), 0, -1):
                if buf.endswith(_BREAK_ACK[:k]):
                    self._held = buf[-k:]
                    return buf[:-k]
        return buf

    # -- liveness ----------------------------------------------------------------------------------------------
    def _start_watch(self) -> None:
        if self.liveness_interval_s <= 0:
            return
        try:
            owner = self.tool.sol_owner()
        except (TransportError, TargetError) as exc:
            self.notes.append(f"{self.describe()}: cannot read which session holds SOL ({exc}); a session "
                              "dropped by another client is noticed only when consolebot next sends")
            return
        if owner == 0:
            self.notes.append(f"{self.describe()}: the BMC reports no holder for the active SOL payload; a "
                              "session dropped by another client is noticed only when consolebot next sends")
            return
        self._owner = owner
        self._watcher = threading.Thread(target=self._watch, args=(self._watch_stop,), daemon=True,
                                         name="consolebot-ipmitool-sol-watch")
        self._watcher.start()

    def _watch(self, stop: threading.Event) -> None:
        last_check = time.monotonic()
        while True:
            due = max(self._last_rx, last_check) + self.liveness_interval_s
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            if time.monotonic() < max(self._last_rx, last_check) + self.liveness_interval_s:
                continue  # data came meanwhile: the payload is ours
            last_check = time.monotonic()
            try:
                owner = self.tool.sol_owner()
            except (TransportError, TargetError):
                continue  # the BMC is busy or away: ipmitool's own keepalive notices a dead session
            if owner == self._owner:
                continue
            who = "deactivated by another client" if owner == 0 else f"taken over by another session ({owner:#x})"
            with self._child_lock:
                if stop.is_set():
                    return
                self._lost = f"SOL payload {who} (Get Payload Instance Info)"
                child = self._child
                if child is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child.pid, signal.SIGTERM)  # the pty then reports the end of stream
            return

    def _still_ours(self) -> bool:
        """A fresh look at who holds the payload (True when that cannot be known)."""
        if self._lost is not None:
            return False
        if self._owner is None:
            return True
        try:
            return self.tool.sol_owner() == self._owner
        except (TransportError, TargetError):
            return True

    # -- close ---------------------------------------------------------------------------------------------------
    def _before_close(self) -> None:
        if not self._active:
            return
        self._active = False
        if not self._still_ours():
            return  # another client holds the payload: end ipmitool without deactivating anything
        if self._line_start:
            self._write_raw(b"~.")  # ipmitool deactivates its payload and exits
            self._wait_exit(self.exit_wait_s)
            return
        child = self._child
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            self._wait_exit(self.exit_wait_s)
        if self._still_ours():
            with contextlib.suppress(TransportError):
                self.tool.run("sol", "deactivate")

    def _shutdown(self, polite: bool) -> None:
        self._watch_stop.set()
        with self._child_lock:
            super()._shutdown(polite)
        self._active = False
