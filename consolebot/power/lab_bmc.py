"""The power backend for the simulator's BMC (``power_backend = "lab"``): its loopback control channel.

The protocol is in ``consolebot/lab/bmc.py``: one request line, one JSON reply line. ``on``/``off`` are
proven by a status read; ``reset``/``cycle`` by the next boot on the console and ``diag`` by the NMI
line there: the caller awaits that evidence, this backend never claims it.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from consolebot.errors import TargetError, TransportError, UsageError
from consolebot.power.base import ACTS, EVIDENCE, PowerBackend, PowerResult, normalise_guid


class LabBmc(PowerBackend):
    """Given the simulated BMC's loopback address and port, act on its chassis power."""

    name = "lab"

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(f"the lab BMC only listens on loopback, not {host!r}")
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file: Any = None

    def describe(self) -> str:
        return f"lab BMC at {self.host}:{self.port}"

    def _connect(self) -> None:
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise TransportError(f"{self.describe()}: cannot connect: {exc.strerror or exc}; is "
                                 "'consolebot lab serve' running?") from None
        self._file = self._sock.makefile("rwb")

    def request(self, line: str) -> dict[str, Any]:
        """Send one request; return the reply. Raise ``TransportError`` when the BMC does not answer."""
        self._connect()
        try:
            self._file.write((line + "\n").encode())
            self._file.flush()
            raw = self._file.readline()
        except OSError as exc:
            self.close()
            raise TransportError(f"{self.describe()}: {exc}") from None
        if not raw:
            self.close()
            raise TransportError(f"{self.describe()}: connection closed")
        try:
            reply: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise TransportError(f"{self.describe()}: not a lab BMC reply: {raw[:80]!r}") from None
        return reply

    def status(self) -> str:
        reply = self.request("status")
        return str(reply.get("power", "unknown"))

    def act(self, act: str, timeout_s: float = 30.0) -> PowerResult:
        if act not in ACTS:
            raise UsageError(f"unknown power act {act!r}; use one of {', '.join(ACTS)}")
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        if act != "status":
            reply = self.request(act)
            timings["request_s"] = round(time.monotonic() - t0, 3)
            if not reply.get("ok"):
                raise TargetError(f"{self.describe()}: {act} refused: {reply.get('error', 'no reason given')}")
        state = self.status()
        want = {"on": "on", "off": "off"}.get(act)
        end = time.monotonic() + timeout_s
        while want is not None and state != want and time.monotonic() < end:
            time.sleep(0.05)
            state = self.status()
        timings["total_s"] = round(time.monotonic() - t0, 3)
        evidence = EVIDENCE[act]
        proven = evidence == "status" and (want is None or state == want)
        return PowerResult(act, state if state in ("on", "off") else "unknown", evidence, proven,
                           detail=f"{act} via {self.describe()}", timings_s=timings)

    def guid(self) -> str:
        reply = self.request("guid")
        if not reply.get("ok"):
            raise TargetError(f"{self.describe()}: {reply.get('error', 'no GUID')}")
        return normalise_guid(str(reply.get("guid", "")))

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if self._sock is not None:
                self._sock.close()
        except OSError:
            pass
        self._sock = None
        self._file = None
