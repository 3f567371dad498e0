"""The streaming classifier: console bytes in any chunking, events out, never raising.

Lines end at CR LF, CR CR LF, LF or a bare CR (a run of CRs, with or without a
following LF, is one line end), exactly as the transcript counts them. The fast
path runs one alternation of every rule's required literal over each raw line;
only lines with a hit (or with escapes that could hide one) are cleaned and
matched against their rules. A line that has not ended (a prompt) is matched by
the prompt rules when ``idle()`` is called (the stream went quiet) and at
``close()``; the same event is never reported twice for one line, so the events
do not depend on how the bytes were chunked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from consolebot.recognise.clean import clean_line
from consolebot.recognise.events import Event
from consolebot.recognise.rules import Rule, builtin_rules

_LINE_END = re.compile(rb"\r++\n?|\n")
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
        pos = 0
        n = len(buf)
        for m in _LINE_END.finditer(buf):
            end = m.end()
            if end == n and buf[end - 1] == 13:
                break  # a CR at the end: an LF may follow in the next chunk
            self._line_done(buf[pos : m.start()], out)
            pos = end
        rest = buf[pos:]
        if len(rest) > MAX_LINE_BYTES and not rest.endswith(b"\r"):
            self._classify(rest[:MAX_LINE_BYTES], out, partial=False)
            rest = rest[-4096:]
        self._pending = rest
        return out

    def _line_done(self, raw: bytes, out: list[Event]) -> None:
        if raw:
            self._classify(raw, out, partial=False)
        self.line += 1
        self._seen_on_line.clear()

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
    def _classify(self, raw: bytes, out: list[Event], partial: bool) -> None:
        try:
            fast = self._prompt_fast if partial else self._fast
            if fast is None:
                return
            hit = fast.search(raw)
            if hit is None and b"\x1b" not in raw and b"\x08" not in raw:
                return
            text = clean_line(raw)
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
