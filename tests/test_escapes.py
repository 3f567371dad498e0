from consolebot.escapes import decode_escapes, escape_tilde


def test_tilde_doubled_only_at_line_start_and_across_writes() -> None:
    assert escape_tilde(b"~.", True) == (b"~~.", False)
    assert escape_tilde(b"a~b\r~.", False) == (b"a~b\r~~.", False)
    out, at_start = escape_tilde(b"ls\r", False)
    assert (out, at_start) == (b"ls\r", True)
    assert escape_tilde(b"~B", at_start) == (b"~~B", False)  # the next write starts a line


def test_decode_escapes() -> None:
    assert decode_escapes("\\x05cl1") == b"\x05cl1"
    assert decode_escapes("^E") == b"\x05" and decode_escapes("a\\r\\n") == b"a\r\n"
