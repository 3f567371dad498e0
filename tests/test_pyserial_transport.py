"""PySerialTransport against real peers: loop://, a socat pty, a TCP server, pyserial's RFC 2217 server."""

from __future__ import annotations

import json
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consolebot.errors import (
    EXIT_BUSY,
    EXIT_UNREACHABLE,
    BreakUnsupported,
    ConsoleBusy,
    ConsoleClosed,
    ConsoleUnreachable,
    UsageError,
)
from consolebot.transport.base import Ability, Transport
from consolebot.transport.pyserial_port import PySerialTransport, is_pty
from consolebot.transport.registry import transport_for
from tests.peers.serial_peers import (
    PtyEnd,
    PtyPair,
    echo_peer_command,
    free_port,
    rfc2217_peer,
    rfc2217_server,
    serial_pty_peer,
    socat_pty_pair,
    tcp_echo_server,
    wait_pending_input,
)

pytestmark = [
    pytest.mark.timeout(30),
    # pyserial 3.5's RFC 2217 client names its reader thread the old way
    pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning"),
]


def read_until(t: Transport, expected: bytes, timeout_s: float = 5.0) -> bytes:
    """Read through the transport (event waits on its fileno) until ``expected`` arrived."""
    import time

    got = b""
    end = time.monotonic() + timeout_s
    while expected not in got:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{expected!r} not received from {t.describe()}; got {got!r}")
        got += t.read(timeout_s=remaining)
    return got


def readable(fd: int, timeout_s: float = 0.0) -> bool:
    return bool(select.select([fd], [], [], timeout_s)[0])


def assert_one_line(exc: BaseException, *needles: str) -> None:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and "SerialException" not in text, text
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def pair() -> Iterator[PtyPair]:
    with socat_pty_pair() as p:
        yield p


# -- loop:// ---------------------------------------------------------------------------------------
def test_loop_round_trip_wakeup_and_no_break() -> None:
    t = transport_for("loop://")
    assert isinstance(t, PySerialTransport)
    assert not t.has(Ability.BREAK) and t.has(Ability.POLLABLE)
    with t:
        fd = t.fileno()
        assert not readable(fd)
        t.write(b"hello loop\n")
        assert readable(fd, 2.0), "write into loop:// must make fileno() readable"
        assert read_until(t, b"hello loop\n") == b"hello loop\n"
        assert not readable(fd), "after the queue is drained the wakeup must be clear"
        big = bytes(range(256)) * 64  # more than pyserial's default 4096-byte loop queue
        t.write(big)
        assert read_until(t, big[-300:]) == big
        with pytest.raises(BreakUnsupported, match="loop://"):
            t.send_break()
    t.close()  # idempotent
    assert t.closed
    with pytest.raises(ConsoleClosed):
        t.read_available()


# -- a pseudo-terminal device -------------------------------------------------------------------------
@pytest.mark.peer
def test_pty_device_keeps_early_input_and_moves_data_both_ways(pair: PtyPair) -> None:
    with PtyEnd(pair.far) as far:
        far.write(b"early boot line\r\n")
        wait_pending_input(pair.near, len(b"early boot line\r\n"))  # queued before we open
        with transport_for(f"serial://{pair.near}?baud=115200") as t:
            assert read_until(t, b"early boot line\r\n") == b"early boot line\r\n", "open() flushed input"
            t.write(b"root\r")
            assert far.read_until(b"root\r") == b"root\r"
            far.write(b"Password: ")
            assert read_until(t, b"Password: ") == b"Password: "
            payload = bytes(range(256))  # raw: no byte is translated by the line discipline
            far.write(payload)
            assert read_until(t, payload) == payload
            t.write(payload)
            assert far.read_until(payload) == payload


@pytest.mark.peer
def test_pty_device_is_exclusive_and_cannot_break(pair: PtyPair) -> None:
    assert is_pty(pair.near)
    first = PySerialTransport.from_url(f"serial://{pair.near}")
    assert first.has(Ability.EXCLUSIVE) and not first.has(Ability.BREAK)
    with first:
        assert first.is_pty
        second = transport_for(f"serial://{pair.near}")
        with pytest.raises(ConsoleBusy) as busy:
            second.open()
        assert busy.value.exit_code == EXIT_BUSY == 5
        assert_one_line(busy.value, pair.near, "in use")
        assert second.closed
        with pytest.raises(BreakUnsupported):
            first.send_break()
    # the lock goes with the first opener
    with transport_for(f"serial://{pair.near}") as again:
        assert not again.closed


@pytest.mark.peer
def test_pty_peer_command_round_trip_and_end_of_stream() -> None:
    with serial_pty_peer(echo_peer_command()) as device:
        with transport_for(f"serial://{device}") as t:
            assert read_until(t, b"PEER READY\r\n")
            t.write(b"ping\n")
            assert read_until(t, b"PING\n")
            t.write(b"quit\n")  # the peer exits, socat exits, the pty reports EIO
            with pytest.raises(ConsoleClosed) as closed:
                read_until(t, b"never arrives", timeout_s=10)
            assert_one_line(closed.value, device)
            assert t.closed


def test_missing_device_is_unreachable() -> None:
    path = "/dev/consolebot-no-such-tty"
    t = transport_for(path)
    with pytest.raises(ConsoleUnreachable) as exc:
        t.open()
    assert exc.value.exit_code == EXIT_UNREACHABLE
    assert_one_line(exc.value, path, "no such device")
    assert t.closed


def test_not_a_tty_is_unreachable() -> None:
    with pytest.raises(ConsoleUnreachable) as exc:
        transport_for("serial:///dev/null").open()
    assert_one_line(exc.value, "/dev/null", "not a serial device")


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("serial:///dev/ttyS0?baud=fast", "'baud'"),
        ("serial:///dev/ttyS0?parity=X", "'parity'"),
        ("serial:///dev/ttyS0?bytesize=9", "'bytesize'"),
        ("serial:///dev/ttyS0?stopbits=3", "'stopbits'"),
        ("serial:///dev/ttyS0?rtscts=maybe", "'rtscts'"),
        ("serial:///dev/ttyS0?rtscts=1&xonxoff=1", "'xonxoff'"),
        ("serial:///dev/ttyS0?speed=9600", "'speed'"),
        ("serial://dev/ttyS0", "three slashes"),
        ("socket://localhost", "no port"),
        ("socket://localhost:23?baud=9600", "'baud'"),
        ("rfc2217://localhost:x", "port"),
        ("rfc2217://localhost:2217?timeout=soon", "'timeout'"),
        ("loop://?baud=1", "'baud'"),
    ],
)
def test_bad_addresses_name_the_problem(address: str, needle: str) -> None:
    with pytest.raises(UsageError) as exc:
        transport_for(address)
    assert_one_line(exc.value, needle)


def test_settings_and_description() -> None:
    t = PySerialTransport.from_url(
        "serial:///dev/ttyUSB0?baud=9600&parity=e&bytesize=7&stopbits=2&xonxoff=yes"
    )
    assert t.settings == {
        "baudrate": 9600,
        "parity": "E",
        "bytesize": 7,
        "stopbits": 2,
        "xonxoff": True,
        "exclusive": True,
    }
    assert t.has(Ability.BREAK) and t.has(Ability.EXCLUSIVE)  # not a pty (does not even exist)
    assert PySerialTransport.from_url("serial:///dev/ttyS0").settings["baudrate"] == 115200
    r = PySerialTransport.from_url("rfc2217://admin:hunter2@console.example:7001?baud=9600")
    assert "hunter2" not in r.describe() and "admin" not in r.describe() and "hunter2" not in r.pyserial_url
    assert r.describe() == "rfc2217://console.example:7001?baud=9600"
    assert r.has(Ability.BREAK) and not r.has(Ability.EXCLUSIVE)
    with pytest.raises(UsageError) as bad:
        PySerialTransport.from_url("rfc2217://admin:hunter2@console.example:7001?baud=x")
    assert "hunter2" not in str(bad.value) and "'baud'" in str(bad.value)
    s = PySerialTransport.from_url("socket://console.example:7002")
    assert not s.has(Ability.BREAK)


# -- socket:// -----------------------------------------------------------------------------------------
def test_socket_round_trip_keeps_banner_and_has_no_break() -> None:
    with tcp_echo_server(banner=b"ser2net port 7002\r\n") as server:
        t = transport_for(server.url)
        assert not t.has(Ability.BREAK)
        with t:
            assert read_until(t, b"ser2net port 7002\r\n"), "open() discarded the banner"
            t.write(b"hello\r")
            assert read_until(t, b"HELLO\r")
            with pytest.raises(BreakUnsupported):
                t.send_break()
            server.drop_client()
            with pytest.raises(ConsoleClosed):
                read_until(t, b"never", timeout_s=5)
        assert bytes(server.received) == b"hello\r"


@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_refused_port_is_unreachable_in_one_line(scheme: str) -> None:
    port = free_port()
    t = transport_for(f"{scheme}://127.0.0.1:{port}")
    with pytest.raises(ConsoleUnreachable) as exc:
        t.open()
    assert exc.value.exit_code == EXIT_UNREACHABLE
    assert_one_line(exc.value, f"{scheme}://127.0.0.1:{port}", "connection refused")
    assert "Errno" not in str(exc.value)
    assert t.closed


# -- rfc2217:// ----------------------------------------------------------------------------------------
@pytest.mark.peer
def test_rfc2217_both_ways_break_travels_and_no_purge(pair: PtyPair) -> None:
    with PtyEnd(pair.far) as far, rfc2217_server(pair.near, baudrate=115200) as server:
        far.write(b"boot log before the client\r\n")
        wait_pending_input(pair.near, 10)
        t = transport_for(server.url)
        assert t.has(Ability.BREAK)
        with t:
            fd = t.fileno()
            assert read_until(t, b"boot log before the client\r\n")
            assert server.input_purges == 0, "the client asked the server to flush the port"
            assert server.serial.baudrate == 115200, "no baud given: the remote port must be left alone"
            t.write(b"root\r\xff")  # 0xff must be IAC-escaped on the way and arrive once
            assert far.read_until(b"root\r\xff") == b"root\r\xff"
            far.write(b"login: \xff")
            assert read_until(t, b"login: \xff") == b"login: \xff"
            assert not readable(fd), "wakeup pipe left readable after draining"
            t.send_break()
            assert server.wait_break(5.0)
            assert server.breaks[-2:] == [True, False]
            server.drop_client()
            with pytest.raises(ConsoleClosed) as closed:
                read_until(t, b"never", timeout_s=5)
            assert_one_line(closed.value, server.url)
        assert not server.errors, server.errors


@pytest.mark.peer
def test_rfc2217_line_settings_are_sent_when_given_and_a_refusal_is_one_line(pair: PtyPair) -> None:
    with rfc2217_server(pair.near, baudrate=115200) as server:
        with transport_for(f"{server.url}?baud=57600&stopbits=2") as t:
            assert not t.closed
            assert server.serial.baudrate == 57600 and server.serial.stopbits == 2
        # a pty cannot do 7 data bits: the server keeps 8 and says so; pyserial calls that a rejection
        t = transport_for(f"{server.url}?bytesize=7")
        with pytest.raises(ConsoleUnreachable) as exc:
            t.open()
        assert_one_line(exc.value, server.url, "refused the line setting")
        assert t.closed


def test_rfc2217_against_a_plain_tcp_port_is_unreachable() -> None:
    with tcp_echo_server(banner=b"login: ", echo=False) as server:
        with pytest.raises(ConsoleUnreachable) as exc:
            transport_for(f"rfc2217://127.0.0.1:{server.port}?timeout=0.5").open()
        assert_one_line(exc.value, "does not speak RFC 2217")


def test_peer_helpers_clean_up() -> None:
    with socat_pty_pair() as p:
        pid = p.socat.pid
        assert os.path.exists(p.near)
    assert p.socat.poll() is not None, f"socat {pid} still running"
    assert not os.path.exists(p.near)


@pytest.mark.peer
def test_simulator_behind_rfc2217_gets_break_and_key(tmp_path: Path) -> None:
    """The lab simulator on a pty behind the RFC 2217 server: boot log kept, BREAK + h reaches it."""
    act_log = tmp_path / "act.jsonl"
    command = [
        sys.executable, "-m", "consolebot", "lab", "serve", "--stdio", "--no-wait", "--line-delay-ms", "1",
        "--break-sequence", "\\x1b#B", "--act-log", str(act_log),
    ]  # fmt: skip
    with rfc2217_peer(command, break_bytes=b"\x1b#B") as server:
        with transport_for(server.url) as t:
            assert read_until(t, b"login: ", timeout_s=15)
            t.send_break()
            t.write(b"h")
            assert read_until(t, b"show-memory-usage(m)")
        assert server.breaks == [True, False] and server.input_purges == 0
    acts = [json.loads(line) for line in act_log.read_text().splitlines()]
    kinds = [a["act"] for a in acts]
    assert "break" in kinds and {"act": "sysrq", "key": "h"}.items() <= acts[kinds.index("break") + 1].items()
