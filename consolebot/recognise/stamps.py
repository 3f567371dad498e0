"""When can a rule's matches not depend on the printk timestamps in a line?

The classifier remembers lines with every printk timestamp (``[ *\\d+\\.\\d+]``, at the line's start or
anywhere in it: ``Starting AFS services:[ 1203.531106] openafs: ...``) replaced by ``[0.0]``. A remembered
result may be reused for another line with the same key only when no candidate rule can observe the
timestamps: its matches (columns shifted by the timestamps' widths), fields and the line's benign flag must
be those that matching afresh would give. This module decides that from a rule's pattern (parsed with the
``re`` module's own parser) and the line's layout, conservatively: anything it does not understand is
"may depend", and the line is then matched afresh each time.

Facts used (a timestamp starts with ``[``, ends with ``]`` and holds only ``[] .0-9``):

* A text that holds neither bracket and a character outside ``[] .0-9`` cannot overlap a timestamp. So a
  pattern whose every match (and every lookaround's) is such a text ("blind") matches the same places,
  whatever the digits: any attempt that reads a timestamp fails for every timestamp.
* A pattern whose matches begin with a fixed text ``F`` that cannot overlap a timestamp (or that is
  anchored at the line's start) matches only where ``F`` occurs. From there the regex engine reads
  forward; it can only get past the next timestamp's ``[`` through an element that can consume ``[``.
  If the pattern's elements before such an element cannot match the line's text from the start up to
  the timestamp (tested on the line cut there, which only admits more), no attempt reaches it.
  Lookarounds must be blind; possessive and atomic groups, conditionals and inline flags are refused.
"""

from __future__ import annotations

import bisect
import importlib
import re
from dataclasses import dataclass
from typing import Any

STAMP = re.compile(r"\[ *\d+\.\d+\]")
_TS_CHARS = frozenset("[] .0123456789")
_PREFIX_OF_STAMP = re.compile(r"\[[ .0-9]*\Z")  # a text ending with what may begin a timestamp
_SUFFIX_OF_STAMP = re.compile(r"[ .0-9]*\]")  # a text beginning with what may end one
_RUN_MAX = 16  # a run of class characters longer than this before a timestamp: the general check


def can_touch_stamp(text: str) -> bool:
    """Could an occurrence of ``text`` overlap a printk timestamp? (Over-approximated: True when unsure.)"""
    if not text or all(ch in _TS_CHARS for ch in text):
        return True  # empty, or possibly inside one
    return bool(STAMP.search(text) or _PREFIX_OF_STAMP.search(text) or _SUFFIX_OF_STAMP.match(text))


@dataclass(frozen=True)
class _Info:
    lb: bool  # may consume "["
    rb: bool  # may consume "]"
    mnt: bool  # every text it consumes holds a character outside [] .0-9
    ok: bool  # understood (lookarounds blind, no atomic, possessive or conditional parts)


_UNKNOWN = _Info(True, True, False, False)
_ZERO = _Info(False, False, False, True)


@dataclass(frozen=True)
class _Step:
    guard: re.Pattern[str]  # the elements before one that can consume "[" (lookarounds left out)
    run: re.Pattern[str] | None  # that element when it is a repeat of one character class: the class


@dataclass(frozen=True)
class Shape:
    """What matters about a rule's pattern for lines holding timestamps."""

    blind: bool  # no match or lookaround ever overlaps a timestamp
    anchored: bool  # matches only at the line's start
    start: str  # otherwise: every match begins with this text ("" when neither: only ``blind`` helps)
    steps: tuple[_Step, ...]  # one per top-level element that can consume "["
    ok: bool

    def safe(self, text: str, stamps: list[tuple[int, int]]) -> bool:
        """Are this pattern's matches on ``text`` (timestamps at ``stamps``) the same for any timestamps?"""
        if self.blind:
            return True
        if not self.ok or not (self.anchored or self.start):
            return False
        starts = [0] if self.anchored else _occurrences(text, self.start)
        begins = [a for a, _b in stamps]
        for s in starts:
            k = bisect.bisect_left(begins, s)
            if k == len(begins):
                continue  # no timestamp after this start: the engine reads none
            a = begins[k]
            for step in self.steps:
                if not _may_reach(step, text, s, a):
                    continue
                return False
        return True


def _may_reach(step: _Step, text: str, s: int, a: int) -> bool:
    """Could an attempt from ``s`` consume the ``[`` at ``a`` with this step's element?"""
    if step.run is not None:
        q = a
        while q > s and a - q <= _RUN_MAX and step.run.fullmatch(text[q - 1]):
            q -= 1
        if a - q <= _RUN_MAX:
            # the element consumes text[q':a] then "[": the elements before it end exactly at some q' in [q, a]
            return any(step.guard.fullmatch(text, s, e) for e in range(q, a + 1))
    return step.guard.match(text, s, a) is not None


def _occurrences(text: str, needle: str) -> list[int]:
    out = []
    i = text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


_SHAPES: dict[tuple[str, int], Shape] = {}


def shape(rx: re.Pattern[str]) -> Shape:
    """The ``Shape`` of a compiled pattern (worked out once per pattern)."""
    key = (rx.pattern, rx.flags)
    known = _SHAPES.get(key)
    if known is None:
        try:
            known = _analyse(rx)
        except Exception:  # an unknown parser: nothing is reused for a line holding a timestamp
            known = Shape(False, False, "", (), False)
        _SHAPES[key] = known
    return known


def _analyse(rx: re.Pattern[str]) -> Shape:
    sre: Any = importlib.import_module("re._parser")
    comp: Any = importlib.import_module("re._compiler")
    c: Any = importlib.import_module("re._constants")
    tree = sre.parse(rx.pattern, rx.flags)
    flags = rx.flags | tree.state.flags
    state = tree.state

    def compile_items(items: list[Any]) -> re.Pattern[str]:
        p = sre.SubPattern(state, list(items))
        return comp.compile(p, flags)

    single = {c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN}
    groups: dict[int, Any] = {}

    def collect(items: Any) -> None:
        for op, av in items:
            if op == c.SUBPATTERN:
                if av[0] is not None:
                    groups[av[0]] = av[-1]
                collect(av[-1])
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                collect(av[2])
            elif op == c.BRANCH:
                for alt in av[1]:
                    collect(alt)
            elif op in (c.ASSERT, c.ASSERT_NOT, c.ATOMIC_GROUP):
                collect(av[-1])

    collect(tree)

    def node(op: Any, av: Any, depth: int = 0) -> _Info:
        if depth > 50:
            return _UNKNOWN
        if op in single:
            rx1 = compile_items([(op, av)])
            chars = {ch for ch in _TS_CHARS if rx1.fullmatch(ch)}
            return _Info("[" in chars, "]" in chars, not chars, True)
        if op == c.SUBPATTERN:
            if av[1] or av[2]:
                return _UNKNOWN  # inline flags
            return seq(av[-1], depth + 1)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            inner = seq(av[2], depth + 1)
            return _Info(inner.lb, inner.rb, av[0] >= 1 and inner.mnt, inner.ok)
        if op == c.BRANCH:
            alts = [seq(alt, depth + 1) for alt in av[1]]
            return _Info(any(a.lb for a in alts), any(a.rb for a in alts), all(a.mnt for a in alts),
                         all(a.ok for a in alts))
        if op == c.AT:
            return _ZERO
        if op in (c.ASSERT, c.ASSERT_NOT):
            inner = seq(av[1], depth + 1)
            return _ZERO if (inner.ok and not inner.lb and not inner.rb and inner.mnt) else _UNKNOWN
        if op == c.GROUPREF and av in groups:
            return seq(groups[av], depth + 1)
        return _UNKNOWN

    def seq(items: Any, depth: int = 0) -> _Info:
        infos = [node(op, av, depth) for op, av in items]
        return _Info(any(i.lb for i in infos), any(i.rb for i in infos), any(i.mnt for i in infos),
                     all(i.ok for i in infos))

    whole = seq(tree)
    items = list(tree)
    if items and all(op == c.LITERAL for op, _av in items) and not flags & re.IGNORECASE:
        literal = "".join(chr(av) for _op, av in items)
        return Shape(not can_touch_stamp(literal), False, literal, (), True)
    blind = whole.ok and not whole.lb and not whole.rb and whole.mnt
    if blind or not whole.ok:
        return Shape(blind, False, "", (), whole.ok)
    # the leading part: blind lookarounds (left out of the guards), then "^" or a fixed text
    lead = 0
    while lead < len(items) and items[lead][0] in (c.ASSERT, c.ASSERT_NOT):
        lead += 1
    body = items[lead:]
    anchored = bool(body) and body[0][0] == c.AT and body[0][1] in (c.AT_BEGINNING, c.AT_BEGINNING_STRING) and not (
        flags & re.MULTILINE and body[0][1] == c.AT_BEGINNING)
    start = ""
    if not anchored:
        run: list[str] = []
        while body:
            op, av = body[0]
            if op == c.LITERAL and not flags & re.IGNORECASE:
                run.append(chr(av))
                body = body[1:]
            elif op == c.SUBPATTERN and not run and not av[1] and not av[2]:
                body = list(av[-1]) + body[1:]
            else:
                break
        start = "".join(run)
        if not start or can_touch_stamp(start):
            return Shape(False, False, "", (), False)
        body = [(c.LITERAL, ord(ch)) for ch in start] + body
    steps = []
    for k, (op, av) in enumerate(body):
        if node(op, av).lb:
            before = [(o, a) for o, a in body[:k] if o not in (c.ASSERT, c.ASSERT_NOT)]
            one = None
            if op in (c.MAX_REPEAT, c.MIN_REPEAT) and len(av[2]) == 1 and av[2][0][0] in single:
                one = compile_items(list(av[2]))
            steps.append(_Step(compile_items(before), one))
    return Shape(False, anchored, start, tuple(steps), True)
