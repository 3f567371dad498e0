"""The streaming classifier: console bytes in any chunking, events out, never raising.

Lines end at CR LF, CR CR LF, LF or a bare CR (a run of CRs, with or without a
following LF, is one line end), exactly as the transcript counts them. Each
complete line is looked up in a memory of lines already classified, shared by
every classifier with the same rules and keyed with the line's printk
timestamp replaced by ``[0.0]`` (a room of consoles printing the same boot is
matched once); a line is remembered across timestamps only when no candidate
rule can look at the timestamp (the tests compare with matching afresh). A new
line is searched for every rule's literal; only lines with one (or with bytes
cleaning would remove) are cleaned and matched against their rules. A line
that has not ended (a prompt) is matched by the prompt rules when ``idle()`` is
called (the stream went quiet) and at ``close()``; the same event is never
reported twice for one line, so the events do not depend on how the bytes were
chunked.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from consolebot.recognise.clean import clean_line, strip_escapes
from consolebot.recognise.events import Event, json_tail, new_event
from consolebot.recognise.rules import Rule, builtin_rules

_LINE_END = re.compile(rb"\r++\n?|\n")



MAX_LINE_BYTES = 64 * 1024  # a line longer than this is cut (its start is classified, numbering is kept)
CACHE_LINES = 50_000  # distinct lines remembered per rule table; past that the memory starts afresh

# A printk timestamp at a line's start: lines are remembered without it, so a line every console of a room
# prints at boot is matched once, not once per console and boot. Only its characters vary between lines.
_PRINTK = re.compile(rb"\[ *\d+\.\d+\]")
_PRINTK_CHARS = frozenset("[] .0123456789")

# What a remembered line gives: its matches (column relative to the end of the timestamp, rule, fields, and
# the JSON text of fields and rule, made once for every event of the line: ``Event.json_tail``) and whether a
# benign rule matched. Two markers: no literal on the line, and "match this line every time".
Match = tuple[int, Rule, dict[str, str], str]
Found = tuple[Match, ...]


class _Slow:
    """A remembered line that is matched afresh each time (its matches may depend on its timestamp)."""

    __slots__ = ("literals",)

    def __init__(self, literals: set[str]) -> None:
        self.literals = literals


Entry = tuple[Found, bool, str] | _Slow  # (matches, benign, the cleaned text after the timestamp)
_NOHIT: Entry = ((), False, "")
_FAILED = _Slow(set())
_SHARED: dict[tuple[object, ...], dict[bytes, Entry]] = {}
_STAMPS = re.compile(rb"\n\[ *\d+\.\d+\]")  # at each line start after an LF (not after a bare CR)
_CANON = b"[0.0]"


def _split_lines(block: bytes) -> list[bytes]:
    """The lines of ``block``, which ends with a line end (C-speed splits unless a CR run has two CRs)."""
    if b"\r" in block and b"\r\r" not in block:
        # each CR is a CR LF or a bare CR: both are one line end, as is LF
        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\r" not in block:
        parts = block.split(b"\n")
    else:
        parts = _LINE_END.split(block)
    parts.pop()  # the empty piece after the last line end
    return parts


def _canonical(block: bytes) -> bytes:
    """``block`` with the printk timestamp at each line start (after an LF) replaced by ``[0.0]``."""
    out = _STAMPS.sub(b"\n" + _CANON, block)
    if out[:1] == b"[":
        m = _PRINTK.match(out)
        if m is not None:
            out = _CANON + out[m.end():]
    return out
_TS_SAFE: dict[tuple[str, int], bool] = {}


def literal_alternation(rules: Iterable[Rule]) -> re.Pattern[bytes]:
    """One regex alternation of the rules' required literals (longest first), on raw bytes."""
    lits = sorted({r.literal.encode("utf-8") for r in rules}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(x) for x in lits))


def _run_could_start_in_timestamp(chars: str) -> bool:
    """Could text starting with ``chars`` begin inside a printk timestamp ``[ *\\d+\\.\\d+]``?

    Inside one there are only its own characters, and it ends with ``]``: a run starting there is
    all timestamp characters up to a ``]``, or all timestamp characters (nothing else known).
    """
    if not chars or chars[0] not in _PRINTK_CHARS:
        return False
    for ch in chars:
        if ch == "]":
            return True
        if ch not in _PRINTK_CHARS:
            return False
    return True


def _pattern_ts_safe(rx: re.Pattern[str]) -> bool:
    """Does a match of ``rx`` never start in, nor look back into, a printk timestamp before it?

    True when every match starts with a fixed character run that cannot begin inside a timestamp and
    the pattern has no lookbehind: then its matches on ``stamp + rest`` are those on any other stamp
    followed by ``rest``, shifted. Anything else (an anchor, a class, a branch first) is not cached.
    """
    key = (rx.pattern, rx.flags)
    known = _TS_SAFE.get(key)
    if known is not None:
        return known
    safe = False
    try:
        sre: Any = importlib.import_module("re._parser")
        consts: Any = importlib.import_module("re._constants")
        tree = sre.parse(rx.pattern, rx.flags)

        def lookbehind(items: Any) -> bool:
            for op, av in items:
                if op in (consts.ASSERT, consts.ASSERT_NOT) and av[0] < 0:
                    return True
                if isinstance(av, sre.SubPattern) and lookbehind(av):
                    return True
                for sub in av if isinstance(av, (tuple, list)) else ():
                    if isinstance(sub, sre.SubPattern) and lookbehind(sub):
                        return True
                    if isinstance(sub, (tuple, list)):
                        for s2 in sub:
                            if isinstance(s2, sre.SubPattern) and lookbehind(s2):
                                return True
            return False

        run: list[str] = []
        items = list(tree)
        while items:
            op, av = items[0]
            if op == consts.LITERAL:
                run.append(chr(av))
                items = items[1:]
            elif op == consts.SUBPATTERN and not run:
                items = list(av[-1]) + items[1:]
            else:
                break
        safe = bool(run) and not _run_could_start_in_timestamp("".join(run)) and not lookbehind(tree)
    except Exception:  # an unknown parser: nothing is cached for a timestamped line
        safe = False
    _TS_SAFE[key] = safe
    return safe


def _fingerprint(rules: list[Rule]) -> tuple[object, ...]:
    return tuple(
        (r.name, r.kind, r.literal, r.pattern, r.severity, r.prompt, r.benign, tuple(sorted(r.fields.items())))
        for r in rules
    )


class Classifier:
    """Given rules (the built-in table by default), turn console bytes into events.

    Each complete line's result is remembered (without its printk timestamp) in a memory shared by
    every classifier with the same rule table, so many consoles printing the same boot cost little;
    ``cache=False`` matches every line afresh (the tests compare both).
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        severities: dict[str, str] | None = None,
        clock: Callable[[], str | None] | None = None,
        cache: bool = True,
    ) -> None:
        self.rules = list(rules) if rules is not None else builtin_rules()
        self.severities = dict(severities or {})
        self.clock = clock
        self._by_literal: dict[str, list[Rule]] = {}
        for r in self.rules:
            self._by_literal.setdefault(r.literal, []).append(r)
        self._lit_bytes = [(lit, lit.encode("utf-8")) for lit in self._by_literal]
        self._order = {id(r): i for i, r in enumerate(self.rules)}
        self._prompt_rules = [r for r in self.rules if r.prompt]
        self._prompt_fast = literal_alternation(self._prompt_rules) if self._prompt_rules else None
        self._pending = b""
        self.line = 1  # the number of the line being assembled
        self._seen_on_line: set[tuple[str, int]] = set()
        self.bytes_in = 0
        self._cache: dict[bytes, Entry] | None = None
        # a literal that could lie in a timestamp would make a line's candidates depend on its digits
        self._canon = cache and not any(_run_could_start_in_timestamp(lit) for lit in self._by_literal)
        self._ts_safe_rules: dict[int, bool] = {}  # see _ts_safe
        if cache:
            self._cache = _SHARED.setdefault(_fingerprint(self.rules), {})

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        """Classify ``data``; return the events of the lines it completed."""
        self.bytes_in += len(data)
        buf = self._pending + data if self._pending else data
        out: list[Event] = []
        # complete lines end at the last line end that is not a CR run at the very end (an LF may follow)
        j = len(buf)
        while j and buf[j - 1] == 13:
            j -= 1
        end = max(buf.rfind(b"\n", 0, j), buf.rfind(b"\r", 0, j)) + 1
        if end:
            self._region(buf, end, out)
        rest = buf[end:]
        if len(rest) > MAX_LINE_BYTES and not rest.endswith(b"\r"):
            self._classify(rest[:MAX_LINE_BYTES], out, partial=False)
            rest = rest[-4096:]
        self._pending = rest
        return out

    def _region(self, buf: bytes, end: int, out: list[Event]) -> None:
        """Classify the complete lines of ``buf[:end]``.

        Escapes are stripped from the whole block at once (no sequence spans a line end). Each line is
        looked up in the memory of lines already matched, its printk timestamp replaced by ``[0.0]``
        (one substitution over the block); a new line is searched for every rule's literal, and only
        a line holding one, or a byte that cleaning would remove (backspace, NUL, DEL), is cleaned and
        matched, then remembered.
        """
        block = strip_escapes(buf[:end])
        raws = _split_lines(block)
        cache = self._cache
        if cache is None:
            entries: list[Entry | None] = [None] * len(raws)
        else:
            keys = raws
            if self._canon and b"[" in block:
                canon = _canonical(block)
                if canon != block:
                    keys = _split_lines(canon)
            entries = list(map(cache.get, keys))
        line = self.line
        for i, entry in enumerate(entries):
            if entry is _NOHIT:
                continue
            if line + i != self.line:
                self._seen_on_line.clear()
                self.line = line + i
            raw = raws[i]
            if entry is None:
                fresh = self._match_line(raw, out)
                if cache is not None:
                    if len(cache) >= CACHE_LINES:
                        cache.clear()
                    cache[keys[i]] = fresh
            elif isinstance(entry, _Slow):
                self._match_line(raw, out, entry.literals or None)
            elif entry[0]:
                cut = 0
                if self._canon and raw[:1] == b"[":
                    m = _PRINTK.match(raw)
                    cut = m.end() if m is not None else 0
                try:
                    text = (raw[:cut].decode("ascii") + entry[2]).strip() if cut else entry[2]
                    self._emit(text, entry[0], entry[1], out, cut)
                except Exception:  # a classifier never raises on console input
                    pass
        line += len(raws)
        if line != self.line:
            self._seen_on_line.clear()
        self.line = line

    def _ts_safe(self, rule: Rule) -> bool:
        """Can ``rule``'s matches not depend on a printk timestamp? (Worked out for a rule when first needed.)"""
        safe = self._ts_safe_rules.get(id(rule))
        if safe is None:
            safe = self._ts_safe_rules[id(rule)] = rule.compiled is not None and _pattern_ts_safe(rule.compiled)
        return safe

    def _match_line(self, raw: bytes, out: list[Event], literals: set[str] | None = None) -> Entry:
        """Match one complete line afresh (``literals``: those it is known to hold); return what may be remembered."""
        if literals is None:
            literals = {lit for lit, lb in self._lit_bytes if lb in raw}
            if b"\x08" in raw or b"\x7f" in raw or b"\x00" in raw:
                literals.add("")  # "" = check every rule on this line
        if not literals:
            return _NOHIT
        try:
            text, found, benign, candidates = self._find(raw, partial=False, literals=literals)
            self._emit(text.strip(), found, benign, out, 0)
        except Exception:  # a classifier never raises on console input
            return _FAILED
        cut = 0
        if self._canon and raw[:1] == b"[":
            m = _PRINTK.match(raw)
            if m is not None:
                # remembered for every timestamp only when no match can depend on it
                cut = m.end()
                if "" in literals or not all(self._ts_safe(r) for r in candidates):
                    return _Slow(literals)
                if any(m[0] < cut for m in found):
                    return _Slow(literals)
                # the cleaned text is the timestamp's followed by the rest's (cleaning removed nothing before it)
                return tuple((col - cut, rule, fields, tail) for col, rule, fields, tail in found), benign, text[cut:]
        return tuple(found), benign, text.strip()

    def idle(self) -> list[Event]:
        """The stream went quiet: match the unfinished line against the prompt rules."""
        out: list[Event] = []
        if self._pending and self._prompt_fast is not None:
            raw = self._pending.rstrip(b"\r")
            if raw and (self._prompt_fast.search(raw) or b"\x1b" in raw):
                self._classify(raw, out, partial=True)
        return out

    def close(self) -> list[Event]:
        """End of input: the unfinished line is matched against every rule."""
        out: list[Event] = []
        raw = self._pending.rstrip(b"\r")
        if raw:
            self._classify(raw, out, partial=False)
        self._pending = b""
        return out

    # -- matching ----------------------------------------------------------------------------------------
    def _classify(self, raw: bytes, out: list[Event], partial: bool, literals: set[str] | None = None) -> None:
        try:
            if partial:
                fast = self._prompt_fast
                if fast is None:
                    return
                if fast.search(raw) is None and b"\x1b" not in raw and b"\x08" not in raw:
                    return
            text, found, benign, _candidates = self._find(raw, partial, literals)
            self._emit(text.strip(), found, benign, out, 0)
        except Exception:  # a classifier never raises on console input
            return

    def _find(
        self, raw: bytes, partial: bool, literals: set[str] | None
    ) -> tuple[str, list[Match], bool, list[Rule]]:
        """Clean ``raw`` and match its candidate rules: (text, matches by column, benign, candidates)."""
        text = clean_line(raw)
        if literals and "" not in literals:
            # the literal search found every literal on this line: exact
            candidates = [r for lit in literals for r in self._by_literal[lit]]
            if len(literals) > 1:
                candidates.sort(key=lambda r: self._order[id(r)])
        else:
            rules = self._prompt_rules if partial else self.rules
            candidates = [r for r in rules if r.literal in text]
        found: list[Match] = []
        benign = False
        for rule in candidates:
            assert rule.compiled is not None
            for m in rule.compiled.finditer(text):
                fields = dict(rule.fields)
                fields.update({k: v for k, v in m.groupdict().items() if v is not None})
                if rule.benign:
                    benign = True
                    fields.setdefault("reason", rule.benign)
                found.append((m.start(), rule, fields, json_tail(fields, rule.name)))
                if rule.kind not in ("service.ok", "service.fail", "afs.busy_volume", "afs.server_down"):
                    break
        found.sort(key=lambda x: x[0])
        return text, found, benign, candidates

    def _emit(self, text: str, found: Iterable[Match], benign: bool, out: list[Event], shift: int) -> None:
        """Report the matches ``found`` on the current line (``text``: its cleaned, stripped text)."""
        now = self.clock() if self.clock else None
        seen = self._seen_on_line
        severities = self.severities
        for col, rule, fields, tail in found:
            col += shift
            sev = severities.get(rule.kind, rule.severity) if severities else rule.severity
            if benign and rule.kind != "benign" and sev in ("warning", "critical"):
                continue  # the line is known-harmless: its alarm is not raised
            key = (rule.kind, col)
            if key in seen:
                continue
            seen.add(key)
            out.append(new_event(rule.kind, sev, self.line, text, dict(fields), now, rule.name, col, tail))

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)


def classify_all(data: bytes, chunk: int = 0, rules: Iterable[Rule] | None = None) -> list[Event]:
    """Classify a whole transcript (optionally in chunks of ``chunk`` bytes); return every event."""
    c = Classifier(rules)
    out: list[Event] = []
    if chunk <= 0:
        out += c.feed(data)
    else:
        for i in range(0, len(data), chunk):
            out += c.feed(data[i : i + chunk])
    out += c.idle()
    out += c.close()
    return out
