"""C-style escapes for byte sequences written as text (break sequences, connect scripts)."""

from __future__ import annotations

from consolebot.errors import UsageError

_SIMPLE = {"r": 13, "n": 10, "t": 9, "\\": 92, "e": 27, "a": 7, "b": 8, "f": 12, "v": 11}


def decode_escapes(text: str, what: str = "byte sequence", allow_empty: bool = False) -> bytes:
    """Given bytes written as text, return them; ``UsageError`` naming ``what`` if malformed.

    One decoder for break sequences, connect scripts and the simulator. Understood:
    ``\\r \\n \\t \\e \\a \\b \\f \\v \\\\``, ``\\xHH`` (two hex digits),
    ``\\ooo`` (one to three octal digits, so ``\\0`` is NUL and ``\\005`` is ^E),
    ``^X`` for a control character (``^E`` is 0x05, ``^?`` is DEL, ``^^`` a literal ``^``);
    every other character stands for itself (UTF-8).
    """
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise UsageError(f"{what} {text!r}: a lone backslash at the end; write \\\\ for one")
            e = text[i + 1]
            if e in _SIMPLE:
                out.append(_SIMPLE[e])
                i += 2
            elif e == "x":
                digits = text[i + 2 : i + 4]
                if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                    raise UsageError(f"{what} {text!r}: \\x needs two hex digits, as in \\x05")
                out.append(int(digits, 16))
                i += 4
            elif e in "01234567":
                j = i + 1
                while j < n and j < i + 4 and text[j] in "01234567":
                    j += 1
                value = int(text[i + 1 : j], 8)
                if value > 255:
                    raise UsageError(f"{what} {text!r}: octal escape \\{text[i + 1 : j]} is above \\377")
                out.append(value)
                i = j
            else:
                raise UsageError(f"{what} {text!r}: unknown escape \\{e}; use \\r \\n \\t \\e \\\\ \\xHH \\ooo or ^X")
        elif c == "^" and i + 1 < n and text[i + 1].isascii() and (text[i + 1].isalpha() or text[i + 1] in "@[\\]_?^"):
            x = text[i + 1]
            out.append(127 if x == "?" else ord("^") if x == "^" else ord(x.upper()) & 0x1F)
            i += 2
        else:
            out += c.encode("utf-8")
            i += 1
    if not out and not allow_empty:
        raise UsageError(f"{what} {text!r} is empty")
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
