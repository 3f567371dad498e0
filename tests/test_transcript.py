from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consolebot.errors import ConfigError
from consolebot.paths import ensure_local_dir
from consolebot.secrets.redact import Redactor
from consolebot.session import transcript as tmod
from consolebot.session.transcript import _LINE_END, Transcript, escape_block, escape_text, unescape_text


def log_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        stamp, tag, text = line.split(" ", 2) if line.count(" ") >= 2 else (*line.split(" ", 1), "")
        out.append((tag, text))
    return out


def test_line_ends_and_timestamps(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor())
    tr.rx(b"one\r\ntwo\r\r\nthree\nfour\rfive\r")
    tr.rx(b"\nsix")
    tr.close()
    lines = (tmp_path / "c.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["one", "two", "three", "four", "five", "six"]
    assert all(line[:4].isdigit() and line[23] == "Z" for line in lines)
    assert lines[-1].split(" ")[1] == "<"  # unfinished at close
    assert (tmp_path / "c.raw").read_bytes() == b"one\r\ntwo\r\r\nthree\nfour\rfive\r\nsix"
    assert tr.lines == 5


def test_a_line_that_never_ends_is_written_in_parts_and_memory_stays_bounded(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor(), partial_flush_s=3600.0)
    junk = bytes(range(32, 127)) * 10
    for _ in range(2000):  # ~1.9 MB without a line end, streaming (never quiet)
        tr.rx(junk)
        assert len(tr._line) <= tmod.LINE_MAX_BYTES
    tr.rx(b"end\r\n")
    tr.close()
    parts = log_lines(tmp_path / "c.log")
    assert {tag for tag, _ in parts[:-1]} == {"<"} and parts[-1][0] == "|"
    assert "".join(text for _, text in parts) == tmod.escape_text(junk * 2000 + b"end")
    assert tr.lines == 1


def test_partial_line_flushed_after_quiet(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor(), partial_flush_s=0.05)
    tr.rx(b"fs01 login: ")
    tr.tick()
    assert "login" not in (tmp_path / "c.log").read_text()
    time.sleep(0.06)  # the quiet period itself is what is tested
    tr.tick()
    assert log_lines(tmp_path / "c.log") == [("<", "fs01 login: ")]
    tr.rx(b"root\r\n")
    tr.close()
    assert log_lines(tmp_path / "c.log")[-1] == ("|", "root")


def test_control_bytes_are_escaped_reversibly(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor())
    line = b"\x1b[6n\x00\xff\\ok\xc3\xa9"
    tr.rx(line + b"\n")
    tr.close()
    (tag, text), = log_lines(tmp_path / "c.log")
    assert unescape_text(text) == line


def test_rotation_by_size(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor(), rotate_bytes=1000, keep=3)
    for i in range(100):
        tr.rx(f"line {i:04d} ".encode() + b"x" * 80 + b"\r\n")
    tr.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "c.raw.1" in names and "c.raw.2" in names and "c.raw.3" in names
    assert "c.raw.4" not in names
    assert "c.log.1" in names and "c.jsonl.1" in names
    assert (tmp_path / "c.raw").stat().st_size < 1000 + 100
    # the newest rotated file continues exactly where the current one starts
    assert b"line 0099" in (tmp_path / "c.raw").read_bytes() or b"line 0099" in (tmp_path / "c.raw.1").read_bytes()


def test_sighup_reopens_after_logrotate(tmp_path: Path) -> None:
    tmod.install_sighup_reopen()
    tr = Transcript(tmp_path, "c", Redactor())
    tr.rx(b"before\n")
    os.rename(tmp_path / "c.log", tmp_path / "c.log.old")
    os.kill(os.getpid(), signal.SIGHUP)
    tr.rx(b"after\n")
    tr.close()
    assert "before" in (tmp_path / "c.log.old").read_text()
    assert "after" in (tmp_path / "c.log").read_text()
    assert "after" not in (tmp_path / "c.log.old").read_text()
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_sigkill_loses_no_complete_line(tmp_path: Path) -> None:
    script = f"""
import sys, time
from consolebot.secrets.redact import Redactor
from consolebot.session.transcript import Transcript
tr = Transcript({str(tmp_path)!r}, "c", Redactor())
for i in range(500):
    tr.rx(b"line %d\\r\\n" % i)
tr.record("event", kind="x")
print("written", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"written"
    proc.kill()
    proc.wait()
    lines = log_lines(tmp_path / "c.log")
    assert [t for _, t in lines] == [f"line {i}" for i in range(500)]
    assert json.loads((tmp_path / "c.jsonl").read_text().splitlines()[-1])["kind"] == "x"


def test_afs_folder_is_refused() -> None:
    with pytest.raises(ConfigError, match="/afs"):
        ensure_local_dir(Path("/afs/hcoop.net/user/x/transcripts"))


def test_network_filesystem_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/self/mounts as it reads on a host with an NFS mount at tmp_path
    monkeypatch.setattr("consolebot.paths._mounts", lambda: [("/", "ext4"), (str(tmp_path), "nfs4")])
    with pytest.raises(ConfigError, match="network filesystem"):
        ensure_local_dir(tmp_path / "t")


def test_cli_refuses_afs_transcript_dir(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "consolebot", "demo", "--dir", "/afs/example.org/t"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "/afs" in proc.stderr


_ALPHABET = st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"\r\r\n", b"\x1b[0m", b"\\", b"\xc3\xa9", b"\xc3",
                             b"\xff", b"\x00", b"\t", b"\x7f", b" ", b"\xe2\x82"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_ALPHABET, max_size=60), st.lists(st.integers(min_value=1, max_value=40), max_size=20))
# a chunk of CRs alone, inside a CR CR LF line end split over three chunks (once counted an empty line)
@example(pieces=[b"a"] * 7 + [b"\r\r\n", b"\x1b[0m", b"\r\r\n"], cuts=[15, 1])
def test_log_lines_match_the_whole_stream_for_any_chunking(tmp_path_factory: pytest.TempPathFactory,
                                                           pieces: list[bytes], cuts: list[int]) -> None:
    # the log is built a chunk at a time without a Python step per line: it must say what a line-by-line
    # reading of the whole stream says (each line escaped on its own, every line end counted once)
    data = b"".join(pieces)
    folder = tmp_path_factory.mktemp("t")
    tr = Transcript(folder, "c", Redactor())
    pos = 0
    for n in cuts:
        tr.rx(data[pos : pos + n])
        pos += n
    tr.rx(data[pos:])
    tr.close()
    *complete, tail = _LINE_END.split(data)
    want = [("|", escape_text(x)) for x in complete] + ([("<", escape_text(tail))] if tail else [])
    assert log_lines(folder / "c.log") == want
    assert tr.lines == len(complete)
    assert (folder / "c.raw").read_bytes() == data


@given(st.binary(max_size=300))
def test_block_escape_equals_escaping_each_line(data: bytes) -> None:
    lines = _LINE_END.split(data)
    ends = _LINE_END.findall(data)
    want = b"".join(escape_text(x).encode() + e for x, e in zip(lines, [*ends, b""], strict=True))
    assert escape_block(data) == want


def test_buffered_transcript_writes_the_same_files_in_fewer_writes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # capture's transcripts hold their writes until flush(): the files end the same, byte for byte
    chunks = [b"[    0.1] Linux version 6.1\r\n", b"half a li", b"ne\r\n\x1b[1mbold\x1b[0m\r", b"\nnext\r\n", b"login: "]
    plain = Transcript(tmp_path / "plain", "c", Redactor(), partial_flush_s=0.0)
    buffered = Transcript(tmp_path / "buf", "c", Redactor(), partial_flush_s=0.0, buffered=True)
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(tmod.os, "write", counting_write)
    for tr in (plain, buffered):
        writes.clear()
        for chunk in chunks:
            tr.rx(chunk)
        if tr is buffered:
            assert not writes and (tmp_path / "buf" / "c.raw").read_bytes() == b""  # held in memory
            tr.flush()
            assert len(writes) == 2  # one write for .raw, one for .log
        tr.tick()
        tr.flush()
    for tr in (plain, buffered):
        tr.note("gap: connection lost", what="gap.start")  # a note is written at once, buffered or not
    assert "gap: connection lost" in (tmp_path / "buf" / "c.log").read_text()
    for tr in (plain, buffered):
        tr.rx(b"after the gap\r\nand a prompt# ")
        tr.close()  # close writes what is held
    for name in ("c.raw", "c.log"):
        a = (tmp_path / "plain" / name).read_bytes()
        b = (tmp_path / "buf" / name).read_bytes()
        strip = (lambda data: [x.split(b" ", 1)[1] for x in data.splitlines()]) if name == "c.log" else bytes
        assert strip(a) == strip(b)  # the same lines (the log's timestamps may differ by a millisecond)
    assert (tmp_path / "buf" / "c.raw").read_bytes() == b"".join(chunks) + b"after the gap\r\nand a prompt# "


def test_buffered_transcript_rotates_and_reopens_what_it_holds(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor(), rotate_bytes=1000, keep=3, buffered=True)
    for i in range(60):
        tr.rx(b"line %03d of a rotating console\r\n" % i)
    tr.close()
    raws = [tmp_path / "c.raw.2", tmp_path / "c.raw.1", tmp_path / "c.raw"]
    data = b"".join(p.read_bytes() for p in raws if p.exists())
    assert data == b"".join(b"line %03d of a rotating console\r\n" % i for i in range(60))
    assert (tmp_path / "c.raw.1").exists()


def test_buffered_transcript_bounds_what_it_holds(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor(), rotate_bytes=0, buffered=True)
    block = b"x" * 1000 + b"\r\n"
    for _ in range(tmod.BUFFER_MAX_BYTES // len(block) + 2):
        tr.rx(block)
    assert (tmp_path / "c.raw").stat().st_size > 0  # past BUFFER_MAX_BYTES it was written without a flush()
    tr.close()
    assert (tmp_path / "c.raw").stat().st_size == len(block) * (tmod.BUFFER_MAX_BYTES // len(block) + 2)


@pytest.mark.parametrize("secret", [None, "sw0rdfish"])
def test_event_lines_are_what_record_would_write(tmp_path: Path, secret: str | None) -> None:
    # record_events reuses the classifier's JSON of fields and rule (made once per remembered line):
    # each line must be exactly record("event", **ev.to_json()), redaction included
    from consolebot.recognise.classifier import Classifier, hit_event
    from consolebot.recognise.events import Event, Hit, as_hits, json_parts

    red = Redactor([secret] if secret else [])
    tr = Transcript(tmp_path, "c", red)
    fixtures = Path(__file__).parent / "fixtures" / "transcripts"
    data = b"".join(p.read_bytes() for p in sorted(fixtures.glob("*.log")))
    if secret:
        data += b"[   1.0] Kernel panic - not syncing: sw0rdfish\r\n"
    hits: list[Hit] = []
    for i in range(3):  # the second time, every line comes from the classifier's memory (its hits are left
        # unmade: written from their templates); the third with a time (every hit made)
        c = Classifier(clock=(lambda: "2024-05-01T12:00:00.123Z") if i == 2 else None)
        hits += c.feed_hits(data) + as_hits(c.close())
    hits += as_hits([Event("x.made", "info", 1, "made by hand", {"n": 1})])  # type: ignore[dict-item]
    assert any(type(h[2]) is str for h in hits) and any(h[2] is None for h in hits)  # unmade: with and without a timestamp
    events = [hit_event(h) for h in hits]
    assert any(ev.json_tail for ev in events)
    # the JSON the classifier made for remembered lines, with and without timestamps in them, is used
    assert any(json_parts(ev) and "[" in ev.text for ev in events)
    assert any(json_parts(ev) and ev.time for ev in events)
    tr.record_events(hits)
    for ev in events:
        tr.record("event", **ev.to_json())
    tr.close()
    text_lines = (tmp_path / "c.jsonl").read_text().splitlines()
    lines = [x.split(", ", 1)[1] for x in text_lines]  # without the time written
    assert all(x.startswith('{"t": ') for x in text_lines)
    half = len(lines) // 2
    assert lines[:half] == lines[half:]  # the same text, byte for byte
    if secret:
        assert secret not in (tmp_path / "c.jsonl").read_text()
