"""C-style escapes for byte sequences written as text (break sequences, connect scripts)."""

from __future__ import annotations


def decode_escapes(text: str) -> bytes:
    """Given text with C escapes (``\\r``, ``\\xHH``, ``^C``), return its bytes."""
    out = bytearray()
    i = 0
    simple = {"r": 13, "n": 10, "t": 9, "\\": 92, "e": 27, "0": 0, "^": 94}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x" and i + 3 < len(text) + 1:
                try:
                    out.append(int(text[i + 2 : i + 4], 16))
                    i += 4
                    continue
                except ValueError:
                    pass
        if c == "^" and i + 1 < len(text) and (text[i + 1].isalpha() or text[i + 1] in "[]\\@_"):
            out.append(ord(text[i + 1].upper()) ^ 0x40)
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def escape_tilde(data: bytes, at_line_start: bool) -> tuple[bytes, bool]:
    """Double every ``~`` at the start of a line, where ssh and ipmitool read their escapes (``~~`` sends one).

    Return the bytes to send and whether the next byte starts a line.
    """
    out = bytearray()
    for b in data:
        if at_line_start and b == 0x7E:
            out += b"~~"
        else:
            out.append(b)
        at_line_start = b in (10, 13)
    return bytes(out), at_line_start
