"""The streaming classifier: console bytes in any chunking, events out, never raising.

Lines end at CR LF, CR CR LF, LF or a bare CR (a run of CRs, with or without a
following LF, is one line end), exactly as the transcript counts them. The fast
path runs one alternation of every rule's required literal over each raw line;
only lines with a hit (or with escapes that could hide one) are cleaned and
matched against their rules, and lines without one cost no Python code at all
(one scan over each chunk finds the hits; line numbers come from counting line
ends between them). A line that has not ended (a prompt) is matched by
the prompt rules when ``idle()`` is called (the stream went quiet) and at
``close()``; the same event is never reported twice for one line, so the events
do not depend on how the bytes were chunked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from consolebot.recognise.clean import clean_line, strip_escapes
from consolebot.recognise.events import Event
from consolebot.recognise.rules import Rule, builtin_rules

_LINE_END = re.compile(rb"\r++\n?|\n")


def _count_line_ends(buf: bytes, a: int, b: int) -> int:
    """Line ends in ``buf[a:b]`` (a starts a line): CR LF, CR CR LF, LF, a bare CR run each count one."""
    if a >= b:
        return 0
    n = buf.count(b"\n", a, b)
    cr = buf.count(b"\r", a, b)
    if not cr:
        return n
    if buf.find(b"\r\r", a, b) < 0:
        return n + cr - buf.count(b"\r\n", a, b)
    return len(_LINE_END.findall(buf, a, b))


def _line_end(buf: bytes, p: int, end: int) -> int:
    """The offset of the first CR or LF at or after ``p`` (``end`` if none)."""
    r = buf.find(b"\r", p, end)
    n = buf.find(b"\n", p, end)
    if r < 0:
        return n if n >= 0 else end
    return r if n < 0 or r < n else n
MAX_LINE_BYTES = 64 * 1024  # a line longer than this is cut (its start is classified, numbering is kept)


def literal_alternation(rules: Iterable[Rule]) -> re.Pattern[bytes]:
    """One regex alternation of the rules' required literals (longest first), on raw bytes."""
    lits = sorted({r.literal.encode("utf-8") for r in rules}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(x) for x in lits))


class Classifier:
    """Given rules (the built-in table by default), turn console bytes into events."""

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        severities: dict[str, str] | None = None,
        clock: Callable[[], str | None] | None = None,
    ) -> None:
        self.rules = list(rules) if rules is not None else builtin_rules()
        self.severities = dict(severities or {})
        self.clock = clock
        self._fast = literal_alternation(self.rules)
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

        Escapes are stripped from the whole block at once (no sequence spans a line end), then
        every literal is looked for with ``bytes.find`` (a C substring search, much faster than
        one regex alternation); only the lines holding a literal, or a byte that cleaning would
        remove (backspace, NUL, DEL), are cleaned and matched. Line numbers come from counting
        line ends between those lines.
        """
        block = strip_escapes(buf[:end])
        hits: dict[int, list[str]] = {}
        for lit, lb in self._lit_bytes:
            i = block.find(lb)
            while i >= 0:
                hits.setdefault(i, []).append(lit)
                i = block.find(lb, i + 1)
        for special in (b"\x08", b"\x7f", b"\x00"):
            i = block.find(special)
            while i >= 0:
                hits.setdefault(i, []).append("")  # "" = check every rule on this line
                i = block.find(special, i + 1)
        line = self.line
        pos = 0  # a line start whose number is ``line``
        cur_start = cur_end = -1
        cur_lits: set[str] = set()
        n = len(block)
        for p in sorted(hits):
            if p < cur_end:
                cur_lits.update(hits[p])
                continue
            if cur_end >= 0:
                self._classify(block[cur_start:cur_end], out, partial=False, literals=cur_lits)
            ls = max(block.rfind(b"\n", 0, p), block.rfind(b"\r", 0, p)) + 1
            line += _count_line_ends(block, pos, ls)
            pos = ls
            if line != self.line:
                self._seen_on_line.clear()
            self.line = line
            cur_start, cur_end = ls, _line_end(block, p, n)
            cur_lits = set(hits[p])
        if cur_end >= 0:
            self._classify(block[cur_start:cur_end], out, partial=False, literals=cur_lits)
        line += _count_line_ends(block, pos, n)
        if line != self.line:
            self._seen_on_line.clear()
        self.line = line

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
            fast = self._prompt_fast if partial else self._fast
            if fast is None:
                return
            if not partial:
                pass  # the block scan already found a literal (or a byte cleaning removes) on this line
            elif fast.search(raw) is None and b"\x1b" not in raw and b"\x08" not in raw:
                return
            text = clean_line(raw)
            if literals and "" not in literals:
                # the block scan found every occurrence of every literal on this line: exact
                candidates = [r for lit in literals for r in self._by_literal[lit]]
                if len(literals) > 1:
                    candidates.sort(key=lambda r: self._order[id(r)])
            else:
                rules = self._prompt_rules if partial else self.rules
                candidates = [r for r in rules if r.literal in text]
            if not candidates:
                return
            found: list[tuple[int, Rule, dict[str, str]]] = []
            benign = False
            for rule in candidates:
                assert rule.compiled is not None
                for m in rule.compiled.finditer(text):
                    fields = dict(rule.fields)
                    fields.update({k: v for k, v in m.groupdict().items() if v is not None})
                    if rule.benign:
                        benign = True
                        fields.setdefault("reason", rule.benign)
                    found.append((m.start(), rule, fields))
                    if rule.kind not in ("service.ok", "service.fail", "afs.busy_volume", "afs.server_down"):
                        break
            found.sort(key=lambda x: x[0])
            now = self.clock() if self.clock else None
            for col, rule, fields in found:
                sev = self.severities.get(rule.kind, rule.severity)
                if benign and rule.kind != "benign" and sev in ("warning", "critical"):
                    continue  # the line is known-harmless: its alarm is not raised
                key = (rule.kind, col)
                if key in self._seen_on_line:
                    continue
                self._seen_on_line.add(key)
                out.append(Event(rule.kind, sev, self.line, text.strip(), fields, now, rule.name, col))
        except Exception:  # a classifier never raises on console input
            return

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
