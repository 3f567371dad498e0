from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from consolebot.errors import DeathPattern, PromptTimeout
from consolebot.secrets.redact import Redactor
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from tests.helpers import SocketPairTransport


def make(tmp_path: Path, **kw: object) -> tuple[Session, SocketPairTransport]:
    t = SocketPairTransport()
    t.open()
    red = Redactor()
    return Session(t, Transcript(tmp_path, "s", red), red, **kw), t  # type: ignore[arg-type]


def test_literal_split_across_reads(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"boot...\r\nfs01 log")
    s.pump(1)
    t.peer.sendall(b"in: ")
    r = s.expect(["login: "], 2)
    assert r.before.endswith(b"fs01 ") and r.match == b"login: "


def test_first_of_several_patterns_wins_by_position(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"Password: ... login: ")
    r = s.expect(["login: ", re.compile(rb"Pass\w+: ")], 2)
    assert r.index == 1
    r2 = s.expect(["login: "], 2)
    assert r2.before == b"... "


def test_read_ahead_is_kept_for_the_next_expect(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"# \r\n[  1.0] kernel line\r\n# ")
    s.expect(["# "], 2)
    r = s.expect(["# "], 2)
    assert b"kernel line" in r.before


def test_death_pattern_ends_the_wait_at_once(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"[ 5.1] Kernel panic - not syncing: Attempted to kill init!\r\n")
    with pytest.raises(DeathPattern, match="Kernel panic"):
        s.expect(["login: "], 30)


def test_abort_on_adds_death_patterns_for_a_block(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"salvager: Salvage of volume failed\r\n")
    with s.abort_on(b"failed"), pytest.raises(DeathPattern):
        s.expect(["done"], 5)
    t.peer.sendall(b"x failed y done")
    assert s.expect(["done"], 2).before.endswith(b"y ")


def test_regex_search_window_is_bounded(tmp_path: Path) -> None:
    s, t = make(tmp_path, search_window_bytes=64)
    # a pattern whose match would start 10 kB back cannot be found: the window is bounded
    t.peer.sendall(b"START" + b"x" * 10000)
    s.pump(1)
    while s.pump(0.05):
        pass
    t.peer.sendall(b"END")
    with pytest.raises(PromptTimeout):
        s.expect([re.compile(rb"START x*END")], 0.3)


def test_timeout_names_patterns_and_tail(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    t.peer.sendall(b"some output")
    with pytest.raises(PromptTimeout) as exc:
        s.expect(["login: "], 0.2)
    assert "'login: '" in str(exc.value) and "some output" in str(exc.value)


def test_poke_survives_a_lost_first_burst(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    seen: list[bytes] = []

    def peer() -> None:
        # like a fresh SOL session: the answer to the first Enter is lost
        while len(seen) < 2:
            seen.append(t.peer.recv(10))
        t.peer.sendall(b"\r\nfs01 login: ")

    th = threading.Thread(target=peer)
    th.start()
    r = s.poke(["login: "], tries=4, interval_s=0.3)
    th.join()
    assert r.match == b"login: " and len(seen) == 2


def test_read_only_session_refuses_to_send(tmp_path: Path) -> None:
    s, t = make(tmp_path, read_only=True)
    with pytest.raises(PermissionError):
        s.sendline("x")


def test_subscribers_see_every_byte_in_order(tmp_path: Path) -> None:
    s, t = make(tmp_path)
    got: list[bytes] = []
    s.subscribe(got.append)
    for i in range(50):
        t.peer.sendall(b"line %d\r\n" % i)
    t.peer.sendall(b"END")
    s.expect(["END"], 2)
    assert b"".join(got) == b"".join(b"line %d\r\n" % i for i in range(50)) + b"END"
