"""Capture against the simulator: files, SIGKILL safety, yielding to a writer, two writers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from consolebot.session.transcript import unescape_text
from tests.conftest import (
    LAB_PASSWORD,
    Sim,
    assert_no_secret,
    cb_env,
    consolebot_cmd,
    start_sim,
    stop_proc,
    write_host,
)
from tests.helpers import SocketPairTransport


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Sim, dict[str, str], Path]]:
    sim = start_sim(tmp_path)
    inv = tmp_path / "inv"
    write_host(inv, "lab-deleuze", f"telnet://127.0.0.1:{sim.ports['telnet']}")
    try:
        yield sim, cb_env(tmp_path, inv), tmp_path / "cap"
    finally:
        stop_proc(sim.proc)


def wait_for_text(path: Path, text: str, timeout_s: float = 30) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)  # polling another process's file: there is no event to await
    raise AssertionError(f"{text!r} not in {path} within {timeout_s} s")


def sim_acts(sim: Sim) -> list[dict[str, object]]:
    return sim.acts()


def sent_between(sim: Sim, start: float, end: float) -> bytes:
    out = bytearray()
    for line in sim.send_log.read_text().splitlines():
        obj = json.loads(line)
        if start <= obj["t"] <= end:
            out += obj["text"].encode("latin-1")
    return bytes(out)


def test_capture_writes_three_files_for_the_time_asked(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, cap = site
    proc = subprocess.run(consolebot_cmd("capture", "lab-deleuze", "--for", "3", "--dir", str(cap), "--json"),
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["consoles"]["lab-deleuze"]["gaps"] == 0
    assert 0 < result["round_s_max"] < 3  # how late events could have been: one console keeps the loop idle
    raw = (cap / "lab-deleuze.raw").read_bytes()
    assert raw == sim.sent_bytes()  # byte for byte what the simulator sent
    assert "deleuze-sim login: " in (cap / "lab-deleuze.log").read_text()
    records = [json.loads(x) for x in (cap / "lab-deleuze.jsonl").read_text().splitlines()]
    assert records[0]["what"] == "capture.start" and records[-1]["what"] == "capture.stop"
    # the recogniser's events are in the JSON lines, with raw transcript line numbers
    events = {r["kind"]: r for r in records if r["type"] == "event"}
    assert events["boot.start"]["fields"]["kernel"] == "6.1.0-18-amd64"
    raw_lines = re.split(rb"\r+\n?|\n", raw)
    assert raw_lines[events["login.prompt"]["line"] - 1] == b"deleuze-sim login: "
    assert result["consoles"]["lab-deleuze"]["phase"] == "login-ready"
    # read-only: the simulator received no console data at all
    assert not [a for a in sim.acts() if a["act"] in ("line", "break", "sysrq")]


def test_sigkill_during_a_pause_keeps_every_line_sent(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, cap = site
    proc = subprocess.Popen(consolebot_cmd("capture", "lab-deleuze", "--dir", str(cap)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_text(cap / "lab-deleuze.log", "deleuze-sim login: ")  # the boot is over: output pauses
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sent = sim.sent_bytes()
    raw = (cap / "lab-deleuze.raw").read_bytes()
    assert raw == sent
    logged = [unescape_text(line.split(" ", 2)[2]) for line in (cap / "lab-deleuze.log").read_text().splitlines()
              if line.split(" ", 2)[1] == "|"]
    # every complete line the simulator sent is in the text log, in order (the prompt is still partial)
    *complete, partial = re.split(rb"\r\r\n|\r\n|\n|\r", sent)
    assert logged == complete and partial == b"deleuze-sim login: "


def test_two_writers_second_exits_5_naming_the_first(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, cap = site
    first = pexpect.spawn(consolebot_cmd("console", "lab-deleuze", "--dir", str(cap))[0],
                          consolebot_cmd("console", "lab-deleuze", "--dir", str(cap))[1:], env=env, timeout=30)
    try:
        first.expect_exact("[consolebot: attached")
        second = subprocess.run(consolebot_cmd("console", "lab-deleuze", "--json"), capture_output=True, text=True,
                                env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert second.returncode == 5
        assert "consolebot console" in second.stderr and f"pid {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send("\r~.")
        first.expect(pexpect.EOF)
        first.close()
    assert first.exitstatus == 0


def test_console_driven_and_capture_yields_and_resumes(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, cap = site
    capture = subprocess.Popen(consolebot_cmd("capture", "lab-deleuze", "--dir", str(cap), "--json"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_text(cap / "lab-deleuze.log", "deleuze-sim login: ")
        argv = consolebot_cmd("console", "lab-deleuze", "--dir", str(cap / "console"))
        con = pexpect.spawn(argv[0], argv[1:], env=env, timeout=30)
        con.expect_exact("[consolebot: attached")
        wait_for_text(cap / "lab-deleuze.log", "gap: yielded the console")
        con.send("root\r")
        con.expect_exact("Password: ")
        con.send(LAB_PASSWORD + "\r")
        con.expect_exact("root@deleuze-sim:~# ")
        con.send("echo typed-by-a-person\r")
        con.expect_exact("typed-by-a-person\r\n")
        con.send("exit\r")
        con.expect_exact("login: ")
        con.send("~B")  # at the start of a line: a BREAK, then the SysRq key
        con.expect_exact("[consolebot: BREAK sent]")
        con.send("h")
        con.expect_exact("sysrq: HELP")
        con.send("\r~.")
        con.expect(pexpect.EOF)
        con.close()
        assert con.exitstatus == 0
        wait_for_text(cap / "lab-deleuze.log", "gap ended: reconnected")
    finally:
        capture.send_signal(signal.SIGINT)
        out, err = capture.communicate(timeout=30)
    assert capture.returncode == 0, err
    acts = sim.acts()
    conns = [a for a in acts if a["act"] in ("connect", "disconnect")]
    # capture connect, capture disconnect (yield), console connect, console disconnect, capture connect ...
    assert [a["act"] for a in conns[:5]] == ["connect", "disconnect", "connect", "disconnect", "connect"]
    assert any(a["act"] == "break" for a in acts)
    assert any(a["act"] == "sysrq" and a.get("key") == "h" for a in acts)
    t0, t1, t4 = float(conns[0]["t"]), float(conns[1]["t"]), float(conns[4]["t"])  # type: ignore[arg-type]
    t5 = float(conns[5]["t"]) if len(conns) > 5 else time.time()  # type: ignore[arg-type]
    raw = (cap / "lab-deleuze.raw").read_bytes()
    # nothing the simulator sent while the capture held the console is lost, in order
    assert raw == sent_between(sim, t0, t1) + sent_between(sim, t4, t5)
    log = (cap / "lab-deleuze.log").read_text()
    assert log.index("gap: yielded") < log.index("gap ended: reconnected")
    assert_no_secret(LAB_PASSWORD, out, err, folder=cap)
    assert os.path.exists(cap / "console" / "lab-deleuze.raw")


def test_first_connection_refused_exits_4_unless_wait(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    inv = tmp_path / "inv"
    write_host(inv, "lab-deleuze", f"telnet://127.0.0.1:{port}")
    env = cb_env(tmp_path, inv)
    proc = subprocess.run(consolebot_cmd("capture", "lab-deleuze", "--for", "2", "--dir", str(tmp_path / "c")),
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 4
    assert "connection refused" in proc.stderr and "--wait" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # with --wait it keeps trying, and picks the console up once it exists, gap marked
    cap = tmp_path / "w"
    waiting = subprocess.Popen(consolebot_cmd("capture", "lab-deleuze", "--wait", "--dir", str(cap)), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_text(cap / "lab-deleuze.log", "first connection failed")
        sim = start_sim(tmp_path, "--port", str(port))
        try:
            wait_for_text(cap / "lab-deleuze.log", "deleuze-sim login: ")
        finally:
            stop_proc(sim.proc)
        wait_for_text(cap / "lab-deleuze.log", "gap: connection lost")
    finally:
        waiting.send_signal(signal.SIGINT)
        waiting.communicate(timeout=30)
    log = (cap / "lab-deleuze.log").read_text()
    assert log.index("first connection failed") < log.index("gap ended: reconnected") < log.index("login: ")


def test_capture_without_keyring_warns_once_and_goes_on(site: tuple[Sim, dict[str, str], Path]) -> None:
    sim, env, cap = site
    env = dict(env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    proc = subprocess.run(consolebot_cmd("capture", "lab-deleuze", "--for", "2", "--dir", str(cap)),
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0
    warnings = [x for x in proc.stderr.splitlines() if "warning" in x]
    assert len(warnings) == 1 and "keyring" in warnings[0]
    assert (cap / "lab-deleuze.raw").read_bytes() == sim.sent_bytes()


class _FinServer:
    """Console servers on one port: each connection says hello; on the capture's half-close, the even ones
    (in accept order) say their last words and close, the odd ones ignore it (a server that never closes)."""

    def __init__(self) -> None:
        import selectors
        import socket
        import threading

        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.srv, selectors.EVENT_READ, None)
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import selectors

        conns = []
        while not self._stop.is_set():
            for key, _ in self.sel.select(0.05):
                if key.data is None:
                    conn, _a = self.srv.accept()
                    index = self.accepted
                    self.accepted += 1
                    conn.sendall(b"hello from %d\r\n" % index)
                    self.sel.register(conn, selectors.EVENT_READ, index)
                    conns.append(conn)
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                if conn.recv(4096):
                    continue  # telnet negotiation
                self.sel.unregister(conn)
                if key.data % 2 == 0:
                    conn.sendall(b"last words of %d\r\n" % key.data)
                    conn.close()
        for conn in conns:
            conn.close()
        self.srv.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def test_close_drains_every_console_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from consolebot.runbooks import capture as capmod
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript
    from consolebot.transport.telnet import TelnetTransport

    monkeypatch.setattr(capmod, "DRAIN_S", 0.2)
    server = _FinServer()
    n = 20
    try:
        consoles = [CapturedConsole(f"c{i}", lambda: TelnetTransport("127.0.0.1", server.port),
                                    Transcript(tmp_path, f"c{i}", Redactor(), buffered=True)) for i in range(n)]
        loop = CaptureLoop(consoles)
        loop.start(wait=False)
        deadline = time.monotonic() + 30
        while any(c.rx_bytes == 0 for c in consoles) and time.monotonic() < deadline:
            loop.run(0.1)
        assert all(c.rx_bytes for c in consoles)
        t0 = time.monotonic()
        loop.close()
        took_s = time.monotonic() - t0
    finally:
        server.stop()
    # one by one, the ten servers that never close would have taken 10 x DRAIN_S (2 s) and more
    assert took_s < 10 * 0.2
    raws = [(tmp_path / f"c{i}.raw").read_bytes() for i in range(n)]
    said = [raw.split(b"\r\n")[0].split()[-1] for raw in raws]  # which server connection each console got
    for raw, index in zip(raws, said, strict=True):
        last = b"last words of %s\r\n" % index
        assert raw.endswith(last) == (int(index) % 2 == 0)  # every byte the closing servers sent is captured
    assert all("capture stopped" in (tmp_path / f"c{i}.log").read_text() for i in range(n))


def test_alerts_wait_for_their_lines_to_be_written(tmp_path: Path) -> None:
    # with a buffered transcript, no alert is raised before its line is on disk (a SIGKILL cannot take it)
    from consolebot.recognise.classifier import Classifier
    from consolebot.recognise.events import Event
    from consolebot.runbooks.alerts import Alerter
    from consolebot.runbooks.capture import CapturedConsole
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript

    seen: list[tuple[str, bytes]] = []
    jsonl = tmp_path / "c.jsonl"

    def alert(c: CapturedConsole, evs: list[Event]) -> None:
        seen.extend((ev.kind, jsonl.read_bytes()) for ev in evs)

    severities = frozenset({"warning", "critical"})
    c = CapturedConsole("c", lambda: None, Transcript(tmp_path, "c", Redactor(), buffered=True),  # type: ignore
                        classifier=Classifier(), alert=alert, alert_severities=severities)
    c.record(b"[    1.0] Linux version 6.1.0 (x)\r\n[    5.1] INFO: task nscd:1893 blocked for more than 120 "
             b"seconds.\r\n[    9.9] Kernel panic - not syncing: Attempted to kill init!\r\n")
    assert c.events == 3 and not seen and jsonl.read_bytes() == b""
    c.flush()
    assert [k for k, _ in seen] == ["kernel.hung_task", "kernel.panic"]  # the info banner is no alert
    assert all(b'"kind": "kernel.panic"' in on_disk for _k, on_disk in seen)
    warning, info = Alerter("warning"), Alerter("info")
    try:
        assert warning.severities == severities and info.severities is None  # None: every event
    finally:
        warning.close()
        info.close()


class _StreamAndStubbornServer:
    """Two consoles: ``busy`` streams a numbered line every 10 ms; ``stubborn`` answers a half-close with a
    last line and then never closes (a console server that keeps the connection open)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.listeners = {}
        for name in ("busy", "stubborn"):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(4)
            self.listeners[name] = s
        self.ports = {name: s.getsockname()[1] for name, s in self.listeners.items()}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        for name, s in self.listeners.items():
            sel.register(s, selectors.EVENT_READ, ("listen", name))
        busy = []
        conns = []
        n = 0
        while not self._stop.is_set():
            for key, _ in sel.select(0.01):
                kind, name = key.data
                if kind == "listen":
                    conn, _a = key.fileobj.accept()  # type: ignore[union-attr]
                    conns.append(conn)
                    conn.sendall(b"hello from %s\r\n" % name.encode())
                    sel.register(conn, selectors.EVENT_READ, ("conn", name))
                    if name == "busy":
                        busy.append(conn)
                    continue
                if key.fileobj.recv(4096):  # type: ignore[union-attr]
                    continue  # telnet negotiation
                sel.unregister(key.fileobj)
                if name == "stubborn":
                    key.fileobj.sendall(b"on its way\r\n")  # type: ignore[union-attr]
            n += 1
            for conn in busy:
                try:
                    conn.sendall(b"line %d\r\n" % n)
                except OSError:
                    pass
        for conn in conns:
            conn.close()
        for s in self.listeners.values():
            s.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def test_a_console_yielding_to_a_writer_does_not_stall_the_others(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the yielded connection is drained inside the loop: a server that never closes costs its own console
    # YIELD_DRAIN_S, not every console's reads
    from consolebot.locks import CaptureClaim
    from consolebot.runbooks import capture as capmod
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript
    from consolebot.transport.telnet import TelnetTransport

    drain_s = 1.5
    monkeypatch.setattr(capmod, "YIELD_DRAIN_S", drain_s)
    server = _StreamAndStubbornServer()
    locks = tmp_path / "locks"
    locks.mkdir()
    consoles = {
        name: CapturedConsole(name, lambda port=port: TelnetTransport("127.0.0.1", port),
                              Transcript(tmp_path, name, Redactor(), buffered=True), CaptureClaim(name, locks))
        for name, port in server.ports.items()
    }
    reads: list[float] = []
    consoles["busy"].on_data.append(lambda _clean: reads.append(time.monotonic()))
    loop = CaptureLoop(list(consoles.values()))
    try:
        loop.start(wait=False)
        deadline = time.monotonic() + 30
        while any(c.rx_bytes == 0 for c in consoles.values()) and time.monotonic() < deadline:
            loop.run(0.1)
        (locks / "stubborn.want").write_text(str(os.getpid()))  # a writer (this process) asks for the console
        t0 = time.monotonic()
        while consoles["stubborn"].state != "yielded" and time.monotonic() < t0 + 10 * drain_s:
            loop.run(0.1)
        took_s = time.monotonic() - t0
        loop.run(0.3)
    finally:
        loop.close()
        server.stop()
    stubborn = consoles["stubborn"]
    assert stubborn.state == "closed" and stubborn.gaps == 1
    assert took_s >= drain_s  # the server never closed: the drain ran its whole time ...
    during = [t for t in reads if t0 <= t <= t0 + took_s]
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    assert len(during) > 5 and max(gaps) < drain_s / 2  # ... while the busy console was read all along
    assert (tmp_path / "stubborn.raw").read_bytes().endswith(b"on its way\r\n")  # sent after the half-close
    log = (tmp_path / "stubborn.log").read_text()
    assert f"gap: yielded the console to a writer (pid {os.getpid()})" in log
    assert log.index("on its way") < log.index("gap: yielded")
    assert not (locks / "stubborn.conn").exists() or not CaptureClaim("stubborn", locks).conn.held


class _WaitingTransport(SocketPairTransport):
    """A console whose open and close wait (as ipmitool's do) until the test lets them go on."""

    def __init__(self, let_open: threading.Event, let_close: threading.Event, claim: Any) -> None:
        super().__init__()
        self.let_open, self.let_close, self.claim = let_open, let_close, claim
        self.claim_held_at_close: bool | None = None

    def open(self) -> None:
        assert self.let_open.wait(30), "the test never let the open go on"
        super().open()
        self.peer.sendall(b"slow console up\r\n")

    def close(self) -> None:
        if self.sock.fileno() == -1:
            return
        assert self.let_close.wait(30), "the test never let the close go on"
        self.claim_held_at_close = self.claim.conn.held
        super().close()
        self.peer.close()


def test_opens_and_closes_that_wait_run_off_the_loop(tmp_path: Path) -> None:
    # an IPMI console's open (up to ipmitool's 20 s banner wait) and close (payload deactivation) must not stall
    # the loop: the test lets each go on only after the busy console was read many times meanwhile
    from consolebot.locks import CaptureClaim
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript
    from consolebot.transport.telnet import TelnetTransport

    server = _StreamAndStubbornServer()
    locks = tmp_path / "locks"
    locks.mkdir()
    let_open, let_close = threading.Event(), threading.Event()
    slow_claim = CaptureClaim("slow", locks)
    made: list[_WaitingTransport] = []

    def make_slow() -> _WaitingTransport:
        made.append(_WaitingTransport(let_open, let_close, slow_claim))
        return made[-1]

    busy = CapturedConsole("busy", lambda: TelnetTransport("127.0.0.1", server.ports["busy"]),
                           Transcript(tmp_path, "busy", Redactor(), buffered=True), CaptureClaim("busy", locks))
    slow = CapturedConsole("slow", make_slow, Transcript(tmp_path, "slow", Redactor(), buffered=True),  # type: ignore
                           slow_claim)
    reads = {"while opening": 0, "while closing": 0}

    def on_busy(_clean: bytes) -> None:
        if not let_open.is_set():
            reads["while opening"] += 1
            if reads["while opening"] >= 20:
                let_open.set()
        elif slow.state == "closing":
            reads["while closing"] += 1
            if reads["while closing"] >= 20:
                let_close.set()

    busy.on_data.append(on_busy)
    loop = CaptureLoop([busy, slow])
    try:
        loop.start(wait=False)  # returns once the slow open is done: it was let go by the busy console's reads
        assert slow.state == "connected" and reads["while opening"] >= 20
        (locks / "slow.want").write_text(str(os.getpid()))  # a writer asks for the slow console
        deadline = time.monotonic() + 30
        while slow.state != "yielded" and time.monotonic() < deadline:
            loop.run(0.1)
    finally:
        let_open.set()
        let_close.set()
        loop.close()
        server.stop()
    assert reads["while closing"] >= 20  # the loop went on reading while the close waited
    assert made[0].claim_held_at_close is True  # the writer gets the console only once the close is done
    assert not slow_claim.conn.held
    log = (tmp_path / "slow.log").read_text()
    assert "slow console up" in log and "gap: yielded the console to a writer" in log


def test_a_loop_that_falls_behind_says_how_late_its_events_are(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # with BEHIND_S made tiny, every round counts as late: the loop says so, again only when the lateness doubles,
    # and the summary keeps the longest round
    from consolebot.runbooks import capture as capmod
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript
    from consolebot.transport.telnet import TelnetTransport

    monkeypatch.setattr(capmod, "BEHIND_S", 1e-6)
    server = _StreamAndStubbornServer()
    said: list[float] = []
    busy = CapturedConsole("busy", lambda: TelnetTransport("127.0.0.1", server.ports["busy"]),
                           Transcript(tmp_path, "busy", Redactor(), buffered=True))
    loop = CaptureLoop([busy], behind=said.append)
    try:
        loop.start(wait=False)
        summary = loop.run(1.0)
    finally:
        loop.close()
        server.stop()
    assert busy.rx_bytes > 0 and said and all(s > 0 for s in said)
    assert all(b >= 2 * a for a, b in zip(said, said[1:], strict=False))  # said again only when it doubled
    assert summary.round_s_max >= round(max(said), 3) - 0.001  # the longest round, said or not


def test_an_unreachable_bmc_does_not_hold_up_the_other_consoles(tmp_path: Path) -> None:
    # real ipmitool against a BMC that never answers (its packets dropped, as after a power event): its open
    # waits for the SOL banner until its deadline, on a helper thread, while the telnet console streams on
    import shutil

    from consolebot.power.ipmi_common import BmcTarget
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.secrets.secret import Secret
    from consolebot.session.transcript import Transcript
    from consolebot.transport.ipmitool_sol import IpmitoolSolTransport
    from consolebot.transport.telnet import TelnetTransport

    assert shutil.which("ipmitool"), "ipmitool is installed by scripts/install-test-deps"
    password = "Not-the-BMC-Passw0rd"
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the packets, answers none
    blackhole.bind(("127.0.0.1", 0))
    target = BmcTarget("127.0.0.1", "admin", Secret(password, "bmc/admin"), blackhole.getsockname()[1])
    server = _StreamAndStubbornServer()
    red = Redactor()
    red.add(password)
    busy = CapturedConsole("busy", lambda: TelnetTransport("127.0.0.1", server.ports["busy"]),
                           Transcript(tmp_path, "busy", red, buffered=True))
    down = CapturedConsole("bmc-down", lambda: IpmitoolSolTransport(target, open_timeout_s=3.0),
                           Transcript(tmp_path, "bmc-down", red, buffered=True))
    reads: list[float] = []
    busy.on_data.append(lambda _clean: reads.append(time.monotonic()))
    loop = CaptureLoop([busy, down])
    t0 = time.monotonic()
    try:
        loop.start(wait=True)  # returns when the ipmitool open has failed; the busy console is read meanwhile
        took_s = time.monotonic() - t0
        loop.run(0.3)
    finally:
        loop.close()
        server.stop()
        blackhole.close()
    assert down.connects == 0 and down.state == "closed" and busy.connects == 1
    assert took_s >= 2.5  # ipmitool really waited for its banner ...
    during = [t for t in reads if t0 <= t <= t0 + took_s]
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    assert len(during) > 10 and max(gaps) < 1.0  # ... and the loop read the busy console all along
    log = (tmp_path / "bmc-down.log").read_text()
    assert "first connection failed" in log and "no SOL session within 3 s" in log
    for f in tmp_path.iterdir():
        if f.is_file():
            assert password.encode() not in f.read_bytes(), f  # the password went to ipmitool by its environment


def test_closing_a_loop_waits_for_its_offloaded_closes_and_no_longer(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # at the end, a connected console whose close waits is closed off the loop, and the loop ends as soon as
    # that close is done (not after CLOSE_WAIT_S)
    from consolebot.locks import CaptureClaim
    from consolebot.runbooks import capture as capmod
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.secrets.redact import Redactor
    from consolebot.session.transcript import Transcript

    monkeypatch.setattr(capmod, "CLOSE_WAIT_S", 10.0)
    locks = tmp_path / "locks"
    locks.mkdir()
    let_open, let_close = threading.Event(), threading.Event()
    let_open.set()
    let_close.set()
    claim = CaptureClaim("slow", locks)
    made: list[_WaitingTransport] = []

    def make_slow() -> _WaitingTransport:
        made.append(_WaitingTransport(let_open, let_close, claim))
        return made[-1]

    slow = CapturedConsole("slow", make_slow, Transcript(tmp_path, "slow", Redactor(), buffered=True),  # type: ignore
                           claim)
    loop = CaptureLoop([slow])
    loop.start(wait=False)
    assert slow.state == "connected"
    t0 = time.monotonic()
    loop.close()
    took_s = time.monotonic() - t0
    assert slow.state == "closed" and made[0].sock.fileno() == -1  # closed, on its helper thread
    assert made[0].claim_held_at_close is True and not claim.conn.held
    assert took_s < 10.0 / 2  # done when the close was: not after CLOSE_WAIT_S
    assert "capture stopped" in (tmp_path / "slow.log").read_text()


def test_a_lock_folder_is_listed_again_only_when_it_changed(tmp_path: Path) -> None:
    # a thousand consoles' lock files are listed each housekeeping round only when the folder changed (a writer's
    # request is a new file): the listing is kept while its modification time stays and is over a second old
    from consolebot.runbooks.capture import CaptureLoop

    folder = tmp_path / "locks"
    folder.mkdir()
    (folder / "a.conn").touch()
    loop = CaptureLoop([])
    old = time.time() - 60
    os.utime(folder, (old, old))
    assert loop._listing(folder) == {"a.conn"}
    (folder / "b.want").touch()
    os.utime(folder, (old, old))  # (a change the clock did not tell apart)
    assert loop._listing(folder) == {"a.conn"}, "an unchanged folder is not listed again"
    os.utime(folder)  # the folder changed: listed again, and again while its change is recent
    assert loop._listing(folder) == {"a.conn", "b.want"}
    (folder / "c.want").touch()
    os.utime(folder, ns=(folder.stat().st_mtime_ns, folder.stat().st_mtime_ns))
    assert "c.want" in (loop._listing(folder) or set()), "a change within the same clock tick is not missed"
    assert loop._listing(tmp_path / "gone") is None
    loop.close()
