"""A secret never reaches a file, a log, a JSON line, an exception or a repr, for every split."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consolebot.errors import PromptTimeout
from consolebot.secrets.redact import Redactor, StreamRedactor
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from tests.helpers import SocketPairTransport

SECRET = "hunter2-Xyz"


def test_secret_repr_and_str_are_masked() -> None:
    s = Secret(SECRET, "deleuze/root#1")
    for text in (repr(s), str(s), f"{s}", "%s" % s, repr([s]), repr({"k": s})):  # noqa: UP031
        assert SECRET not in text
    assert s.reveal() == SECRET


def test_secret_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret(SECRET))


def splits(data: bytes, secret: bytes) -> list[list[bytes]]:
    """Every way to cut ``data`` in two, and every way to cut the secret inside it in three."""
    out = []
    n = len(data)
    for i in range(1, n):
        out.append([data[:i], data[i:]])
    s0 = data.index(secret)
    for i, j in itertools.combinations(range(s0, s0 + len(secret) + 1), 2):
        if 0 < i < j < n:
            out.append([data[:i], data[i:j], data[j:]])
    return out


@settings(max_examples=300)
@given(st.binary(max_size=60), st.binary(max_size=60), st.lists(st.integers(1, 30), max_size=20))
def test_stream_redactor_any_chunking(pre: bytes, post: bytes, cuts: list[int]) -> None:
    red = Redactor([SECRET])
    stream = pre + SECRET.encode() + post + SECRET.encode()
    sr = StreamRedactor(red)
    out = b""
    pos = 0
    for n in cuts:
        out += sr.feed(stream[pos : pos + n])
        pos += n
    out += sr.feed(stream[pos:]) + sr.flush()
    assert SECRET.encode() not in out
    # nothing else is lost or changed
    assert out == red.redact_bytes(stream)


def test_edges_mask_a_cut_secret() -> None:
    red = Redactor([SECRET])
    assert red.redact_bytes(b"tail " + SECRET.encode()[:6], edges=True) == b"tail ***"
    assert red.redact_bytes(SECRET.encode()[-6:] + b" head", edges=True) == b"*** head"


def _session(tmp_path: Path) -> tuple[Session, SocketPairTransport, Transcript]:
    t = SocketPairTransport()
    t.open()
    red = Redactor()
    tr = Transcript(tmp_path, "console", red, partial_flush_s=0.0)
    return Session(t, tr, red), t, tr


@pytest.mark.parametrize("chunks", splits(b"\r\nPassword: " + SECRET.encode() + b"\r\nroot@x:~# ", SECRET.encode()))
def test_echoed_secret_never_recorded_for_every_split(tmp_path: Path, chunks: list[bytes]) -> None:
    session, t, tr = _session(tmp_path)
    session.send_secret(Secret(SECRET, "x/root#1"))
    for c in chunks:
        t.peer.sendall(c)
        session.pump(0.5)
    # drain the rest
    while session.pump(0.02):
        pass
    tr.tick()
    res = session.expect([b"# "], 1)
    with pytest.raises(PromptTimeout) as exc:
        session.expect([b"never-shown"], 0.01)
    texts = [str(exc.value), repr(exc.value), repr(session), repr(tr), repr(res), res.before.decode("latin-1")]
    session.close()
    for text in texts:
        assert SECRET not in text
    for p in tmp_path.iterdir():
        assert SECRET.encode() not in p.read_bytes(), p
    assert b"***" in (tmp_path / "console.raw").read_bytes()
    # the peer really received the secret: redaction is of records, not of the act
    assert SECRET.encode() in t.peer.recv(4096)


def test_timeout_message_masks_a_secret_cut_at_the_window(tmp_path: Path) -> None:
    session, t, tr = _session(tmp_path)
    session.redactor.add(SECRET)
    t.peer.sendall(b"x" * 10 + SECRET.encode())
    session.pump(0.5)
    session._buf[:] = session._buf[13:]  # the window now starts inside the secret
    with pytest.raises(PromptTimeout) as exc:
        session.expect(["zzz"], 0.01)
    assert SECRET[3:] not in str(exc.value)
    session.close()
