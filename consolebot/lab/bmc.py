"""The simulated BMC of a host: a line protocol on a loopback TCP port (its "control channel").

Protocol (one request per line, ASCII; one JSON object per reply line; the connection stays open):

    status            -> {"ok": true, "power": "on"|"off"}
    on | off          -> {"ok": true, "power": ...}           (off is a hard power-off: the next boot salvages)
    reset | cycle     -> {"ok": true, "power": "on"}          (refused when off: {"ok": false, "error": ...})
    diag              -> {"ok": true, "power": "on"}          (an NMI; the console shows the kernel's NMI lines)
    soft              -> {"ok": true, "power": ..., "acpi": true|false}  (power button: orderly halt if userspace runs)
    guid              -> {"ok": true, "guid": "<32 hex digits>"}
    info              -> {"ok": true, "host", "console_hostname", "guid", "power", "state", "scenario"}
    login             -> {"ok": true, "prompt": "..."}    (a new SSH login: refused, or never answered, as sshd does)
    ssh COMMAND       -> {"ok": true, "exit": N, "output": "...", "prompt": "..."}  (an SSH command, for ``--shell``)
    sshd MODE         -> {"ok": true, "sshd": MODE}       (accepts | refuses | hangs: how new logins fare from now on;
                                                           logins already made go on working, as a held shell does)
    quit              -> closes

Every request is recorded in the host's act log as {"act": "bmc", "cmd": ...}. Loopback only; no
authentication (nothing real is behind it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from consolebot.lab.commands import MachineSystem
from consolebot.lab.machine import Machine, State
from consolebot.lab.shell import Shell

ACTS = ("status", "on", "off", "reset", "cycle", "diag", "soft", "guid", "info", "login", "ssh", "sshd", "quit")


async def handle_request(m: Machine, line: str, session: dict[str, Any]) -> dict[str, Any] | None:
    """Given one request line, act and return the reply (None: close the connection)."""
    verb, _, arg = line.strip().partition(" ")
    verb = verb.lower()
    if not verb:
        return {"ok": False, "error": "empty request; try: " + " ".join(ACTS)}
    if verb in ("quit", "exit"):
        return None
    if verb not in ("ssh", "login", "sshd"):
        m.act("bmc", cmd=verb)
    power = lambda: "on" if m.powered else "off"  # noqa: E731
    if verb == "status":
        return {"ok": True, "power": power()}
    if verb == "guid":
        return {"ok": True, "guid": m.profile.guid}
    if verb == "info":
        return {"ok": True, "host": m.profile.name, "console_hostname": m.console_hostname, "guid": m.profile.guid,
                "power": power(), "state": m.state.value, "scenario": m.scenario}
    if verb == "on":
        m.power_on()
        return {"ok": True, "power": power()}
    if verb == "off":
        m.power_off()
        return {"ok": True, "power": power()}
    if verb in ("reset", "cycle", "diag"):
        if not m.powered:
            return {"ok": False, "error": f"chassis power is off: {verb} not possible in this state", "power": "off"}
        if verb == "reset":
            m.reset()
        elif verb == "cycle":
            m.spawn(m.cycle())
        else:
            m.diag()
        return {"ok": True, "power": "on"}
    if verb == "soft":
        acpi = m.soft_off() if m.powered else False
        return {"ok": True, "power": power(), "acpi": acpi}
    if verb == "ssh":
        return await _ssh(m, arg, session)
    if verb == "login":
        return await _login(m, session)
    if verb == "sshd":
        from consolebot.lab.config import SSHD_MODES

        if arg.strip() not in SSHD_MODES:
            return {"ok": False, "error": f"sshd wants one of {', '.join(SSHD_MODES)}"}
        m.sshd_mode = arg.strip()
        m.act("sshd", mode=m.sshd_mode)
        return {"ok": True, "sshd": m.sshd_mode}
    return {"ok": False, "error": f"unknown request {verb!r}; try: " + " ".join(ACTS)}


async def _login(m: Machine, session: dict[str, Any]) -> dict[str, Any]:
    """A new SSH login; a session that already has its shell keeps it whatever sshd does now."""
    shell = session.get("shell")
    host = m.console_hostname
    if isinstance(shell, Shell):
        if session.get("boot") != m.boot_count or not m.powered:
            session.pop("shell")
            return {"ok": False, "exit": 255, "error": f"Connection to {host} closed by remote host."}
        if m.state in (State.HUNG, State.PANIC):
            await asyncio.Event().wait()  # the kernel is wedged: the held session hangs with it
        return {"ok": True, "prompt": shell.prompt()}
    if not m.powered or m.state in (State.OFF, State.BOOTING, State.SHUTDOWN):
        return {"ok": False, "exit": 255, "error": f"ssh: connect to host {host} port 22: Connection refused"}
    if m.state in (State.HUNG, State.PANIC, State.LOGIN_HANG) or m.nss_hang or m.sshd_mode == "hangs":
        m.act("ssh-login", outcome="hangs")
        await asyncio.Event().wait()  # sshd accepts, then hangs in NSS lookups: never answers
    if m.sshd_mode == "refuses":
        m.act("ssh-login", outcome="refused")
        return {"ok": False, "exit": 255, "error": f"root@{host}: Permission denied (publickey,password)."}
    shell = Shell(MachineSystem(m, console=False), interactive=False, name="bash", pid=m.next_pid())
    session["shell"] = shell
    session["boot"] = m.boot_count
    m.act("ssh-login", outcome="accepted")
    return {"ok": True, "prompt": shell.prompt()}


async def _ssh(m: Machine, command: str, session: dict[str, Any]) -> dict[str, Any]:
    m.act("ssh", text=command)
    reply = await _login(m, session)
    if not reply.get("ok"):
        return reply
    shell = session["shell"]
    status, output = await m.remote_command(shell, command)
    return {"ok": True, "exit": status, "output": output, "prompt": shell.prompt()}


async def serve_bmc_client(m: Machine, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session: dict[str, Any] = {}
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                break
            reply = await handle_request(m, raw.decode("utf-8", "replace"), session)
            if reply is None:
                break
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
