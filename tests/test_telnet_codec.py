from hypothesis import given, settings
from hypothesis import strategies as st

from consolebot.transport.telnet_codec import (
    BRK,
    DO,
    DONT,
    IAC,
    OPT_BINARY,
    OPT_ECHO,
    OPT_SGA,
    WILL,
    WONT,
    TelnetCodec,
    TelnetEvent,
)


def data_of(items: list[bytes | TelnetEvent]) -> bytes:
    return b"".join(i for i in items if isinstance(i, bytes))


def _feed_cut(codec: TelnetCodec, data: bytes, cuts: list[int]) -> list[bytes | TelnetEvent]:
    """What ``codec`` decodes of ``data`` fed in pieces of the ``cuts`` sizes, then the rest."""
    items: list[bytes | TelnetEvent] = []
    pos = 0
    for n in cuts:
        items += codec.feed(data[pos : pos + n])
        pos += n
    return items + codec.feed(data[pos:])


def test_iac_escaping_round_trip() -> None:
    client = TelnetCodec("client")
    server = TelnetCodec("server")
    payload = bytes(range(256))
    assert data_of(server.feed(client.encode(payload))).replace(b"\r\x00", b"\r") == payload


def test_client_accepts_echo_sga_binary_and_refuses_others() -> None:
    c = TelnetCodec("client")
    items = c.feed(bytes([IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA, IAC, DO, 24, IAC, WILL, 42]) + b"hi")
    assert data_of(items) == b"hi"
    replies = c.take_replies()
    assert bytes([IAC, DO, OPT_ECHO]) in replies
    assert bytes([IAC, WONT, 24]) in replies
    assert bytes([IAC, DONT, 42]) in replies
    assert OPT_ECHO in c.peer_enabled


def test_no_negotiation_loop() -> None:
    c = TelnetCodec("client")
    c.feed(bytes([IAC, WILL, OPT_ECHO]))
    c.take_replies()
    c.feed(bytes([IAC, WILL, OPT_ECHO]))  # repeated: no new reply
    assert c.take_replies() == b""


def test_break_is_an_event_in_order() -> None:
    s = TelnetCodec("server")
    items = s.feed(b"ab" + bytes([IAC, BRK]) + b"c")
    assert items == [b"ab", TelnetEvent(BRK), b"c"]


def test_cr_nul_is_bare_cr_outside_binary() -> None:
    c = TelnetCodec("client")
    assert data_of(c.feed(b"a\r\x00b\r\nc")) == b"a\rb\r\nc"


def test_binary_mode_keeps_bytes() -> None:
    c = TelnetCodec("client")
    c.feed(bytes([IAC, WILL, OPT_BINARY]))
    assert data_of(c.feed(b"a\r\x00b")) == b"a\r\x00b"


def test_encode_cr_outside_binary() -> None:
    c = TelnetCodec("client")
    assert c.encode(b"root\r") == b"root\r\x00"
    assert c.encode(b"x\r\n") == b"x\r\n"


def test_subnegotiation_is_skipped() -> None:
    c = TelnetCodec("client")
    assert data_of(c.feed(bytes([IAC, 250, 31, 0, 80, IAC, IAC, IAC, 240]) + b"ok")) == b"ok"


@settings(max_examples=200)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=1, max_value=50), max_size=50))
def test_chunking_never_changes_the_data(payload: bytes, cuts: list[int]) -> None:
    wire = TelnetCodec("server").encode(payload) + bytes([IAC, BRK])
    whole = TelnetCodec("client")
    expected = whole.feed(wire)
    got = _feed_cut(TelnetCodec("client"), wire, cuts)
    assert data_of(got) == data_of(expected)
    assert [i for i in got if isinstance(i, TelnetEvent)] == [TelnetEvent(BRK)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\x00", b"\r\x00", b"\r\n", bytes([IAC, IAC]),
                                 bytes([IAC, BRK]), bytes([IAC, WILL, OPT_ECHO])]), max_size=40),
       st.lists(st.integers(min_value=1, max_value=7), max_size=40))
def test_any_chunking_decodes_the_same(parts: list[bytes], cuts: list[int]) -> None:
    # a chunk that ends with CR (a NUL may follow) is followed by the fast path, not byte-by-byte decoding,
    # and must decode exactly as the whole stream does
    data = b"".join(parts)
    whole = TelnetCodec("client").feed(data)
    items = _feed_cut(TelnetCodec("client"), data, cuts)
    assert data_of(items) == data_of(whole)
    assert [i for i in items if isinstance(i, TelnetEvent)] == [i for i in whole if isinstance(i, TelnetEvent)]
