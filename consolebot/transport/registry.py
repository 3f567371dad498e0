"""Console addresses (URLs) to transports: the one place that names concrete classes.

Schemes:

* ``telnet://HOST:PORT``: telnet (BREAK as ``IAC BRK``)
* ``socket://HOST:PORT``: raw TCP through pyserial (no BREAK)
* ``rfc2217://HOST:PORT``: RFC 2217 through pyserial (BREAK)
* ``serial:///dev/ttyS0?baud=115200`` or a bare ``/dev/...`` path: a local serial device, opened exclusive
* ``loop://``: pyserial's loopback (tests; no BREAK)
* ``exec:COMMAND ARGS...``: any command that yields a console on its stdin/stdout (pexpect)
* ``ssh://[USER@]HOST[:PORT][?break=SEQ&identity=FILE]``: a console server over OpenSSH
* ``conserver://[USER@]MASTER[:PORT]/CONSOLE``: conserver's ``console`` client
"""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Callable

from consolebot.errors import UsageError
from consolebot.transport.base import Transport


def _hostport(url: urllib.parse.SplitResult, raw: str, default_port: int | None = None) -> tuple[str, int]:
    host = url.hostname
    try:
        port = url.port
    except ValueError:
        raise UsageError(f"console address {raw!r}: the port is not a number") from None
    if not host:
        raise UsageError(f"console address {raw!r}: no host; write it as {url.scheme}://HOST:PORT")
    if port is None:
        if default_port is None:
            raise UsageError(f"console address {raw!r}: no port; write it as {url.scheme}://HOST:PORT")
        port = default_port
    return host, port


def _telnet(raw: str, url: urllib.parse.SplitResult, opts: dict[str, str]) -> Transport:
    from consolebot.transport.telnet import TelnetTransport

    host, port = _hostport(url, raw, 23)
    return TelnetTransport(host, port)


def _pyserial(raw: str, url: urllib.parse.SplitResult, opts: dict[str, str]) -> Transport:
    from consolebot.transport.pyserial_port import PySerialTransport

    return PySerialTransport.from_url(raw)


def _exec(raw: str, url: urllib.parse.SplitResult, opts: dict[str, str]) -> Transport:
    from consolebot.transport.process import ExecTransport

    command = raw[len("exec:") :].strip()
    if not command:
        raise UsageError(f"console address {raw!r}: no command after 'exec:'")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"console address {raw!r}: cannot split the command: {exc}") from None
    return ExecTransport(argv, break_sequence=opts.get("break_sequence"))


def _ssh(raw: str, url: urllib.parse.SplitResult, opts: dict[str, str]) -> Transport:
    from consolebot.transport.process import SshTransport

    host, port = _hostport(url, raw, 22)
    query = dict(urllib.parse.parse_qsl(url.query))
    return SshTransport(
        host,
        port,
        user=url.username,
        break_sequence=opts.get("break_sequence", query.get("break")),
        identity=query.get("identity"),
        options=query,
    )


def _conserver(raw: str, url: urllib.parse.SplitResult, opts: dict[str, str]) -> Transport:
    from consolebot.transport.process import ConserverTransport

    host, port = _hostport(url, raw, 782)
    console = url.path.lstrip("/")
    if not console:
        raise UsageError(f"console address {raw!r}: no console name; write conserver://MASTER:PORT/CONSOLE")
    return ConserverTransport(host, port, console, user=url.username)


SCHEMES: dict[str, Callable[[str, urllib.parse.SplitResult, dict[str, str]], Transport]] = {
    "telnet": _telnet,
    "socket": _pyserial,
    "rfc2217": _pyserial,
    "serial": _pyserial,
    "loop": _pyserial,
    "exec": _exec,
    "ssh": _ssh,
    "conserver": _conserver,
}


def transport_for(address: str, **opts: str) -> Transport:
    """Given a console address, return an unopened transport; ``UsageError`` names a bad address."""
    raw = address.strip()
    if raw.startswith("/dev/"):
        raw = "serial://" + raw
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise UsageError(f"unknown console transport in {address!r}; use one of: {known} (or a /dev/ path)")
    url = urllib.parse.urlsplit(raw)
    return SCHEMES[scheme](raw, url, opts)
