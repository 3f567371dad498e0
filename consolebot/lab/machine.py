"""A simulated Linux machine behind a serial console.

The machine is a state machine driven by an asyncio loop: it replays a boot in
the real bytes of ``data/boots``, shows a getty and a ``login``, runs a tiny
shell, and answers BREAK + key as the Linux 8250 driver and ``drivers/tty/sysrq.c``
do. It never executes anything on the machine running it. Everything it sends
goes to ``output`` (the servers broadcast it to every client and to the send log);
every input and BREAK goes to the act log.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.resources
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Linux SysRq enable bits (Documentation/admin-guide/sysrq.rst).
SYSRQ_LOG = 0x2
SYSRQ_KEYBOARD = 0x4
SYSRQ_DUMP = 0x8
SYSRQ_SYNC = 0x10
SYSRQ_REMOUNT = 0x20
SYSRQ_SIGNAL = 0x40
SYSRQ_BOOT = 0x80
SYSRQ_RTNICE = 0x100

# key -> (enable bit, acknowledgement printed after "sysrq: ", follow-up line or None)
SYSRQ_KEYS: dict[str, tuple[int, str, str | None]] = {
    "b": (SYSRQ_BOOT, "Resetting", None),
    "o": (SYSRQ_BOOT, "Power Off", None),
    "s": (SYSRQ_SYNC, "Emergency Sync", "Emergency Sync complete"),
    "u": (SYSRQ_REMOUNT, "Emergency Remount R/O", "Emergency Remount complete"),
    "e": (SYSRQ_SIGNAL, "Terminate All Tasks", None),
    "i": (SYSRQ_SIGNAL, "Kill All Tasks", None),
    "t": (SYSRQ_DUMP, "Show State", None),
    "w": (SYSRQ_DUMP, "Show Blocked State", None),
    "m": (SYSRQ_DUMP, "Show Memory", None),
    "l": (SYSRQ_DUMP, "Show backtrace of all active CPUs", None),
    "c": (SYSRQ_DUMP, "Trigger a crash", None),
    "r": (SYSRQ_KEYBOARD, "Keyboard mode set to system default", None),
    "n": (SYSRQ_RTNICE, "Nice All RT Tasks", None),
}
SYSRQ_HELP = (
    "sysrq: HELP : loglevel(0-9) reboot(b) crash(c) terminate-all-tasks(e) memory-full-oom-kill(f) "
    "kill-all-tasks(i) thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) show-memory-usage(m) "
    "nice-all-RT-tasks(n) poweroff(o) show-registers(p) show-all-timers(q) unraw(r) sync(s) "
    "show-task-states(t) unmount(u) show-blocked-tasks(w) dump-ftrace-buffer(z)"
)
SYSRQ_WINDOW_S = 5.0  # the kernel takes the key within 5 s of a BREAK


class State(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    LOGIN = "login"
    PASSWORD = "password"
    SHELL = "shell"
    HUNG = "hung"


@dataclass
class MachineConfig:
    """What the simulated machine is and how it behaves."""

    name: str = "deleuze"
    console_hostname: str = "deleuze-sim"
    tty: str = "ttyS1"
    password: str = "labpass"
    sysrq_mask: int = 1
    line_delay_s: float = 0.004
    login_fail_delay_s: float = 1.0
    boot: str = "clean_boot.raw"
    wait_for_client: bool = True
    send_log: str | None = None
    act_log: str | None = None


def load_boot(name: str) -> list[bytes]:
    """Given a boot file name in package data, return its lines (line ends kept)."""
    data = importlib.resources.files("consolebot.data.boots").joinpath(name).read_bytes()
    return data.splitlines(keepends=True)


class _JsonLog:
    def __init__(self, path: str | None) -> None:
        self._fd: int | None = None
        if path:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, **obj: Any) -> None:
        if self._fd is not None:
            obj = {"t": time.time(), **obj}
            os.write(self._fd, (json.dumps(obj) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Machine:
    """Given a config and an output callback, simulate the console side of a server."""

    config: MachineConfig
    output: Callable[[bytes], None]
    state: State = State.OFF
    boot_count: int = 0
    _line: bytearray = field(default_factory=bytearray)
    _user: str = ""
    _last_status: int = 0
    _prompt: str = ""
    _sysrq_armed_until: float = 0.0
    _boot_started: float = 0.0
    _task: asyncio.Task[None] | None = None
    _break_seq_buf: bytes = b""

    def __post_init__(self) -> None:
        self._send_log = _JsonLog(self.config.send_log)
        self._act_log = _JsonLog(self.config.act_log)

    # -- output --------------------------------------------------------------------
    def emit(self, data: bytes) -> None:
        self._send_log.write(text=data.decode("latin-1"))
        self.output(data)

    def _kernel_ts(self) -> str:
        return f"[{time.monotonic() - self._boot_started:12.6f}]"

    def kmsg(self, text: str) -> None:
        self.emit(f"{self._kernel_ts()} {text}\r\n".encode())

    # -- lifecycle -----------------------------------------------------------------
    def power_on(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._boot())

    def client_connected(self) -> None:
        self._act_log.write(act="connect")
        if self.state is State.OFF and self.config.wait_for_client:
            self.power_on()

    def client_disconnected(self) -> None:
        self._act_log.write(act="disconnect")

    async def _boot(self) -> None:
        self.state = State.BOOTING
        self.boot_count += 1
        self._boot_started = time.monotonic()
        self._act_log.write(act="boot", count=self.boot_count)
        for line in load_boot(self.config.boot):
            self.emit(line)
            if self.config.line_delay_s:
                await asyncio.sleep(self.config.line_delay_s)
        self._getty()

    def _getty(self) -> None:
        host = self.config.console_hostname
        self.emit(f"Debian GNU/Linux 12 {host} {self.config.tty}\r\n\r\n".encode())
        self._login_prompt()

    def _login_prompt(self) -> None:
        self.state = State.LOGIN
        self._line.clear()
        self.emit(f"{self.config.console_hostname} login: ".encode())

    def reset(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.state = State.OFF
        self._line.clear()
        self._task = asyncio.get_running_loop().create_task(self._boot())

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._send_log.close()
        self._act_log.close()

    # -- input -----------------------------------------------------------------------
    def on_break(self) -> None:
        """A serial BREAK: arm SysRq for the next key (the 8250 driver's behaviour)."""
        self._act_log.write(act="break")
        self._sysrq_armed_until = time.monotonic() + SYSRQ_WINDOW_S

    def feed(self, data: bytes) -> None:
        for i in range(len(data)):
            ch = data[i : i + 1]
            if self._sysrq_armed_until and time.monotonic() <= self._sysrq_armed_until:
                self._sysrq_armed_until = 0.0
                if self._sysrq(ch.decode("latin-1")):
                    continue
            self._sysrq_armed_until = 0.0
            self._char(ch)

    def _sysrq(self, key: str) -> bool:
        """Handle a key after BREAK; return True when the kernel consumed it."""
        mask = self.config.sysrq_mask
        if mask == 0:
            self._act_log.write(act="sysrq", key=key, result="ignored-disabled")
            return False  # the key reaches the tty
        self._act_log.write(act="sysrq", key=key)
        if key in SYSRQ_KEYS:
            bit, ack, follow = SYSRQ_KEYS[key]
            if mask != 1 and not (mask & bit):
                self.kmsg("sysrq: This sysrq operation is disabled.")
                return True
            self.kmsg(f"sysrq: {ack}")
            if follow:
                self.kmsg(follow)
            if key == "b":
                self.reset()
            return True
        if key.isdigit():
            if mask != 1 and not (mask & SYSRQ_LOG):
                self.kmsg("sysrq: This sysrq operation is disabled.")
            else:
                self.kmsg(f"sysrq: Changing Loglevel\r\n{self._kernel_ts()} sysrq: Loglevel set to {key}")
            return True
        self.kmsg(SYSRQ_HELP)
        return True

    def _char(self, ch: bytes) -> None:
        state = self.state
        if state in (State.OFF, State.BOOTING, State.HUNG):
            return
        if ch in (b"\r", b"\n"):
            if ch == b"\n" and getattr(self, "_last_cr", False):
                self._last_cr = False
                return
            self._last_cr = ch == b"\r"
            line = self._line.decode("utf-8", "replace")
            self._line.clear()
            self._act_log.write(act="line", state=state.value, text=line if state is not State.PASSWORD else "<password>")
            self._enter(line)
            return
        self._last_cr = False
        if ch in (b"\x7f", b"\x08"):
            if self._line:
                self._line.pop()
                if state is not State.PASSWORD:
                    self.emit(b"\x08 \x08")
            return
        if ch == b"\x15":  # Ctrl-U: kill the line
            n = len(self._line)
            self._line.clear()
            if state is not State.PASSWORD and n:
                self.emit(b"\x08 \x08" * n)
            return
        if ch == b"\x03":  # Ctrl-C
            self._line.clear()
            if state is State.SHELL:
                self.emit(b"^C\r\n")
                self._shell_prompt()
            return
        self._line += ch
        if state is not State.PASSWORD:
            self.emit(ch)

    def _enter(self, line: str) -> None:
        if self.state is State.LOGIN:
            self.emit(b"\r\n")
            if not line.strip():
                self._login_prompt()
                return
            self._user = line.strip()
            self.state = State.PASSWORD
            self.emit(b"Password: ")
        elif self.state is State.PASSWORD:
            self.emit(b"\r\n")
            ok = self._user == "root" and line == self.config.password
            self._act_log.write(act="password", user=self._user, accepted=ok)
            if ok:
                self._logged_in()
            else:
                self.state = State.OFF  # input ignored during the failure delay
                asyncio.get_running_loop().call_later(self.config.login_fail_delay_s, self._login_failed)
        elif self.state is State.SHELL:
            self.emit(b"\r\n")
            self._run(line)

    def _login_failed(self) -> None:
        self.emit(b"Login incorrect\r\n")
        self._login_prompt()

    def _logged_in(self) -> None:
        self.state = State.SHELL
        self.emit(
            f"Linux {self.config.console_hostname} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 "
            "(2024-02-01) x86_64\r\n\r\n".encode()
        )
        self._prompt = f"root@{self.config.console_hostname}:~# "
        self._shell_prompt()

    def _shell_prompt(self) -> None:
        self.emit(self._prompt.encode())

    # -- the shell -----------------------------------------------------------------------
    def _run(self, line: str) -> None:
        for part in [p.strip() for p in line.split(";")]:
            if not part:
                continue
            if part in ("exit", "logout"):
                self.emit(b"logout\r\n")
                self._getty()
                return
            self._last_status = self._command(part)
        self._shell_prompt()

    def _command(self, cmd: str) -> int:
        cmd = cmd.replace("$?", str(self._last_status))
        words = cmd.split()
        name = words[0]
        if name.startswith("PS1="):
            value = cmd[4:].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            self._prompt = value.replace("\\$", "#")
            return 0
        if name == "echo":
            self.emit((" ".join(w.strip("'\"") for w in words[1:]) + "\r\n").encode())
            return 0
        if name == "hostname":
            self.emit(f"{self.config.console_hostname}\r\n".encode())
            return 0
        if name == "true" or name == "stty":
            return 0
        if name == "false":
            return 1
        if name == "uname":
            self.emit(f"Linux {self.config.console_hostname} 6.1.0-18-amd64\r\n".encode())
            return 0
        self.emit(f"-bash: {name}: command not found\r\n".encode())
        return 127

