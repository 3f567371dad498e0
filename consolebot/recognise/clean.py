"""Turn one raw console line into text a person would read: no escapes, backspaces applied."""

from __future__ import annotations

import re

# CSI (incl. bracketed paste ESC[200~ / ESC[201~ and ESC[6n), OSC, two-byte escapes (ESC 7, ESC 8, ESC =, ESC c)
# No sequence spans a CR or LF, so a whole block of lines can be cleaned at once without moving line ends.
_ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b\r\n]*(?:\x07|\x1b\\)?"
    rb"|\x1b[PX^_][^\x1b\r\n]*(?:\x1b\\)?"
    rb"|\x1b[()][0-9A-Za-z]"
    rb"|\x1b[@-Z\\-_0-9=<>]"
    rb"|\x1b$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_escapes_py(raw: bytes, /) -> bytes:
    """Remove ANSI/VT100 escape sequences (line ends stay where they are).

    ``consolebot._fastpath.strip_escapes`` does the same in one C pass, when it was built.
    """
    return _ANSI.sub(b"", raw) if b"\x1b" in raw else raw


try:
    from consolebot._fastpath import strip_escapes
except ImportError:  # not built: the regex
    strip_escapes = strip_escapes_py


def clean_line(raw: bytes) -> str:
    """Given a line's bytes (no line end), return its readable text. Never raises."""
    data = _ANSI.sub(b"", raw) if b"\x1b" in raw else raw
    text = data.decode("utf-8", "replace")
    if "\x08" in text or "\x7f" in text:
        out: list[str] = []
        for ch in text:
            if ch in "\x08\x7f":
                if out:
                    out.pop()
            else:
                out.append(ch)
        text = "".join(out)
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return text
