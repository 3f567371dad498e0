"""The process transports (``exec:``, ``ssh://``, ``conserver://``) against real programs.

The ``exec`` tests run small Python peers; the ``ssh`` tests a real OpenSSH
server (``sshd``) on loopback; the ``conserver`` tests Debian's conserver in
front of a telnet echo console. Tests marked ``peer`` need openssh-server,
openssh-client, conserver-server and conserver-client installed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
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
from consolebot.secrets.secret import Secret
from consolebot.transport.base import Ability, Transport
from consolebot.transport.process import (
    ConserverTransport,
    ExecTransport,
    SshTransport,
    decode_sequence,
)
from consolebot.transport.registry import transport_for
from tests.peers.process_peers import (
    ECHO_READY,
    ConserverPeer,
    SshdPeer,
    TelnetPeer,
    conserver_peer,
    echo_argv,
    echo_command,
    free_port,
    sshd_peer,
    telnet_peer,
)

SIM = [sys.executable, "-m", "consolebot", "lab", "serve", "--stdio", "--line-delay-ms", "1"]
BREAK_SEQ = "\\x05cl1"


def read_until(t: Transport, needle: bytes, timeout_s: float = 5.0) -> bytes:
    """Read until ``needle`` arrives (or fail, showing what did)."""
    out = b""
    end = time.monotonic() + timeout_s
    while needle not in out:
        remaining = end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{needle!r} did not arrive within {timeout_s} s; got {out[-500:]!r}")
        out += t.read(65536, min(remaining, 0.2))
    return out


def read_for(t: Transport, seconds: float) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += t.read(65536, 0.05)
    return out


def wait_for(cond: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def gone(pid: int) -> bool:
    """True when ``pid`` no longer exists (not even as a zombie)."""
    return not os.path.exists(f"/proc/{pid}")


def open_and_drain(t: Transport, timeout_s: float = 10.0) -> None:
    """Open ``t`` and read until it raises (the test expects it to)."""
    t.open()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        t.read(65536, 0.2)
    pytest.fail(f"{t.describe()} stayed open")


def one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, repr(message)


# -- sequences and escaping (no processes) -------------------------------------------------
def test_decode_sequence() -> None:
    assert decode_sequence("\\x05cl1") == b"\x05cl1"
    assert decode_sequence("~B") == b"~B"
    assert decode_sequence("\\x00") == b"\x00"
    assert decode_sequence("\\0") == b"\x00"
    assert decode_sequence("\\005c") == b"\x05c"
    assert decode_sequence("\\r~^b") == b"\r~\x02"
    assert decode_sequence("^E^?^^\\\\\\e\\t") == b"\x05\x7f^\\\x1b\t"
    for bad in ("", "\\", "\\q", "\\x5", "\\xzz", "\\777"):
        with pytest.raises(UsageError):
            decode_sequence(bad)


def test_ssh_escape_doubles_tilde_only_where_ssh_sees_it() -> None:
    t = SshTransport("127.0.0.1", 22, break_sequence="rfc4335")
    assert t.client_escape == "~" and Ability.BREAK in t.abilities
    assert "-e" in t.argv and t.argv[t.argv.index("-e") + 1] == "~"
    assert t._encode(b"~.") == b"~~."  # the session starts "after a newline"
    assert t._encode(b"a~b\r~.\n~~") == b"a~b\r~~.\n~~~"
    assert t._encode(b"x\r") == b"x\r"
    assert t._encode(b"~") == b"~~"  # the line start carries across writes
    plain = SshTransport("127.0.0.1", 22)
    assert plain.client_escape is None and Ability.BREAK not in plain.abilities
    assert plain.argv[plain.argv.index("-e") + 1] == "none"
    assert plain._encode(b"\r~.") == b"\r~."


def test_ssh_refuses_command_options_and_bad_names() -> None:
    with pytest.raises(UsageError, match="ProxyCommand"):
        SshTransport("h", 22, options={"ProxyCommand": "sh -c evil"})
    with pytest.raises(UsageError):
        SshTransport("-oProxyCommand=evil", 22)
    t = SshTransport("h", 2222, user="admin", options={"known_hosts": "/k", "break": "x", "identity": "/i"})
    assert "UserKnownHostsFile=/k" in t.argv and t.argv[-2:] == ["--", "h"]
    assert t.describe() == "ssh://admin@h:2222"


def test_conserver_quotes_only_a_pairable_ctrl_e_and_strips_its_acks() -> None:
    t = ConserverTransport("127.0.0.1", 782, "c")
    assert t.client_escape == "^Ec"
    assert t._encode(b"plain") == b"plain"
    assert t._encode(b"a\x05xb") == b"a\x05xb"  # ^E then not "c": harmless
    assert t._encode(b"a\x05c.") == b"a\x05c\\005c."
    assert t._encode(b"a\x05") == b"a\x05c\\005"  # a trailing ^E would pair with the next write
    assert t._encode(b"\x05\x05c") == b"\x05\x05c\\005c"
    t._acks.clear()
    t._expect(b"[quote \\005]")
    t._expect(b"[halt sent]\r\n")
    assert t._filter(b"x[quote \\0", final=False) == b"x"  # a possible ack start is held
    assert t._filter(b"05]y[hal", final=False) == b"y"
    assert t._filter(b"t sent]\r\nz", final=False) == b"z"
    assert t._filter(b"[not an ack]", final=False) == b"[not an ack]"


# -- exec ------------------------------------------------------------------------------------
@pytest.fixture
def echo_exec(tmp_path: Path) -> Iterator[tuple[ExecTransport, Path]]:
    log = tmp_path / "echo.log"
    t = ExecTransport(echo_argv(log))
    t.open()
    try:
        read_until(t, ECHO_READY + b"\r\n")
        yield t, log
    finally:
        t.close()


def test_exec_round_trip_keeps_every_byte(echo_exec: tuple[ExecTransport, Path]) -> None:
    t, log = echo_exec
    payload = b"a\rb\nc\r\n\x00\xff\x03\x04\x11\x13\x1a\x1c\x7f" + bytes(range(256))
    t.write(payload)
    got = read_until(t, payload[-16:])
    assert got == payload
    assert log.read_bytes() == payload


def test_exec_without_break_sequence_cannot_break(echo_exec: tuple[ExecTransport, Path]) -> None:
    t, log = echo_exec
    assert Ability.BREAK not in t.abilities
    with pytest.raises(BreakUnsupported):
        t.send_break()
    t.write(b"still\r")
    assert read_until(t, b"still\r") == b"still\r"


def test_exec_break_sequence_is_written_in_band(tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    cmd = "exec:" + " ".join(echo_argv(log))
    t = transport_for(cmd, break_sequence=BREAK_SEQ)
    assert isinstance(t, ExecTransport) and Ability.BREAK in t.abilities
    with t:
        read_until(t, ECHO_READY + b"\r\n")
        t.write(b"x")
        t.send_break()
        t.write(b"b")
        assert read_until(t, b"b") == b"x\x05cl1b"
    assert log.read_bytes() == b"x\x05cl1b"


def test_exec_secrets_go_through_the_environment_only(tmp_path: Path) -> None:
    secret = "s3cret-In-Env!"
    code = "import os,sys; sys.stdout.write(os.environ['CB_PW'] + '\\r\\n'); sys.stdout.flush(); sys.stdin.read()"
    t = ExecTransport([sys.executable, "-c", code], env_secrets={"CB_PW": Secret(secret, "test")})
    with t:
        assert secret.encode() in read_until(t, b"\r\n")
        pid = t._child.pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert secret.encode() not in f.read()
        assert secret not in t.describe() and secret not in repr(t)
    assert wait_for(lambda: gone(pid))


def test_exec_command_that_cannot_start_or_dies_at_once_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(ConsoleUnreachable) as e1:
        ExecTransport([str(tmp_path / "no-such-program")]).open()
    one_line(str(e1.value))
    assert e1.value.exit_code == EXIT_UNREACHABLE
    t = ExecTransport(["sh", "-c", "echo 'ipmi: no such host' >&2; exit 3"])
    with pytest.raises(ConsoleUnreachable) as e2:
        t.open()
    one_line(str(e2.value))
    assert "exit status 3" in str(e2.value) and "ipmi: no such host" in str(e2.value)
    assert t.closed


def test_exec_client_that_reports_a_busy_console_is_console_busy() -> None:
    t = ExecTransport(["sh", "-c", "echo 'Info: SOL payload already active on another session'; exit 1"])
    with pytest.raises(ConsoleBusy) as e:
        open_and_drain(t)
    one_line(str(e.value))
    assert e.value.exit_code == EXIT_BUSY and "already active" in str(e.value)
    assert t.closed


def test_exec_end_of_stream_is_console_closed_and_the_child_is_reaped(tmp_path: Path) -> None:
    t = ExecTransport(["sh", "-c", 'read line; echo "bye $line"; exit 7'])
    t.open()
    pid = t._child.pid
    t.write(b"now\n")  # raw pty: no ICRNL, so the line ends with \n, not \r
    out = b""
    with pytest.raises(ConsoleClosed) as e:
        for _ in range(100):
            out += t.read(65536, 0.1)
    assert b"bye now" in out
    one_line(str(e.value))
    assert "exit status 7" in str(e.value)
    assert t.closed and gone(pid)


def test_exec_close_kills_a_child_that_ignores_hangup(tmp_path: Path) -> None:
    t = ExecTransport(["sh", "-c", "trap '' HUP TERM; echo up; while :; do sleep 1; done"])
    t.stop_grace_s = 0.2
    t.open()
    read_until(t, b"up")
    pid = t._child.pid
    t.close()
    t.close()  # idempotent
    assert t.closed and gone(pid)


# -- ssh --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshdPeer, Path, Path]]:
    tmp = tmp_path_factory.mktemp("sshd")
    log = tmp / "echo.log"
    refuse = tmp / "refuse.txt"
    with sshd_peer(tmp, echo_command(log, refuse)) as peer:
        yield peer, log, refuse


def open_ssh(peer: SshdPeer, **query: str) -> Transport:
    t = transport_for(peer.url(**query))
    t.open()
    read_until(t, ECHO_READY + b"\r\n")
    return t


@pytest.mark.peer
def test_ssh_data_both_ways_and_tilde_is_literal(sshd: tuple[SshdPeer, Path, Path]) -> None:
    peer, log, _ = sshd
    log.write_bytes(b"")
    t = open_ssh(peer, break_sequence="rfc4335")
    try:
        assert isinstance(t, SshTransport) and t.client_escape == "~"
        data = b"~start\r~.\r~~two\r~?\n~B\rmid~dle\x00\xff\r"
        t.write(data)
        assert read_until(t, b"mid~dle\x00\xff\r") == data
        t.write(b"~.")  # at a line start again: must not end the session
        t.write(b"alive\r")
        assert read_until(t, b"alive\r") == b"~.alive\r"
        assert log.read_bytes() == data + b"~.alive\r"
    finally:
        t.close()


@pytest.mark.peer
def test_ssh_rfc4335_break_reaches_sshd_as_a_break_request(sshd: tuple[SshdPeer, Path, Path]) -> None:
    peer, log, _ = sshd
    before = peer.log_text().count("req break")
    log.write_bytes(b"")
    t = open_ssh(peer, break_sequence="rfc4335")
    try:
        assert Ability.BREAK in t.abilities
        t.send_break()  # at the session start: "~B" only, nothing reaches the console
        t.write(b"mid")
        t.send_break()  # mid-line: "\r~B"
        t.write(b"b")
        assert read_until(t, b"b") == b"mid\rb"
        assert wait_for(lambda: peer.log_text().count("req break") == before + 2)
    finally:
        t.close()
    assert log.read_bytes() == b"mid\rb"


@pytest.mark.peer
def test_ssh_without_break_runs_without_escape(sshd: tuple[SshdPeer, Path, Path]) -> None:
    peer, log, _ = sshd
    log.write_bytes(b"")
    t = open_ssh(peer)
    try:
        assert Ability.BREAK not in t.abilities
        with pytest.raises(BreakUnsupported):
            t.send_break()
        t.write(b"~.\r~~\r")
        assert read_until(t, b"~~\r") == b"~.\r~~\r"
    finally:
        t.close()


@pytest.mark.peer
def test_ssh_busy_console_server_is_console_busy(sshd: tuple[SshdPeer, Path, Path]) -> None:
    peer, _, refuse = sshd
    refuse.write_text("Port 7 is in use by admin\r\n")
    t = transport_for(peer.url())
    try:
        with pytest.raises(ConsoleBusy) as e:
            open_and_drain(t)  # refused during open(), or at once after it
    finally:
        refuse.unlink()
        t.close()
    one_line(str(e.value))
    assert e.value.exit_code == EXIT_BUSY and "in use" in str(e.value)


@pytest.mark.peer
def test_ssh_unknown_host_key_is_unreachable(sshd: tuple[SshdPeer, Path, Path], tmp_path: Path) -> None:
    peer, _, _ = sshd
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    t = transport_for(peer.url(UserKnownHostsFile=str(empty)))
    with pytest.raises(ConsoleUnreachable) as e:
        t.open()
    one_line(str(e.value))
    assert "host key" in str(e.value).lower()


@pytest.mark.peer
def test_ssh_refused_port_is_unreachable_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    t = transport_for(
        f"ssh://nobody@127.0.0.1:{port}?StrictHostKeyChecking=yes&known_hosts={tmp_path / 'kh'}"
    )
    start = time.monotonic()
    with pytest.raises(ConsoleUnreachable) as e:
        t.open()
    assert time.monotonic() - start < 5
    one_line(str(e.value))
    assert "Connection refused" in str(e.value)
    assert e.value.exit_code == EXIT_UNREACHABLE == 4
    assert t.closed


@pytest.mark.peer
def test_ssh_to_the_simulator_in_band_break(tmp_path: Path) -> None:
    env = dict(os.environ, CONSOLEBOT_LAB_PASSWORD="pw")
    force = " ".join([*SIM, "--break-sequence", "'" + BREAK_SEQ + "'"])
    with sshd_peer(tmp_path, force, env=env) as peer:
        t = transport_for(peer.url(break_sequence=BREAK_SEQ))
        with t:
            read_until(t, b"login: ", 30)
            t.write(b"root\r")
            read_until(t, b"Password: ")
            t.write(b"pw\r")  # the simulator got its password through sshd's SetEnv
            read_until(t, b"root@deleuze-sim:~# ")
            t.send_break()
            t.write(b"b")
            read_until(t, b"sysrq: Resetting", 10)


# -- conserver -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TelnetPeer, ConserverPeer]]:
    tmp = tmp_path_factory.mktemp("conserver")
    with telnet_peer() as tp, conserver_peer(tmp, "echo", tp.port) as cp:
        yield tp, cp


@pytest.mark.peer
def test_conserver_data_both_ways_and_break_is_iac_brk(conserver: tuple[TelnetPeer, ConserverPeer]) -> None:
    tp, cp = conserver
    t = transport_for(cp.url)
    assert isinstance(t, ConserverTransport)
    with t:
        first = read_until(t, b"TELNET-PEER-READY\r\n")
        assert first == b"TELNET-PEER-READY\r\n"  # no banner, no "[ok]"
        start = len(tp.data())
        data = b"hello\r\n\x05c.\x05x\x05\x05c\xff\x00tail\x05"
        t.write(data)
        t.write(b"c\r\n")  # pairs with the trailing ^E unless it was quoted
        got = read_until(t, b"tail\x05c\r\n")
        assert got == data + b"c\r\n"
        assert tp.data()[start:] == data + b"c\r\n"
        breaks = tp.breaks
        t.send_break()
        t.write(b"after\r\n")
        assert read_until(t, b"after\r\n") == b"after\r\n"  # "[halt sent]" removed
        assert tp.wait_for(lambda p: p.breaks == breaks + 1)


@pytest.mark.peer
def test_conserver_second_opener_is_busy_and_close_detaches(
    conserver: tuple[TelnetPeer, ConserverPeer],
) -> None:
    _, cp = conserver
    first = transport_for(cp.url)
    first.open()
    try:
        with pytest.raises(ConsoleBusy) as e:
            transport_for(cp.url).open()
        one_line(str(e.value))
        assert e.value.exit_code == EXIT_BUSY
    finally:
        first.close()
    again = transport_for(cp.url)
    again.open()  # the first one detached: attaching read-write works again
    again.close()


@pytest.mark.peer
def test_conserver_unknown_console_is_a_clear_error(conserver: tuple[TelnetPeer, ConserverPeer]) -> None:
    _, cp = conserver
    with pytest.raises(ConsoleUnreachable) as e:
        transport_for(cp.url.rsplit("/", 1)[0] + "/nosuch").open()
    one_line(str(e.value))
    assert "no console 'nosuch'" in str(e.value)


@pytest.mark.peer
def test_conserver_without_server_is_unreachable() -> None:
    t = ConserverTransport("127.0.0.1", free_port(), "c")
    with pytest.raises(ConsoleUnreachable) as e:
        t.open()
    one_line(str(e.value))
    assert t.closed


@pytest.mark.peer
def test_conserver_break_that_asks_for_confirmation(tmp_path: Path) -> None:
    with telnet_peer() as tp, conserver_peer(tmp_path, "confirm", tp.port, confirm_break=True) as cp:
        t = transport_for(cp.url)
        with t:
            read_until(t, b"TELNET-PEER-READY\r\n")
            t.send_break()  # conserver asks "confirm? [y/N]"; the transport answers y
            t.write(b"b")
            assert read_until(t, b"b") == b"b"
            assert tp.wait_for(lambda p: p.breaks == 1)
