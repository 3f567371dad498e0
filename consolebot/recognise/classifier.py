"""The streaming classifier: console bytes in any chunking, events out, never raising.

Lines end at CR LF, CR CR LF, LF or a bare CR (a run of CRs, with or without a
following LF, is one line end), exactly as the transcript counts them. Each
complete line is looked up in a memory of lines already classified, shared by
every classifier with the same rules and severities and keyed with every printk
timestamp in the line (at its start or anywhere in it) replaced by ``[0.0]`` (a
room of consoles printing the same boot is matched once); a line holding a
timestamp is remembered across timestamps only when no candidate rule can
observe one (``consolebot.recognise.stamps`` decides that from each rule's
pattern and the line's layout; the tests compare with matching afresh). A new
line is searched for every rule's literal; only lines with one (or with bytes
cleaning would remove) are cleaned and matched against their rules. A line
that has not ended (a prompt) is matched by the prompt rules when ``idle()`` is
called (the stream went quiet) and at ``close()``; the same event is never
reported twice for one line, so the events do not depend on how the bytes were
chunked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from consolebot.recognise.clean import clean_line, strip_escapes, strip_escapes_py
from consolebot.recognise.events import Event, Hit, json_head, json_tail, json_text, new_event
from consolebot.recognise.rules import Rule, builtin_rules
from consolebot.recognise.stamps import STAMP, can_touch_stamp, shape

MAX_LINE_BYTES = 64 * 1024  # a line longer than this is cut (its start is classified, numbering is kept)
CACHE_LINES = 50_000  # distinct lines remembered per rule table; past that the memory starts afresh

# A printk timestamp anywhere in a line: lines are remembered without their digits, so a line every console
# of a room prints at boot is matched once, not once per console and boot.
_STAMP_B = re.compile(STAMP.pattern.encode())
_CANON = b"[0.0]"
_new = object.__new__
_setattr = object.__setattr__  # an event made from a remembered line's attributes: one dict copy, no __init__

# A match: (column, rule, fields, the JSON text of fields and rule made once: ``Event.json_tail``).
Match = tuple[int, Rule, dict[str, str], str]
# What a remembered line reports: (column, kind, the event's attributes) for each event, the severities
# applied, the alarms of a benign line dropped and each (kind, column) once; columns count in the key (each
# timestamp five characters long) when the line holds timestamps, whose text is then the line's.
Template = tuple[int, str, dict[str, Any]]


class _Slow:
    """A remembered line that is matched afresh each time (its matches may depend on its timestamps)."""

    __slots__ = ("literals",)

    def __init__(self, literals: set[str]) -> None:
        self.literals = literals


# (the events, the cleaned and stripped text: None for a line holding timestamps, which is its raw text, or
# ``_LEAD`` for one that holds one timestamp: its templates then hold the text before and after it, made once)
Entry = tuple[tuple[Template, ...], str | None] | _Slow
_NOHIT: Entry = ((), "")
_LEAD = "\x00one timestamp"  # told apart by identity
_FAILED = _Slow(set())
_SHARED: dict[tuple[object, ...], dict[bytes, Entry]] = {}
_first = itemgetter(0)


def _expand(out: list[Any], n: int, templates: tuple[Template, ...], text: str, jtext: str,
            shifts: list[tuple[int, int]], now: str | None, again: set[tuple[str, int]] | None, hits: bool) -> None:
    """Append the events of remembered line ``n`` holding timestamps not only at its start (as hits with
    ``hits``): its text, the text's JSON ``jtext``, where its timestamps end (``shifts``); ``again``: the (kind,
    column)s already reported on the line.
    """
    for col, kind, base in templates:
        for key_end, after in reversed(shifts):
            if key_end <= col:
                col += after
                break
        if again is not None and (kind, col) in again:
            continue
        attrs = base.copy()
        attrs["line"] = n
        attrs["text"] = text
        attrs["column"] = col
        attrs["_jpost"] = jtext + base["json_tail"]
        attrs["fields"] = attrs["fields"].copy()
        if now is not None:
            attrs["time"] = now
        ev = _new(Event)
        _setattr(ev, "__dict__", attrs)
        out.append((n, attrs, ev) if hits else ev)


def hit_event(hit: Hit) -> Event:
    """The event of a ``Hit``, as ``Classifier.feed`` makes it."""
    n, attrs, made = hit
    if isinstance(made, Event):
        return made
    attrs = attrs.copy()
    attrs["line"] = n
    if made is not None:  # the line's one timestamp: the text around it is remembered, columns past it shift
        col = attrs["column"]
        if col >= attrs["_at"]:  # (in the key the timestamp is ``[0.0]``, five characters)
            attrs["column"] = col + len(made) - 5
        attrs["text"] = attrs["_head"] + made + attrs["_tail"]
        attrs["_jpost"] = '"text": "' + attrs["_jhead"] + made + attrs["_jtail"] + attrs["json_tail"]
    attrs["fields"] = attrs["fields"].copy()
    ev = _new(Event)
    _setattr(ev, "__dict__", attrs)
    return ev


Found = list[tuple[int, bytes, bytes, "Entry | None"]]


def lookup_py(block: bytes, cache: dict[bytes, Entry], nohit: Entry, canon: bool, line0: int | None = None,
              lead: str = "", skip_first: bool = False) -> tuple[Found, int, bool, list[Hit]]:
    """Given complete lines (each ends with a CR run, with or without an LF after it, or an LF), look each up in
    ``cache`` by its key (its printk timestamps made ``[0.0]`` when ``canon``); return (index, line, key, entry or
    None) of each whose entry is not ``nohit``, the number of lines, whether a timestamp was seen, and, given
    ``line0`` (the first line's number), the hits of the remembered lines that hold their text or the text around
    their one timestamp (``lead``), but the first line with ``skip_first``: those are then not in the first list.

    ``consolebot._fastpath.lookup`` does the same in one C pass, when it was built.
    """
    if b"\r\r" in block:
        while b"\r\r" in block:  # a run of CRs, with or without an LF after it, is one line end
            block = block.replace(b"\r\r", b"\r")
    raws = block.splitlines()  # at CR LF, LF and a bare CR: one C pass
    keys = raws
    stamped = False
    if canon:
        canonical, n_stamps = _STAMP_B.subn(_CANON, block)
        stamped = n_stamps > 0
        if stamped and canonical != block:
            keys = canonical.splitlines()
    found = [(i, raws[i], keys[i], e) for i, e in enumerate(map(cache.get, keys)) if e is not nohit]
    hits: list[Hit] = []
    if line0 is not None:
        rest = []
        for one in found:
            i, raw, _key, e = one
            if type(e) is tuple and not e[0]:
                continue  # remembered: no event
            if type(e) is tuple and type(e[1]) is str and not (i == 0 and skip_first):
                stamp = _stamp(raw, e[0][0][2]) if e[1] is lead else None
                hits += [(line0 + i, t[2], stamp) for t in e[0]]
            else:
                rest.append(one)
        found = rest
    return found, len(raws), stamped, hits


try:
    from consolebot._fastpath import lookup
except ImportError:  # not built (no C compiler at install): the same in Python
    lookup = lookup_py
_HITS_IN_LOOKUP = lookup is not lookup_py  # in Python, the loop of ``_found`` makes the hits at less cost


def _lines_end(buf: bytes) -> int:
    """Where the complete lines of ``buf`` end: after its last line end that is not a CR run at the very end (an LF
    may follow it), or 0."""
    j = len(buf)
    while j and buf[j - 1] == 13:
        j -= 1
    return max(buf.rfind(b"\n", 0, j), buf.rfind(b"\r", 0, j)) + 1


def read_lines_py(pending: bytes, data: bytes, cache: dict[bytes, Entry], nohit: Entry, canon: bool, line0: int | None,
                  lead: str, skip_first: bool) -> tuple[Found, int, bool, list[Hit], bytes]:
    """Given the unended line held from the reads before and a read's bytes, look up the lines they complete (up to
    the last line end that is not a CR run at the very end: an LF may follow), their escapes stripped, as
    ``lookup_py`` does; return its four results and what is left after those lines.

    ``consolebot._fastpath.read_lines`` does the same in C (``Classifier.feed_hits`` takes it when it was built).
    """
    buf = pending + data
    end = _lines_end(buf)
    if not end:
        return [], 0, False, [], buf
    found, n, stamped, hits = lookup_py(strip_escapes_py(buf[:end]), cache, nohit, canon, line0, lead, skip_first)
    return found, n, stamped, hits, buf[end:]


_read_lines: Callable[..., tuple[Found, int, bool, list[Hit], bytes]] | None
try:
    from consolebot._fastpath import read_lines as _read_lines
except ImportError:  # not built: ``Classifier._feed`` (which ``read_lines_py`` follows) runs
    _read_lines = None


def _stamp(raw: bytes, attrs: dict[str, Any]) -> str:
    """The one timestamp of a remembered line (its template's ``attrs``: where it begins, ``_at`` - 5)."""
    at = attrs["_at"] - 5
    return raw[at : raw.index(b"]", at) + 1].decode("ascii")


def literal_alternation(rules: Iterable[Rule]) -> re.Pattern[bytes]:
    """One regex alternation of the rules' required literals (longest first), on raw bytes."""
    lits = sorted({r.literal.encode("utf-8") for r in rules}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(x) for x in lits))


def _shifts(raw: bytes, key: bytes) -> list[tuple[int, int]]:
    """Where the timestamps of ``raw`` end in its key, and how much later columns after each lie in ``raw``."""
    if key[:5] == _CANON and raw[:1] == b"[" and key.count(_CANON) == 1:  # the usual: one, at the start
        m = _STAMP_B.match(raw)
        if m is not None:
            return [(5, m.end() - 5)]
    shifts = []
    delta = 0
    for m in _STAMP_B.finditer(raw):
        a, b = m.span()
        delta += b - a - 5
        shifts.append((b - delta, delta))
    return shifts


def _fingerprint(rules: list[Rule]) -> tuple[object, ...]:
    return tuple(
        (r.name, r.kind, r.literal, r.pattern, r.severity, r.prompt, r.benign, tuple(sorted(r.fields.items())))
        for r in rules
    )


class _Table:
    """What a classifier works out from its rules, once per rule table (a capture makes one per console)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules  # kept: the tables are found by the rules' ids
        self.by_literal: dict[str, list[Rule]] = {}
        for r in rules:
            self.by_literal.setdefault(r.literal, []).append(r)
        self.lit_bytes = [(lit, lit.encode("utf-8")) for lit in self.by_literal]
        self.order = {id(r): i for i, r in enumerate(rules)}
        self.prompt_rules = [r for r in rules if r.prompt]
        self.prompt_fast = literal_alternation(self.prompt_rules) if self.prompt_rules else None
        # a literal that could overlap a timestamp would make a line's candidates depend on its digits
        self.canon = not any(can_touch_stamp(lit) for lit in self.by_literal)
        self.fingerprint = _fingerprint(rules)


_TABLES: dict[tuple[int, ...], _Table] = {}


def _table(rules: list[Rule]) -> _Table:
    key = tuple(map(id, rules))
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) > 100:
            _TABLES.clear()
        table = _TABLES[key] = _Table(list(rules))
    return table


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
        table = _table(self.rules)
        self._by_literal: dict[str, list[Rule]] = table.by_literal
        self._lit_bytes = table.lit_bytes
        self._order = table.order
        self._prompt_rules = table.prompt_rules
        self._prompt_fast = table.prompt_fast
        self._pending = b""
        self.line = 1  # the number of the line being assembled
        self._seen_on_line: set[tuple[str, int]] = set()
        self.bytes_in = 0
        self._cache: dict[bytes, Entry] | None = None
        self._canon = cache and table.canon
        if cache:
            key = (table.fingerprint, tuple(sorted(self.severities.items())))
            self._cache = _SHARED.setdefault(key, {})

    def prepare(self) -> None:
        """Work out now for each rule whether a printk timestamp can change its matches (``stamps.shape``, once per
        pattern in the process), which the first line holding a timestamp otherwise asks: ~90 ms for the built-in
        table, better spent before a thousand consoles stream than while they do.
        """
        for rule in self.rules:
            if rule.compiled is not None:
                shape(rule.compiled)

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        """Classify ``data``; return the events of the lines it completed."""
        out: list[Event] = []
        self._feed(data, out, False)
        return out

    def feed_hits(self, data: bytes) -> list[Hit]:
        """``feed``, each event as a ``Hit``: a remembered line's are left unmade (``hit_event`` makes one) when
        there is no clock (an event with a time is always made).

        For a consumer of many consoles' events (a capture), most of which it only counts and writes
        (``Timeline.feed_all`` and ``Transcript.record_events`` take hits): no event object is made for them.
        """
        if _read_lines is not None and self._cache is not None and self.clock is None:
            return self._feed_read(data)
        out: list[Any] = []
        self._feed(data, out, True)
        return out

    def _feed_read(self, data: bytes) -> list[Hit]:
        """``feed_hits`` with the lines found and looked up in one C call (``read_lines``): ``_feed`` and ``_region``."""
        self.bytes_in += len(data)
        seen = self._seen_on_line
        line0 = self.line
        assert _read_lines is not None and self._cache is not None
        found, n_lines, stamped, made, rest = _read_lines(self._pending, data, self._cache, _NOHIT, self._canon,
                                                          line0, _LEAD, bool(seen))
        out: list[Any]
        if found:  # (lines new to the memory, or not as simple) their events, then all in line order
            out = []
            self._found(found, line0, stamped, out, True, True, None)
            if made:
                out = sorted(made + out, key=_first)  # (stable: a line's events keep their order)
        else:
            out = made
        if n_lines:
            seen.clear()
            self.line = line0 + n_lines
        if len(rest) > MAX_LINE_BYTES and not rest.endswith(b"\r"):
            self._classify(rest[:MAX_LINE_BYTES], out, partial=False, hits=True)
            rest = rest[-4096:]
        self._pending = rest
        return out

    def _feed(self, data: bytes, out: list[Any], hits: bool) -> None:
        self.bytes_in += len(data)
        buf = self._pending + data if self._pending else data
        end = _lines_end(buf)
        if end:
            self._region(buf[:end] if end < len(buf) else buf, out, hits)
        rest = buf[end:] if end else buf
        if len(rest) > MAX_LINE_BYTES and not rest.endswith(b"\r"):
            self._classify(rest[:MAX_LINE_BYTES], out, partial=False, hits=hits)
            rest = rest[-4096:]
        self._pending = rest

    def _region(self, block: bytes, out: list[Any], hits: bool) -> None:
        """Classify the complete lines of ``block`` (which ends with a line end).

        Escapes are stripped from the whole block at once (no sequence spans a line end), then the block is
        split at its line ends and each line looked up in the memory of lines already matched, its printk
        timestamps replaced by ``[0.0]`` (``lookup``: one C pass, or a few over the whole block); a new line is
        searched for every rule's literal, and only a line holding one, or a byte that cleaning would remove
        (backspace, NUL, DEL), is cleaned and matched, then remembered.
        """
        if b"\x1b" in block:
            block = strip_escapes(block)
        line0 = self.line
        cache = self._cache
        seen = self._seen_on_line
        now = self.clock() if self.clock else None
        unmade = hits and now is None  # a remembered line's events may be left unmade (they have no time to set)
        found, n_lines, stamped, made = lookup(block, {} if cache is None else cache, _NOHIT, self._canon,
                                               line0 if unmade and _HITS_IN_LOOKUP else None, _LEAD, bool(seen))
        if made and found:  # (lines new to the memory, or not as simple) their events, then all in line order
            later: list[Hit] = []
            self._found(found, line0, stamped, later, hits, unmade, now)
            out += sorted(made + later, key=_first)  # (stable: a line's events keep their order)
        elif made:
            out += made
        else:
            self._found(found, line0, stamped, out, hits, unmade, now)
        seen.clear()
        self.line = line0 + n_lines

    def _found(self, found: Found, line0: int, stamped: bool, out: list[Any], hits: bool, unmade: bool,
               now: str | None) -> None:
        """The events of the lines ``lookup`` found (``hits``: as hits, ``unmade``: may be left unmade)."""
        cache = self._cache
        seen = self._seen_on_line
        append = out.append
        for i, raw, key, entry in found:
            if entry is None or type(entry) is _Slow:
                self.line = line0 + i
                if i:
                    seen.clear()
                if entry is None:
                    fresh = self._match_line(raw, stamped and _CANON in key, out, hits)
                    if cache is not None:
                        if len(cache) >= CACHE_LINES:
                            cache.clear()
                        cache[key] = fresh
                else:
                    self._match_line(raw, False, out, hits, entry.literals or None)
                continue
            templates, text = entry  # type: ignore[misc]
            if not templates:
                continue
            n = line0 + i
            again = seen if i == 0 and seen else None  # events already reported on this line (by ``idle``)
            stamp: str | None = None  # the templates hold the line's text
            if text is _LEAD:  # the usual kernel line: its one timestamp, the text around it as remembered
                stamp = _stamp(raw, templates[0][2])
            elif text is None:  # timestamps elsewhere too: its text, columns shifted by their widths
                try:
                    text = raw.decode("ascii").strip()
                    _expand(out, n, templates, text, json_text(text), _shifts(raw, key), now, again, hits)
                except Exception:  # a classifier never raises on console input
                    pass
                continue
            if unmade and again is None:
                for t in templates:
                    append((n, t[2], stamp))
                continue
            for t in templates:
                ev = hit_event((n, t[2], stamp))
                if again is not None and (ev.kind, ev.column) in again:
                    continue
                if now is not None:
                    ev.__dict__["time"] = now
                append((n, ev.__dict__, ev) if hits else ev)

    def _templates(self, found: Iterable[Match], benign: bool, text: str | None,
                   shifts: list[tuple[int, int]] | None, around: tuple[str, str, int] | None = None
                   ) -> tuple[Template, ...]:
        """What a remembered line reports (``text``: its text, None when it holds timestamps at ``shifts``;
        ``around``: the stripped text before and after the line's one timestamp, and where it ends in the key).
        """
        out: list[Template] = []
        keys: set[tuple[str, int]] = set()
        severities = self.severities
        for col, rule, fields, tail in found:
            sev = severities.get(rule.kind, rule.severity) if severities else rule.severity
            if benign and rule.kind != "benign" and sev in ("warning", "critical"):
                continue
            if (rule.kind, col) in keys:
                continue
            keys.add((rule.kind, col))
            if shifts:
                d = 0
                for start, end in shifts:
                    if end <= col:
                        d += end - start - 5
                    elif start < col:
                        raise ValueError("a match inside a timestamp")  # cannot happen: matched afresh each time
                col -= d
            attrs = {"kind": rule.kind, "severity": sev, "line": 0, "text": text, "fields": fields, "time": None,
                     "rule": rule.name, "column": col, "json_tail": tail, "_jpre": json_head(rule.kind, sev)}
            if text is not None:
                attrs["_jpost"] = json_text(text) + tail
            elif around is not None:  # the text around the timestamp, and its JSON (the timestamp needs no escaping)
                head, tail, attrs["_at"] = around
                attrs["_head"] = head
                attrs["_tail"] = tail
                attrs["_jhead"] = json_text(head)[len('"text": "'):-len('", ')]
                attrs["_jtail"] = json_text(tail)[len('"text": "'):]
            out.append((col, rule.kind, attrs))
        return tuple(out)

    def _match_line(self, raw: bytes, stamped: bool, out: list[Any], hits: bool,
                    literals: set[str] | None = None) -> Entry:
        """Match one complete line afresh (``stamped``: it holds timestamps; ``literals``: those it is known to hold).

        Return what may be remembered for every line with the same key (``hits``: the events go to ``out`` as hits).
        """
        if literals is None:
            literals = {lit for lit, lb in self._lit_bytes if lb in raw}
            if b"\x08" in raw or b"\x7f" in raw or b"\x00" in raw:
                literals.add("")  # "" = check every rule on this line
        if not literals:
            return _NOHIT
        try:
            text, found, benign, candidates = self._find(raw, partial=False, literals=literals)
            self._emit(text.strip(), found, benign, out, hits)
        except Exception:  # a classifier never raises on console input
            return _FAILED
        try:
            if not stamped:
                return self._templates(found, benign, text.strip(), None), text.strip()
            # remembered for every timestamp only when the text is the bytes and no match can depend on them
            if "" in literals or not raw.isascii() or len(text) != len(raw):
                return _Slow(literals)
            stamps = [m.span() for m in STAMP.finditer(text)]
            for rule in candidates:
                if rule.compiled is None or not shape(rule.compiled).safe(text, stamps):
                    return _Slow(literals)
            if len(stamps) == 1:  # (the timestamp has no spaces at its ends: the text around it is stripped alone)
                (a, b), = stamps
                around = (text[:a].lstrip(), text[b:].rstrip(), a + 5)
                return self._templates(found, benign, None, stamps, around), _LEAD
            return self._templates(found, benign, None, stamps), None
        except Exception:
            return _Slow(literals)

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
    def _classify(self, raw: bytes, out: list[Any], partial: bool, hits: bool = False) -> None:
        try:
            if partial:
                fast = self._prompt_fast
                if fast is None:
                    return
                if fast.search(raw) is None and b"\x1b" not in raw and b"\x08" not in raw:
                    return
            text, found, benign, _candidates = self._find(raw, partial, None)
            self._emit(text.strip(), found, benign, out, hits)
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

    def _emit(self, text: str, found: Iterable[Match], benign: bool, out: list[Any], hits: bool) -> None:
        """Report the matches ``found`` on the current line (``text``: its cleaned, stripped text; ``hits``: as hits)."""
        now = self.clock() if self.clock else None
        seen = self._seen_on_line
        severities = self.severities
        for col, rule, fields, tail in found:
            sev = severities.get(rule.kind, rule.severity) if severities else rule.severity
            if benign and rule.kind != "benign" and sev in ("warning", "critical"):
                continue  # the line is known-harmless: its alarm is not raised
            key = (rule.kind, col)
            if key in seen:
                continue
            seen.add(key)
            ev = new_event(rule.kind, sev, self.line, text, dict(fields), now, rule.name, col, tail)
            out.append((ev.line, ev.__dict__, ev) if hits else ev)

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
