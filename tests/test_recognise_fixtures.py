"""Every .expected event, mapped to a consolebot kind, is recognised in order at its substring."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from consolebot.recognise.classifier import classify_all
from consolebot.recognise.events import KINDS

FIX = Path(__file__).parent / "fixtures"
ALLOWED_UNMAPPED = {"SOL_BANNER", "CONSOLE_SERVER_BANNER", "CONSOLE_SERVER_BREAK", "SOL_BREAK_SENT", "KERNEL_CMDLINE",
                    "RUNLEVEL", "MOTD", "FANCY_INFO", "SHUTDOWN_BEGIN", "SHUTDOWN_FINAL", "KERNEL_PANIC_END"}
MAP: dict[str, str] = tomllib.loads((FIX / "expected_kinds.toml").read_text())["map"]
PAIRS = sorted(p.stem for p in (FIX / "transcripts").glob("*.expected"))


def unescape(s: str) -> str:
    return re.sub(r"\\(x[0-9a-fA-F]{2}|r|n|t|\\)",
                  lambda m: {"r": "\r", "n": "\n", "t": "\t", "\\": "\\"}.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), s)


def expected(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (FIX / "transcripts" / f"{name}.expected").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        rows.append((parts[1], unescape(parts[2])))
    return rows


def line_of(text: str, pos: int) -> int:
    """1-based line number of ``pos``: CR LF, CR CR LF, LF and a bare CR (run) each end a line."""
    return len(re.findall(r"\r+\n?|\n", text[:pos])) + 1


def test_map_is_complete_and_uses_known_kinds() -> None:
    names = {n for p in PAIRS for n, _ in expected(p)}
    assert names <= set(MAP), f"unmapped: {names - set(MAP)}"
    unmapped = {n for n, k in MAP.items() if not k}
    assert unmapped <= ALLOWED_UNMAPPED
    assert all(k in KINDS for k in MAP.values() if k)


@pytest.mark.parametrize("name", PAIRS)
def test_expected_events_in_order_at_their_substrings(name: str) -> None:
    data = (FIX / "transcripts" / f"{name}.log").read_bytes()
    text = data.decode("latin-1")
    events = classify_all(data)
    pos = 0
    last_event = -1
    for ev_name, sub in expected(name):
        found = text.find(sub, pos)
        assert found >= 0, f"{name}: substring of {ev_name} not found after {pos}: {sub!r}"
        pos = found + 1
        kind = MAP[ev_name]
        if not kind:
            continue
        line = line_of(text, found)
        matches = [i for i, e in enumerate(events) if e.kind == kind and e.line == line and i > last_event]
        if not matches:
            # an event earlier on the same line as the previous one (two events, one line) is fine too
            matches = [i for i, e in enumerate(events) if e.kind == kind and e.line == line]
        assert matches, f"{name}: no {kind} ({ev_name}) at line {line}: {sub!r}; got " + \
            repr([(e.kind, e.line) for e in events if abs(e.line - line) <= 1])
        last_event = max(last_event, matches[0])


def test_timeline_feed_all_is_feed_one_by_one() -> None:
    # the capture loop hands a read's events to the timeline at once; the boots must be what feeding each gives
    # (as hits: events, and a remembered line's events left unmade, as a capture has them)
    from consolebot.recognise.classifier import Classifier
    from consolebot.recognise.events import as_hits
    from consolebot.recognise.timeline import Timeline

    data = b"".join(p.read_bytes() for p in sorted((FIX / "transcripts").glob("*.log")))
    events = classify_all(data)
    one, batched, unmade = Timeline(), Timeline(), Timeline()
    for ev in events:
        one.feed(ev)
    for i in range(0, len(events), 7):
        batched.feed_all(as_hits(events[i : i + 7]))
    c = Classifier()  # the memory holds every line by now: its hits are unmade
    for i in range(0, len(data), 691):
        unmade.feed_all(c.feed_hits(data[i : i + 691]))
    unmade.feed_all(as_hits(c.idle() + c.close()))
    assert len(one.boots) > 3
    assert batched.summary() == one.summary()
    assert unmade.summary() == one.summary()


def test_a_timeline_keeps_a_bounded_number_of_boots() -> None:
    # a capture runs for months: a machine rebooting every few minutes must not grow its memory for ever
    from consolebot.recognise.events import Event
    from consolebot.recognise.timeline import Timeline

    tl = Timeline(max_boots=5)
    line = 0
    for i in range(12):
        for kind, sev in (("boot.start", "notice"), ("kernel.panic" if i == 1 else "login.prompt", "critical" if i == 1 else "notice"),
                          ("kernel.restart", "notice")):
            line += 1
            tl.feed(Event(kind, sev, line, kind))
    summary = tl.summary()
    assert len(tl.boots) == 5 and [b["index"] for b in summary["boots"]] == [8, 9, 10, 11, 12]
    assert summary["boots_dropped"] == 7
    assert summary["worst_severity"] == "critical"  # the panic of boot 2, dropped, still counts
    assert "boots_dropped" not in Timeline().summary()
