"""The optional C hot path (consolebot/_fastpath.c) gives byte for byte what the Python code it stands in for gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from consolebot.recognise import classifier as cmod
from consolebot.session import transcript as tmod

if os.environ.get("CI"):  # CI installs a C compiler and builds it: not built is a failure there
    from consolebot import _fastpath as fast
else:
    fast = pytest.importorskip("consolebot._fastpath", reason="the C hot path was not built (no C compiler)")

FIX = Path(__file__).parent / "fixtures" / "transcripts"
CORPUS = b"".join(p.read_bytes() for p in sorted(FIX.glob("*.log")))

# bytes that matter: line ends, escapes, a backslash, controls, UTF-8 (valid, cut short, overlong, a surrogate,
# past U+10FFFF), printk timestamps (and near misses), plain text
PIECES = [b"\r", b"\n", b"\r\n", b"\r\r\n", b"\\", b"\t", b"\x00", b"\x07", b"\x1b", b"\x7f", b"\x80", b"\xff",
          "é".encode(), "€".encode(), "😀".encode(), b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
          b"\xf0\x9f", b"[    1.234567]", b"[12.5]", b"[0.0]", b"[ 1.]", b"[.5]", b"[ 12a.3]", b"[", b"]", b"ok ",
          b"Kernel panic - not syncing: ", b"login: "]
blocks = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)), max_size=40).map(b"".join)


def lines_of(data: bytes) -> bytes:
    """``data`` cut after its last line end (what the transcript and the classifier hand on)."""
    return data[: max(data.rfind(b"\n"), data.rfind(b"\r")) + 1]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks, st.sampled_from([b"2024-05-01T12:00:00.123Z | ", b"", b"H\\x "]))
@example(b"a\r\r\r\nb\rc\n\n\r", b"H ")
@example("naïve\x1b[0m\\ok\r\n".encode() + b"\xe2\x82\r\n", b"H ")
def test_log_lines_is_the_python_code(data: bytes, head: bytes) -> None:
    region = lines_of(data)
    assume(region)  # (the transcript hands on at least one line)
    assert fast.log_lines(region, head) == tmod.log_lines_py(region, head)


def test_log_lines_on_the_real_transcripts() -> None:
    for cut in (691, 5760):
        for i in range(0, len(CORPUS), cut):
            region = lines_of(CORPUS[i : i + cut])
            if region:
                assert fast.log_lines(region, b"T | ") == tmod.log_lines_py(region, b"T | ")


unended = st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
times = st.one_of(st.floats(min_value=0.0, max_value=4e9, allow_nan=False),
                  st.sampled_from([1_700_000_000.0, 1_700_000_000.0005, 1_700_000_000.9995, 1_700_000_000.9999996,
                                   1_700_000_001.0000005, 0.0]),
                  st.integers(min_value=0, max_value=4_000_000_000))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks, unended, st.booleans(), times)
@example(b"\r\r\nabc", b"", True, 1_700_000_000.0)
@example(b"\r\r", b"x", True, 1_700_000_000.0)
@example(b"\n", b"", True, 1.0)
@example(b"tail", b"head ", False, 1.0)
@example(b"a\r", b"", False, 1.0)
def test_rx_lines_is_the_python_code(data: bytes, line: bytes, pending_cr: bool, now: float) -> None:
    assert fast.rx_lines(data, line, pending_cr, now) == tmod.rx_lines_py(data, line, pending_cr, now)


def test_rx_lines_in_reads_gives_the_log_of_the_whole(tmp_path: Path) -> None:
    # the real transcripts in reads of every size: the same log as the lines of the whole at once
    whole, n = tmod.log_lines_py(lines_of(CORPUS), tmod._head(1_700_000_000.0, b"|"))
    for size in (1, 7, 691, 4096):
        out, count, line, pending = [], 0, b"", False
        for i in range(0, len(CORPUS), size):
            text, k, line, pending = fast.rx_lines(CORPUS[i : i + size], line, pending, 1_700_000_000.0)
            if text is not None:
                out.append(text)
                count += k
        assert (b"".join(out), count) == (whole, n), size


def _memory(data: bytes) -> dict[bytes, object]:
    """A line memory holding some of the lines of ``data`` (by their keys), some of them as no-hits."""
    _found, _n, _stamped, _hits = cmod.lookup_py(data, {}, cmod._NOHIT, True)
    memory: dict[bytes, object] = {}
    for k, (_i, _raw, key, _entry) in enumerate(_found):
        memory[key] = cmod._NOHIT if k % 3 == 0 else ("entry", k) if k % 3 == 1 else None
    return memory


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks, st.booleans())
@example(b"[ 1.5] a\r\r[2.25] b [3.0]\n[0.0] c\n\n", True)
def test_lookup_is_the_python_code(data: bytes, canon: bool) -> None:
    block = lines_of(data)
    memory = _memory(block)
    got = fast.lookup(block, memory, cmod._NOHIT, canon)
    want = cmod.lookup_py(block, memory, cmod._NOHIT, canon)
    assert got == want
    assert all(a[3] is b[3] for a, b in zip(got[0], want[0], strict=True))  # the very entries


def _remembered(data: bytes) -> dict[bytes, object]:
    """A line memory as a classifier builds it, from the lines of ``data`` (a real classifier's, fed twice)."""
    c = cmod.Classifier()
    c.feed(data)
    assert c._cache is not None
    return c._cache  # type: ignore[return-value]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(CORPUS.splitlines(keepends=True)[:400]), max_size=60).map(b"".join),
       st.integers(min_value=1, max_value=10**6), st.booleans())
def test_lookup_with_hits_is_the_python_code(data: bytes, line0: int, skip_first: bool) -> None:
    # remembered lines (their text, or their one timestamp) come out as hits, from C as from Python
    block = lines_of(data)
    memory = _remembered(CORPUS)
    args = (block, memory, cmod._NOHIT, True, line0, cmod._LEAD, skip_first)
    got, want = fast.lookup(*args), cmod.lookup_py(*args)  # type: ignore[arg-type]
    assert got == want
    assert all(a[1] is b[1] for a, b in zip(got[3], want[3], strict=True))  # the templates' very attributes


def test_lookup_with_hits_on_the_real_transcripts() -> None:
    memory = _remembered(CORPUS)
    hits = 0
    for i in range(0, len(CORPUS), 691):
        block = lines_of(CORPUS[i : i + 691])
        args = (block, memory, cmod._NOHIT, True, i, cmod._LEAD, False)
        got = fast.lookup(*args)  # type: ignore[arg-type]
        assert got == cmod.lookup_py(*args)  # type: ignore[arg-type]
        hits += len(got[3])
    assert hits > 100  # most of the 177 events of the transcripts (a line cut by a chunk start is not one)


def test_event_lines_are_the_python_code() -> None:
    # unmade hits (a warm memory) written by C from their templates, made events by ``event_line``: as in Python
    from consolebot.recognise.events import Event, as_hits

    _remembered(CORPUS)
    c = cmod.Classifier()
    start = '{"t": "2024-05-01T12:00:00.123Z", "type": "event", '
    unmade = 0
    for i in range(0, len(CORPUS), 691):
        hits = c.feed_hits(CORPUS[i : i + 691])
        assert fast.event_lines(hits, start, tmod.event_line) == tmod.event_lines_py(hits, start)
        unmade += sum(not isinstance(h[2], Event) for h in hits)
    assert unmade > 100
    assert fast.event_lines([], start, tmod.event_line) == b""
    made = as_hits(cmod.classify_all(CORPUS)[:3])
    mixed = [*c.feed_hits(CORPUS[:2000]), *made, *c.feed_hits(CORPUS[2000:4000])]
    assert fast.event_lines(mixed, start, tmod.event_line) == tmod.event_lines_py(mixed, start)
    assert fast.event_lines(made, start, lambda hit, start: "made\n") == b"made\n" * 3  # made ones: from ``line``
    every = cmod.Classifier().feed_hits(CORPUS)  # past the C's first buffer (4 KB): the rest on the heap
    written = fast.event_lines(every, start, tmod.event_line)
    assert len(written) > 40_000 and written == tmod.event_lines_py(every, start)


ESCAPY = [b"\x1b", b"[", b"]", b"(", b")", b"\\", b"\x07", b"P", b"X", b"^", b"_", b"0", b"9", b";", b"?", b" ", b"/",
          b"@", b"~", b"m", b"=", b"<", b">", b"c", b"\r", b"\n", b"a", b"\x7f", b"\xff", b"!", b"$"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(ESCAPY), st.binary(max_size=3)), max_size=30).map(b"".join))
@example(b"a\x1b")
@example(b"a\x1b\n")
@example(b"\x1b\n\n")
@example(b"\x1b]0;title\x07x\x1b]2;t\x1b\\y\x1bPq\x1b\\z\x1b(B\x1b7\x1b[1;31mred\x1b[0m\x1b[?2004h\x1b[200~")
def test_strip_escapes_is_the_regex(data: bytes) -> None:
    from consolebot.recognise import clean

    assert fast.strip_escapes(data) == clean.strip_escapes_py(data)


def test_lookup_on_the_real_transcripts() -> None:
    memory = _memory(CORPUS)
    for cut in (691, 5760):
        for i in range(0, len(CORPUS), cut):
            block = lines_of(CORPUS[i : i + cut])
            assert fast.lookup(block, memory, cmod._NOHIT, True) == cmod.lookup_py(block, memory, cmod._NOHIT, True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks, blocks, st.booleans(), st.integers(min_value=1, max_value=10**6), st.booleans())
@example(b"", b"a\r", True, 1, False)
@example(b"x\r", b"\ny\n\r\r", True, 1, True)
@example(b"", b"\x1b[0mok\r\n\x1b[", True, 1, False)
def test_read_lines_is_the_python_code(pending: bytes, data: bytes, canon: bool, line0: int, skip_first: bool) -> None:
    memory = _memory(CORPUS + pending + data)
    args = (pending, data, memory, cmod._NOHIT, canon, line0, cmod._LEAD, skip_first)
    assert fast.read_lines(*args) == cmod.read_lines_py(*args)
    assert fast.read_lines(*args[:5], None, cmod._LEAD, False) == cmod.read_lines_py(*args[:5], None, cmod._LEAD, False)


def test_the_hot_path_in_use_is_the_c_one() -> None:
    # built (the test above ran), the transcript and the classifier use it
    assert tmod.log_lines is fast.log_lines
    assert tmod.rx_lines is fast.rx_lines
    assert tmod.event_lines is fast.event_lines
    from consolebot.recognise import clean

    assert clean.strip_escapes is fast.strip_escapes
    assert cmod.lookup is fast.lookup
    assert cmod._read_lines is fast.read_lines


def test_bad_arguments_raise_type_errors_not_crashes() -> None:
    with pytest.raises(TypeError):
        fast.log_lines("text", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.lookup(b"x\n", [], None, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.log_lines(b"x\n")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        fast.event_lines((), "", tmod.event_line)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.event_lines([(1, {"kind": "x"}, Ellipsis)], "", lambda hit, start: b"not text")  # type: ignore
    with pytest.raises(TypeError):
        fast.strip_escapes("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.read_lines(b"", b"x\n", {}, None, True, 1, "", False, "extra")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        fast.read_lines(bytearray(), b"x\n", {}, None, True, 1, "", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.rx_lines(b"x\n", bytearray(b"y"), False, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.rx_lines(b"x\n", b"", False, "now")  # type: ignore[arg-type]
    with pytest.raises(KeyError):  # no ``_jpost``: left to ``line``, which cannot write it either
        fast.event_lines([(1, {"_jpre": "x"}, None)], "s", tmod.event_line)


def _capture_path(folder: Path, name: str) -> tuple[list[dict[str, object]], bytes, list[str]]:
    """The transcript and the classifier as a capture drives them, over the real transcripts in reads of 691
    bytes: the events made, the log, the JSON lines without their time."""
    from consolebot.recognise.classifier import Classifier, hit_event
    from consolebot.secrets.redact import Redactor

    tr = tmod.Transcript(folder, name, Redactor(), buffered=True)
    c = Classifier()
    events: list[dict[str, object]] = []
    for i in range(0, len(CORPUS), 691):
        hits = c.feed_hits(tr.rx(CORPUS[i : i + 691], now=1_700_000_000.0))
        tr.record_events(hits)
        events += [hit_event(h).__dict__ for h in hits]
    tr.close()
    jsonl = [line.split(", ", 1)[1] for line in (folder / f"{name}.jsonl").read_text().splitlines()]
    return events, (folder / f"{name}.log").read_bytes(), jsonl


def test_the_python_path_gives_what_the_c_path_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # without a C compiler consolebot runs the Python code: the same events, log and JSON lines
    from consolebot.recognise import clean

    cmod.classify_all(CORPUS)  # the line memory holds every line: both runs find them remembered
    with_c = _capture_path(tmp_path, "c")
    monkeypatch.setattr(tmod, "log_lines", tmod.log_lines_py)
    monkeypatch.setattr(tmod, "rx_lines", tmod.rx_lines_py)
    monkeypatch.setattr(tmod, "event_lines", tmod.event_lines_py)
    monkeypatch.setattr(cmod, "lookup", cmod.lookup_py)
    monkeypatch.setattr(cmod, "_read_lines", None)
    monkeypatch.setattr(cmod, "_HITS_IN_LOOKUP", False)
    monkeypatch.setattr(cmod, "strip_escapes", clean.strip_escapes_py)
    in_python = _capture_path(tmp_path, "py")
    assert with_c[0] and with_c[1] and with_c[2]
    assert in_python == with_c


# -- the timeline ---------------------------------------------------------------------------------------------------
from consolebot.recognise import timeline as tlmod  # noqa: E402

_KINDS = sorted(tlmod._PHASE_KINDS) + ["benign", "kernel.hung_task", "shell.prompt", "afs.busy_volume"]
_hit_attrs = st.fixed_dictionaries({
    "kind": st.sampled_from(_KINDS),
    "severity": st.sampled_from(["info", "notice", "warning", "critical", "debug"]),
    "fields": st.fixed_dictionaries({}, optional={
        "service": st.sampled_from(["", "postgresql", "domtool-server", "openafs-fileserver"]),
        "action": st.sampled_from(["", "Resetting", "Power Off", "Emergency Sync", "Resetting system"]),
        "kernel": st.sampled_from(["", "6.1.0-18-amd64"]),
    }),
})


def test_the_timeline_kinds_are_the_ones_timeline_names() -> None:
    assert set(fast.TIMELINE_KINDS) == tlmod._PHASE_KINDS


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_hit_attrs, max_size=60), st.lists(st.integers(min_value=1, max_value=8), max_size=12),
       st.integers(min_value=1, max_value=4))
def test_timeline_feed_is_the_python_code(attrs: list[dict[str, object]], cuts: list[int], max_boots: int) -> None:
    hits = [(n + 1, a, None) for n, a in enumerate(attrs)]
    in_c, in_py = tlmod.Timeline(max_boots), tlmod.Timeline(max_boots)
    i = 0
    for size in [*cuts, len(hits)]:  # in reads of several sizes, as a capture feeds it
        fast.timeline_feed(in_c, hits[i : i + size])
        in_py.feed_all_py(hits[i : i + size])
        i += size
    assert in_c.boots == in_py.boots  # every field of every boot (dataclasses)
    assert (in_c._restarting, in_c.boots_dropped, in_c._worst_dropped) == (
        in_py._restarting, in_py.boots_dropped, in_py._worst_dropped)
    assert in_c.summary() == in_py.summary()


def test_timeline_feed_on_the_real_transcripts() -> None:
    hits = cmod.Classifier().feed_hits(CORPUS)
    assert len(hits) > 100
    in_c, in_py = tlmod.Timeline(), tlmod.Timeline()
    for i in range(0, len(hits), 4):
        fast.timeline_feed(in_c, hits[i : i + 4])
        in_py.feed_all_py(hits[i : i + 4])
    assert in_c.boots == in_py.boots and len(in_c.boots) > 3


def test_timeline_feed_rejects_what_is_no_hit() -> None:
    with pytest.raises(TypeError):
        fast.timeline_feed(tlmod.Timeline(), ((1, {}, None),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast.timeline_feed(tlmod.Timeline(), [(1, "kind", None)])
    with pytest.raises(KeyError):
        fast.timeline_feed(tlmod.Timeline(), [(1, {"kind": "service.ok"}, None)])
