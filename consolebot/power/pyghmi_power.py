"""Power through pyghmi's ``Command`` (status, on, off, reset, cycle, diag) and the BMC's GUID.

The ``Command`` logs in as the power user, never the console's user: pyghmi shares one session
between a ``Command`` and a ``Console`` with the same credentials and then hangs
(:meth:`PyghmiLoop.claim` refuses that). Every call runs on the :class:`PyghmiLoop` thread, so a
pyghmi SOL console of the same process keeps being served in between. pyghmi has no power cycle:
``cycle`` is off, a status read of off, then on. pyghmi negotiates the cipher suite itself
(SHA-256, suite 17, then SHA-1, suite 3); ``notes`` says when it fell back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from consolebot.errors import TargetError, TransportError
from consolebot.power.ipmi_common import (
    BmcRefused,
    BmcTarget,
    ChassisPower,
    PyghmiLoop,
    fallback_noted_once,
    one_line,
)

T = TypeVar("T")
_GONE = ("no longer connected", "session", "timeout", "timed out")


class PyghmiPower(ChassisPower):
    """Given a BMC target (the power user), act on the chassis power with pyghmi."""

    name = "pyghmi"
    native_cycle = False

    def __init__(self, target: BmcTarget, *, poll_interval_s: float = 0.5, call_timeout_s: float = 60.0) -> None:
        super().__init__(target, poll_interval_s)
        self.call_timeout_s = call_timeout_s
        self._loop = PyghmiLoop.get()
        self._command: Any = None
        self._claimed = False

    def describe(self) -> str:
        return f"pyghmi://{self.target.describe()}"

    # -- the Command, on the loop thread ---------------------------------------------------------------
    def _login(self) -> Any:
        from pyghmi.ipmi import command

        t = self.target
        try:
            cmd = command.Command(bmc=t.host, userid=t.user.encode(), password=t.password.reveal().encode(),
                                  port=t.port)
        except Exception as exc:  # pyghmi raises IpmiException and socket errors alike
            raise TransportError(f"{self.describe()}: BMC login failed: {one_line(str(exc))}") from None
        session = getattr(cmd, "ipmi_session", None)
        if t.cipher_suite == 17 and getattr(session, "currhashlib", None) is hashlib.sha1 \
                and fallback_noted_once(t.host, t.port, "pyghmi power"):
            self.notes.append(f"BMC {t.host}:{t.port} refused IPMI cipher suite 17 (SHA-256); "
                              "pyghmi uses cipher suite 3 (SHA-1)")
        return cmd

    def _run(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(command)`` on the loop thread, logging in first; log in again once if the session died."""
        if not self._claimed:
            self._loop.claim(self.target, "command")
            self._loop.hold()
            self._claimed = True

        def job() -> T:
            for attempt in (1, 2):
                if self._command is None:
                    self._command = self._login()
                try:
                    return fn(self._command)
                except BmcRefused:
                    raise
                except Exception as exc:
                    text = str(exc)
                    if attempt == 1 and any(w in text.lower() for w in _GONE):
                        self._logout()
                        continue
                    raise TransportError(f"{self.describe()}: {what}: {one_line(text)}") from None
            raise AssertionError("unreachable")

        return self._loop.call(job, self.call_timeout_s, f"{self.describe()}: {what}")

    def _logout(self) -> None:
        cmd, self._command = self._command, None
        session = getattr(cmd, "ipmi_session", None)
        if session is not None:
            try:
                session.logout()
            except Exception:  # the session is gone already
                pass

    # -- primitives --------------------------------------------------------------------------------------
    def _status(self) -> str:
        state = self._run("power status", lambda c: c.get_power().get("powerstate"))
        if state not in ("on", "off"):
            raise TransportError(f"{self.describe()}: unexpected power state {state!r}")
        return str(state)

    def _control(self, act: str) -> None:
        def control(c: Any) -> None:
            from pyghmi.exceptions import IpmiException

            try:
                c.set_power(act, wait=False)
            except IpmiException as exc:
                text = str(exc)
                if any(w in text.lower() for w in _GONE):
                    raise
                raise BmcRefused(text) from None

        self._run(f"power {act}", control)

    def _guid(self) -> bytes:
        def read(c: Any) -> bytes:
            rsp = c.raw_command(netfn=6, command=0x37)
            if "error" in rsp:
                raise BmcRefused(str(rsp["error"]))
            return bytes(rsp["data"])

        try:
            return self._run("system GUID", read)
        except BmcRefused as exc:
            raise TargetError(f"{self.describe()}: the BMC refused Get System GUID: {exc.reason}") from None

    def close(self) -> None:
        if not self._claimed:
            return
        self._claimed = False
        try:
            self._loop.call(self._logout, 10.0, f"{self.describe()}: logout")
        except TransportError:
            pass
        finally:
            self._loop.release()
            self._loop.unclaim(self.target, "command")
