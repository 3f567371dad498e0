"""Chunking never changes the events, and no input makes the classifier raise."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consolebot.recognise.classifier import Classifier, classify_all
from consolebot.recognise.events import Event
from consolebot.recognise.rules import Rule, builtin_rules

FIX = Path(__file__).parent / "fixtures" / "transcripts"
CORPUS = [p.read_bytes() for p in sorted(FIX.glob("*.log"))]
NOISE = [b"\x1b[6n", b"\x1b[200~", b"\x1b[201~", b"\x08", b"\r", b"\r\r\n", b"\n", b"\xff\xfe", b"\x00",
         b"fs01 login: ", b"Password: ", b"\x1b[31mFAIL\x1b[0m", b"\xc3", b"[ 12.5] sysrq: Resetting\r\n"]


def strip(events: list[Event]) -> list[tuple[object, ...]]:
    return [(e.kind, e.severity, e.line, e.column, e.text, tuple(sorted(e.fields.items()))) for e in events]


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


def _only_prompts_moved(a: list[Event], b: list[Event]) -> bool:
    # idle() reports a prompt as soon as the stream pauses; the whole-file pass reports it when its line ends.
    # Both must report the same events; only the order in the list may differ.
    return sorted(strip(a), key=repr) == sorted(strip(b), key=repr)


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

    def run(cache: bool) -> list[Event]:
        c = Classifier(rules, cache=cache)
        out: list[Event] = []
        for i in range(0, len(data), chunk):
            out += c.feed(data[i : i + chunk])
        return out + c.close()

    fresh = strip(run(False))
    assert strip(run(True)) == fresh
    assert strip(run(True)) == fresh  # the second time from the memory
