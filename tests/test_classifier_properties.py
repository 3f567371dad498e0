"""Chunking never changes the events, and no input makes the classifier raise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consolebot.recognise import classifier as cmod
from consolebot.recognise.classifier import Classifier, classify_all, hit_event
from consolebot.recognise.events import Event
from consolebot.recognise.rules import Rule, builtin_rules

FIX = Path(__file__).parent / "fixtures" / "transcripts"
CORPUS = [p.read_bytes() for p in sorted(FIX.glob("*.log"))]
NOISE = [b"\x1b[6n", b"\x1b[200~", b"\x1b[201~", b"\x08", b"\r", b"\r\r\n", b"\n", b"\xff\xfe", b"\x00",
         b"fs01 login: ", b"Password: ", b"\x1b[31mFAIL\x1b[0m", b"\xc3", b"[ 12.5] sysrq: Resetting\r\n"]


def strip(events: list[Event]) -> list[tuple[object, ...]]:
    return [(e.kind, e.severity, e.line, e.column, e.text, tuple(sorted(e.fields.items()))) for e in events]


def _classify(rules: list[Rule], data: bytes, chunk: int, cache: bool) -> list[Event]:
    """The events of ``data`` fed in chunks of ``chunk`` bytes, with or without the line memory."""
    c = Classifier(rules, cache=cache)
    out: list[Event] = []
    for i in range(0, len(data), chunk):
        out += c.feed(data[i : i + chunk])
    return out + c.close()


def run_chunks(data: bytes, cuts: list[int], idle_at: set[int]) -> list[Event]:
    c = Classifier()
    out: list[Event] = []
    pos = 0
    for i, n in enumerate(cuts):
        out += c.feed(data[pos : pos + n])
        pos += n
        if i in idle_at:
            out += c.idle()  # the stream paused here (live use)
    out += c.feed(data[pos:])
    out += c.idle()
    out += c.close()
    return out


realistic = st.builds(
    lambda parts, noise: b"".join(p + n for p, n in zip(parts, noise, strict=False)),
    st.lists(st.sampled_from(CORPUS), min_size=1, max_size=4),
    st.lists(st.sampled_from(NOISE), min_size=4, max_size=4),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(realistic, st.lists(st.integers(min_value=1, max_value=4096), max_size=200),
       st.sets(st.integers(min_value=0, max_value=200), max_size=10))
def test_chunking_never_changes_the_events(data: bytes, cuts: list[int], idle_at: set[int]) -> None:
    whole = classify_all(data)
    assert strip(run_chunks(data, cuts, idle_at)) == strip(whole) or _only_prompts_moved(
        run_chunks(data, cuts, idle_at), whole
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(realistic, st.lists(st.integers(min_value=1, max_value=4096), max_size=200),
       st.sets(st.integers(min_value=0, max_value=200), max_size=10))
def test_hits_made_events_are_the_events_feed_makes(data: bytes, cuts: list[int], idle_at: set[int]) -> None:
    # a capture takes hits, most of them unmade (a remembered line's template and its timestamp); made, each must
    # be the event ``feed`` makes, attribute for attribute (its JSON pieces too), in the same order
    unmade = 0

    def run(hits: bool) -> list[Event]:
        nonlocal unmade
        c = Classifier()
        out: list[Event] = []
        pos = 0
        for i, n in enumerate([*cuts, len(data)]):
            chunk = data[pos : pos + n]
            pos += n
            if hits:
                got = c.feed_hits(chunk)
                unmade += sum(not isinstance(h[2], Event) for h in got)
                out += [hit_event(h) for h in got]
            else:
                out += c.feed(chunk)
            if i in idle_at:
                out += c.idle()
        return out + c.close()

    cmod._SHARED.clear()  # a cold memory: a block holds new lines and lines remembered from earlier in the data
    mixed = run(True)
    made = run(False)  # the memory is warm now: every line is remembered
    hits = run(True)
    assert [ev.__dict__ for ev in hits] == [ev.__dict__ for ev in made]
    assert strip(mixed) == strip(made)
    assert unmade or not made


_PROMPT_RULES = {r.name for r in builtin_rules() if r.prompt}


def _only_prompts_moved(a: list[Event], b: list[Event]) -> bool:
    # idle() reports a prompt as soon as the stream pauses; the whole-file pass reports it when its line ends.
    # Both must report the same events; only the order in the list may differ, and a prompt's text: reported at
    # the pause it is the line so far, which may go on after it (kernel messages printed after a shell prompt, or
    # backspaces that edit it).
    def key(e: Event) -> tuple[object, ...]:
        return (e.kind, e.severity, e.line, e.column, "" if e.rule in _PROMPT_RULES else e.text,
                tuple(sorted(e.fields.items())))

    return sorted(map(key, a), key=repr) == sorted(map(key, b), key=repr)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=20000), st.integers(min_value=1, max_value=997))
def test_random_bytes_never_raise_and_still_chunk_invariantly(data: bytes, chunk: int) -> None:
    assert strip(classify_all(data, chunk)) == strip(classify_all(data))


def test_one_byte_chunks_equal_whole_file() -> None:
    data = b"".join(CORPUS)
    assert strip(classify_all(data, 1)) == strip(classify_all(data))


def test_prompt_is_seen_while_the_line_is_open() -> None:
    c = Classifier()
    assert c.feed(b"\r\nDebian GNU/Linux 12 fs01 ttyS1\r\n\r\nfs01 login: ") == []
    evs = c.idle()
    assert [e.kind for e in evs] == ["login.prompt"] and evs[0].fields["host"] == "fs01"
    # when the user's name is echoed and the line ends, the same prompt is not reported again
    assert [e.kind for e in c.feed(b"root\r\n")] == []


def test_kernel_line_glued_after_a_prompt() -> None:
    evs = classify_all(b"fs01 login: [  5.0] sysrq: Emergency Sync\r\n")
    assert [e.kind for e in evs] == ["login.prompt", "sysrq.ack"]


def test_bare_prompt_and_busybox_escape() -> None:
    evs = classify_all(b"login: ")
    assert evs[0].kind == "login.prompt" and evs[0].fields["host"] == ""
    evs = classify_all(b"~ # \x1b[6n")
    assert evs[0].kind == "shell.prompt"


def test_benign_line_raises_no_alarm() -> None:
    evs = classify_all(b"InnoDB: Crash recovery may have failed for some .ibd files!\r\n")
    assert [e.kind for e in evs] == ["benign"]


_TS_RE = re.compile(rb"^\[ *\d+\.\d+\] ?")
LINES = sorted({_TS_RE.sub(b"", x) for doc in CORPUS for x in re.split(rb"\r\r\n|\r\n|\n|\r", doc)})
# rules whose matches do depend on the printk timestamp: the memory of lines must not reuse them across stamps
STAMP_RULES = [
    Rule("site.stamp", "site.stamp", "Linux version", r"^\[\s*(?P<sec>\d+)\.\d+\] Linux version", "info").compile(),
    Rule("site.behind", "site.behind", "e", r"(?<=[0-4]\] )\w+", "info").compile(),
    Rule("site.digit", "site.digit", "Linux", r"(?P<d>\d)\] Linux", "info").compile(),
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(0, 99999)), st.integers(0, 999999),
                          st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r\n"])), max_size=60),
       st.booleans(), st.integers(min_value=1, max_value=500))
def test_remembered_lines_give_the_events_of_matching_afresh(pool: list[bytes], picks: list[tuple[int, int | None, int, bytes]],
                                                             site: bool, chunk: int) -> None:
    # the memory of classified lines is keyed without the printk timestamp and shared between classifiers:
    # whatever it holds, the events are those of matching every line afresh (a few lines, repeated, stamped or not)
    data = b"".join((b"" if sec is None else b"[%5d.%06d] " % (sec, us)) + pool[i % len(pool)] + end
                    for i, sec, us, end in picks)
    rules = (STAMP_RULES if site else []) + builtin_rules()
    fresh = strip(_classify(rules, data, chunk, cache=False))
    assert strip(_classify(rules, data, chunk, cache=True)) == fresh
    assert strip(_classify(rules, data, chunk, cache=True)) == fresh  # the second time from the memory


# -- timestamps anywhere in a line (``Starting AFS services:[ 1203.531106] openafs: ...``) -----------------------
# rules that do observe a timestamp in the middle of a line, or may: the memory must never reuse their results
MID_RULES = [
    Rule("site.width", "site.width", "AFS services:", r"AFS services:\W{0,3}(?P<n>\d+)", "info").compile(),
    Rule("site.peek", "site.peek", "progress", r"progress(?P<tail>[^a-z]{0,6})", "info").compile(),
    Rule("site.prompt", "site.prompt", "root@", r"^root@\S+ (?P<ts>\S*)", "info").compile(),
    Rule("site.ahead", "site.ahead", "afs:", r"afs:(?= .*[0-4]\] )", "info").compile(),
    Rule("site.lazy", "site.lazy", "Starting ", r"Starting (?P<what>.*?)(?P<d>[0-4])\]", "info").compile(),
    Rule("site.behind2", "site.behind2", "afs", r"(?<=[0-4]\] )afs", "info").compile(),
]
MID_LINES = [
    b"Starting AFS services: openafs: loading out-of-tree module taints kernel.",
    b" salvage in progress........ ata3: hard resetting link",
    b"root@fs01:~#  afs: Lost contact with file server 192.0.2.10 in cell example.org",
    b"root@fs01:~# afs: file server 192.0.2.10 in cell example.org is back up",
    b"Starting OpenBSD Secure Shell server: sshd.",
    b" Linux version 2.6.32-5-amd64 (jmm@debian.org) #1 SMP",
    b" Kernel panic - not syncing: VFS: Unable to mount root fs",
    b"sysrq: Emergency Sync complete",
    b"fs01 login: ",
]


def _stamp(sec: int, us: int, pad: int) -> bytes:
    return b"[%*d.%06d]" % (pad, sec, us)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(MID_LINES), st.lists(st.integers(0, 100), min_size=1, max_size=2)),
                min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 99999), st.integers(0, 999999), st.integers(1, 6),
                          st.sampled_from([b"\r\n", b"\n", b"\r"])), min_size=1, max_size=40),
       st.booleans(), st.integers(min_value=1, max_value=300))
def test_lines_with_timestamps_anywhere_give_the_events_of_matching_afresh(
        shapes: list[tuple[bytes, list[int]]], picks: list[tuple[int, int, int, int, bytes]], site: bool,
        chunk: int) -> None:
    # a few line shapes (a text and where timestamps go in it), each printed again and again with other digits
    # and widths: the memory holds each shape under one key and must give what matching afresh gives
    out = []
    for i, sec, us, pad, end in picks:
        text, where = shapes[i % len(shapes)]
        line = text
        for k, pos in enumerate(sorted({min(p, len(text)) for p in where}, reverse=True)):
            line = line[:pos] + _stamp(sec + k, us, pad) + line[pos:]
        out.append(line + end)
    data = b"".join(out)
    rules = (MID_RULES + STAMP_RULES if site else []) + builtin_rules()
    fresh = strip(_classify(rules, data, chunk, cache=False))
    assert strip(_classify(rules, data, chunk, cache=True)) == fresh
    assert strip(_classify(rules, data, chunk, cache=True)) == fresh  # the second time from the memory


def _both(rules: list[Rule], lines: list[bytes]) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    def run(cache: bool) -> list[tuple[object, ...]]:
        c = Classifier(rules, cache=cache)
        evs: list[Event] = []
        for x in lines:  # one line at a time: the second is looked up in the memory the first filled
            evs += c.feed(x + b"\r\n")
        return strip(evs + c.close())

    return run(True), run(False)


MID_CASES = [  # (a rule that observes a mid-line timestamp, lines with the same key)
    (MID_RULES[0], [b"Starting AFS services:[ 1203.531106] openafs: x", b"Starting AFS services:[   11.204883] openafs: x"]),
    (MID_RULES[1], [b" salvage in progress[  412.662840] ata3: x", b" salvage in progress[    2.662840] ata3: x"]),
    (MID_RULES[2], [b"root@fs01:~# [621.448015] afs: Lost contact", b"root@fs01:~# [  1.448015] afs: Lost contact"]),
    (MID_RULES[3], [b"root@fs01:~# afs: x [  621.448014] y", b"root@fs01:~# afs: x [    1.448015] y"]),
    (MID_RULES[4], [b"Starting AFS services:[   14.902251] x", b"Starting AFS services:[   17.902251] x"]),
    (MID_RULES[5], [b"x [   14.902254] afs: up", b"x [   17.902255] afs: up"]),
]


def test_rules_that_observe_a_mid_line_timestamp_are_matched_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    import consolebot.recognise.classifier as classifier_module
    from consolebot.recognise import stamps

    for rule, lines in MID_CASES:
        monkeypatch.setattr(classifier_module, "_SHARED", {})
        remembered, fresh = _both([rule, *builtin_rules()], lines)
        assert remembered == fresh, rule.name
        assert len({e[4] for e in fresh if e[0] == rule.kind}) >= 1, rule.name  # the rule did match
    # the check matters: with the safety analysis disabled, each of these lines gets another line's events
    monkeypatch.setattr(stamps.Shape, "safe", lambda self, text, spans: True)
    wrong = 0
    for rule, lines in MID_CASES:
        monkeypatch.setattr(classifier_module, "_SHARED", {})
        remembered, fresh = _both([rule, *builtin_rules()], lines)
        wrong += remembered != fresh
    assert wrong == len(MID_CASES)


def test_mid_line_timestamps_are_remembered_for_the_builtin_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    import consolebot.recognise.classifier as classifier_module

    monkeypatch.setattr(classifier_module, "_SHARED", {})
    lines = [b"Starting AFS services:[ 1203.531106] openafs: module license 'x' taints kernel.",
             b" salvage in progress.....[  412.662840] ata3: hard resetting link",
             b"root@fs01:~# [  621.448015] afs: Lost contact with file server 192.0.2.10 in cell example.org",
             b"[ 1.000000] Linux version 2.6.32-5-amd64 (jmm@debian.org) #1 SMP",
             b"[ 2.000000] Kernel panic - not syncing: VFS: Unable to mount root fs",
             b"[ 3.000000] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs",
             b"[ 4.000000] sysrq: Emergency Sync complete"]
    c = Classifier()
    c.feed(b"".join(x + b"\r\n" for x in lines))
    again = b"".join(re.sub(rb"\d+\.\d+\]", b"77.123456]", x) + b"\r\n" for x in lines)
    calls = []
    real = Classifier._find
    monkeypatch.setattr(Classifier, "_find", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    evs = Classifier().feed(again)
    assert calls == []  # every line came from the memory
    assert strip(evs) == strip(Classifier(cache=False).feed(again))
    assert any("77.123456" in e.text for e in evs)


@pytest.mark.parametrize("line", [
    b"root@fs01:~# [ 7454.792822] afs: file server 192.0.2.10 in cell example.org is back up\r\n",
    b"  Starting AFS services:[ 6847.236909] openafs: module license 'x' taints kernel.  \r\n",
    b"[   12.500000] sysrq: Resetting\r\n",
])
def test_a_remembered_line_with_one_timestamp_anywhere_gives_the_events_of_matching_afresh(line: bytes) -> None:
    # remembered once (its timestamp made [0.0]), the same line with other timestamps is not matched again: its
    # events are made from the text around the timestamp, with the columns after it moved by the width it has
    cmod._SHARED.clear()
    warm = Classifier()
    warm.feed_hits(line)
    for stamp in (b"[    1.000000]", b"[123456.789012]", b"[0.5]"):
        other = re.sub(rb"\[ *\d+\.\d+\]", stamp.replace(b"\\", b"\\\\"), line)
        hits = warm.feed_hits(other)
        assert hits and all(isinstance(h[2], str) for h in hits), "left unmade: from the remembered line"
        afresh = Classifier(cache=False).feed(other)
        made = [hit_event(h) for h in hits]
        for ev, want in zip(made, afresh, strict=True):
            assert (ev.kind, ev.column, ev.text, ev.fields) == (want.kind, want.column, want.text, want.fields)
        from consolebot.session.transcript import event_line, event_lines_py

        start = '{"t": "T", "type": "event", '
        assert event_lines_py(hits, start) == "".join(
            event_line((ev.line, ev.__dict__, ev), start) for ev in made).encode()
