"""One contract, every transport, each against a real peer.

Each peer puts the built-in simulator (``consolebot lab serve``) behind a real
path: its own telnet and raw TCP servers, ``exec`` of its stdio mode, OpenSSH's
sshd with a ForceCommand, Debian's conserver, a socat pty pair, and pyserial's
own RFC 2217 port manager. The same expectations run over each.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consolebot.errors import BreakUnsupported
from consolebot.escapes import decode_escapes
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from consolebot.transport.base import Ability, Transport
from consolebot.transport.registry import transport_for
from tests.conftest import LAB_PASSWORD, assert_no_secret, sim_env, start_sim, stop_proc

BREAK_SEQ = "\\x05cl1"  # an in-band break sequence, as conserver's ^Ecl1
SIM_STDIO = [sys.executable, "-m", "consolebot", "lab", "serve", "--stdio", "--line-delay-ms", "1",
             "--login-fail-delay-s", "0.2"]


@dataclass
class Peer:
    address: str
    # "sysrq": a BREAK reaches the simulated kernel; "none": the transport must refuse it
    break_mode: str
    opts: dict[str, str] = field(default_factory=dict)
    break_recorded: object = None  # callable returning how many BREAKs a peer in the path recorded
    sent: object = None  # callable returning the bytes the simulator sent, where known


@contextlib.contextmanager
def peer_telnet(tmp: Path) -> Iterator[Peer]:
    sim = start_sim(tmp)
    try:
        yield Peer(f"telnet://127.0.0.1:{sim.ports['telnet']}", "sysrq", sent=sim.sent_bytes)
    finally:
        stop_proc(sim.proc)


@contextlib.contextmanager
def peer_socket(tmp: Path) -> Iterator[Peer]:
    sim = start_sim(tmp, "--raw-port", "0", "--no-telnet")
    try:
        yield Peer(f"socket://127.0.0.1:{sim.ports['raw']}", "none", sent=sim.sent_bytes)
    finally:
        stop_proc(sim.proc)


@contextlib.contextmanager
def peer_exec(tmp: Path) -> Iterator[Peer]:
    cmd = " ".join([*SIM_STDIO, "--break-sequence", "'" + BREAK_SEQ + "'"])
    yield Peer(f"exec:{cmd}", "sysrq", opts={"break_sequence": BREAK_SEQ})


@contextlib.contextmanager
def peer_exec_nobreak(tmp: Path) -> Iterator[Peer]:
    yield Peer("exec:" + " ".join(SIM_STDIO), "none")


@contextlib.contextmanager
def peer_ssh(tmp: Path) -> Iterator[Peer]:
    from tests.peers.process_peers import sshd_peer

    force = " ".join([*SIM_STDIO, "--break-sequence", "'" + BREAK_SEQ + "'"])
    with sshd_peer(tmp, force_command=force, env=sim_env()) as sshd:
        yield Peer(sshd.url(break_sequence=BREAK_SEQ), "sysrq")


@contextlib.contextmanager
def peer_conserver(tmp: Path) -> Iterator[Peer]:
    from tests.peers.process_peers import conserver_peer

    sim = start_sim(tmp)
    try:
        with conserver_peer(tmp, "deleuze", sim.ports["telnet"]) as cs:
            yield Peer(cs.url, "sysrq", sent=sim.sent_bytes)
    finally:
        stop_proc(sim.proc)


@contextlib.contextmanager
def peer_serial_pty(tmp: Path) -> Iterator[Peer]:
    from tests.peers.serial_peers import serial_pty_peer

    with serial_pty_peer(SIM_STDIO, env=sim_env()) as device:
        yield Peer(f"serial://{device}?baud=115200", "none")


@contextlib.contextmanager
def peer_rfc2217(tmp: Path) -> Iterator[Peer]:
    from tests.peers.serial_peers import rfc2217_peer

    # A pty cannot carry a BREAK; the port manager (which records it) passes it on in-band to the simulator.
    cmd = [*SIM_STDIO, "--break-sequence", BREAK_SEQ]
    with rfc2217_peer(cmd, env=sim_env(), break_bytes=decode_escapes(BREAK_SEQ)) as srv:
        yield Peer(f"rfc2217://127.0.0.1:{srv.port}", "sysrq", break_recorded=lambda: srv.breaks.count(True))


PEERS = {
    "telnet": peer_telnet,
    "socket": peer_socket,
    "exec": peer_exec,
    "exec-nobreak": peer_exec_nobreak,
    "ssh": peer_ssh,
    "conserver": peer_conserver,
    "serial-pty": peer_serial_pty,
    "rfc2217": peer_rfc2217,
}


@dataclass
class Attached:
    peer: Peer
    transport: Transport
    session: Session
    folder: Path


@pytest.fixture(params=sorted(PEERS))
def attached(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Attached]:
    monkeypatch.setenv("CONSOLEBOT_LAB_PASSWORD", LAB_PASSWORD)  # for peers that inherit this process's environment
    with PEERS[request.param](tmp_path) as peer:
        transport = transport_for(peer.address, **peer.opts)
        transport.open()
        folder = tmp_path / "transcripts"
        red = Redactor()
        session = Session(transport, Transcript(folder, "console", red), red)
        try:
            yield Attached(peer, transport, session, folder)
        finally:
            session.close()


def test_whole_boot_to_login_prompt_is_read(attached: Attached) -> None:
    s = attached.session
    s.expect([b"Linux version 6.1.0-18-amd64"], 30)
    s.expect([b"Starting AFS services:"], 30)
    r = s.expect([b"deleuze-sim login: "], 30)
    assert b"Debian GNU/Linux 12 deleuze-sim" in r.before
    if attached.peer.sent is not None:
        # faithful: the raw transcript holds exactly the bytes the simulator sent
        raw = (attached.folder / "console.raw").read_bytes()
        sent = attached.peer.sent()  # type: ignore[operator]
        assert raw and sent.startswith(raw[: len(sent)]) and raw == sent[: len(raw)]


def test_login_and_command(attached: Attached) -> None:
    s = attached.session
    s.expect([b"login: "], 30)
    s.sendline("root")
    s.expect([b"Password: "], 10)
    s.send_secret(Secret(LAB_PASSWORD, "lab/root#1"))
    s.expect([b"root@deleuze-sim:~# "], 10)
    s.sendline("echo contract-ok")
    r = s.expect([b"contract-ok\r\n"], 10)
    assert b"echo" in r.before
    s.sendline("exit")
    s.expect([b"login: "], 10)
    s.close()
    assert_no_secret(LAB_PASSWORD, folder=attached.folder)


def test_break_then_sysrq_b_reboots_or_is_refused(attached: Attached) -> None:
    s = attached.session
    s.expect([b"login: "], 30)
    mode = attached.peer.break_mode
    if mode == "none":
        assert Ability.BREAK not in attached.transport.abilities
        with pytest.raises(BreakUnsupported):
            s.send_break()
        return
    assert Ability.BREAK in attached.transport.abilities
    s.send_break()
    s.send("b")
    s.expect([b"sysrq: Resetting"], 10)
    s.expect([b"Linux version"], 30)
    s.expect([b"login: "], 30)
    if attached.peer.break_recorded is not None:  # the real peer in the path saw the BREAK request
        assert attached.peer.break_recorded() >= 1  # type: ignore[operator]


def test_idle_read_times_out_quietly_and_close_is_idempotent(attached: Attached) -> None:
    s = attached.session
    s.expect([b"login: "], 30)
    s.settle(0.3, 5)
    assert attached.transport.read(1024, 0.2) == b""
    attached.transport.close()
    attached.transport.close()
    assert attached.transport.closed
