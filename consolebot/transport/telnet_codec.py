"""A telnet codec that does no I/O: bytes in, console data and replies out.

It serves the blocking client, the capture event loop and the simulator's
server alike (telnetlib is gone in Python 3.13). It handles option negotiation
(RFC 1143 style, without loops), IAC escaping, CR NUL, sub-negotiation and
``IAC BRK``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BARE_CR = re.compile(rb"\r(?!\n)")

IAC = 255
DONT = 254
DO = 253
WONT = 252
WILL = 251
SB = 250
GA = 249
EL = 248
EC = 247
AYT = 246
AO = 245
IP = 244
BRK = 243
DM = 242
NOP = 241
SE = 240

OPT_BINARY = 0
OPT_ECHO = 1
OPT_SGA = 3
OPT_TTYPE = 24
OPT_NAWS = 31
OPT_LINEMODE = 34

_DATA, _IAC, _OPT, _SB, _SB_IAC, _CR = range(6)


@dataclass
class TelnetEvent:
    """A telnet command that is not data: ``BRK``, ``IP``, ``AYT`` ..."""

    command: int


@dataclass
class TelnetCodec:
    """Given the role (``client`` or ``server``), decode received bytes and encode sends.

    ``feed()`` returns console data and commands in order; replies owed to the
    peer accumulate in ``replies`` (take them with ``take_replies()``).
    A client accepts the peer's ECHO, SGA and BINARY; a server offers them.
    Everything else is refused.
    """

    role: str = "client"
    replies: bytearray = field(default_factory=bytearray)
    _state: int = _DATA
    _verb: int = 0
    _sb: bytearray = field(default_factory=bytearray)
    # options the peer has enabled on its side (WILL) / we enabled on ours (DO from peer)
    peer_enabled: set[int] = field(default_factory=set)
    local_enabled: set[int] = field(default_factory=set)
    _requested_local: set[int] = field(default_factory=set)
    _requested_peer: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.role == "client":
            self.accept_peer = {OPT_ECHO, OPT_SGA, OPT_BINARY}
            self.accept_local = {OPT_SGA, OPT_BINARY}
        else:
            self.accept_peer = {OPT_SGA, OPT_BINARY}
            self.accept_local = {OPT_ECHO, OPT_SGA, OPT_BINARY}

    # -- negotiation we start ------------------------------------------------
    def start(self) -> bytes:
        """Return the opening negotiation for this role."""
        out = bytearray()
        if self.role == "server":
            for opt in (OPT_ECHO, OPT_SGA, OPT_BINARY):
                self._requested_local.add(opt)
                out += bytes([IAC, WILL, opt])
            for opt in (OPT_SGA, OPT_BINARY):
                self._requested_peer.add(opt)
                out += bytes([IAC, DO, opt])
        else:
            for opt in (OPT_BINARY,):
                self._requested_local.add(opt)
                out += bytes([IAC, WILL, opt])
            for opt in (OPT_SGA, OPT_BINARY):
                self._requested_peer.add(opt)
                out += bytes([IAC, DO, opt])
        return bytes(out)

    def take_replies(self) -> bytes:
        out = bytes(self.replies)
        self.replies.clear()
        return out

    # -- decoding -------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes | TelnetEvent]:
        """Decode ``data``; return console data and commands in the order received."""
        if self._state == _CR and data[:1] not in (b"\x00", b""):
            self._state = _DATA  # the CR that ended the last chunk was not followed by NUL: nothing to drop
        if self._state == _DATA and b"\xff" not in data:
            # the fast path: plain data (the common case), decoded with C-speed bytes operations
            if not data:
                return []
            if OPT_BINARY in self.peer_enabled:
                return [data]
            if b"\r" not in data:
                return [data]
            out_fast = data.replace(b"\r\x00", b"\r") if b"\x00" in data else data
            if data.endswith(b"\r"):
                self._state = _CR  # a NUL may follow in the next chunk
            return [out_fast] if out_fast else []
        if self._state == _CR and data[:1] == b"\x00":
            self._state = _DATA
            data = data[1:]
            if not data:
                return []
            return self.feed(data)
        out: list[bytes | TelnetEvent] = []
        buf = bytearray()
        binary_in = OPT_BINARY in self.peer_enabled
        for b in data:
            st = self._state
            if st == _DATA:
                if b == IAC:
                    self._state = _IAC
                elif b == 13 and not binary_in:
                    buf.append(13)
                    self._state = _CR
                else:
                    buf.append(b)
            elif st == _CR:
                # CR NUL means a bare CR; CR LF stays CR LF.
                self._state = _DATA
                if b == 0:
                    continue
                if b == IAC:
                    self._state = _IAC
                elif b == 13:
                    buf.append(13)
                    self._state = _CR
                else:
                    buf.append(b)
            elif st == _IAC:
                if b == IAC:
                    buf.append(IAC)
                    self._state = _DATA
                elif b in (DO, DONT, WILL, WONT):
                    self._verb = b
                    self._state = _OPT
                elif b == SB:
                    self._sb.clear()
                    self._state = _SB
                else:
                    self._state = _DATA
                    if b in (NOP, DM, GA):
                        continue
                    if buf:
                        out.append(bytes(buf))
                        buf.clear()
                    out.append(TelnetEvent(b))
            elif st == _OPT:
                self._state = _DATA
                self._negotiate(self._verb, b)
                binary_in = OPT_BINARY in self.peer_enabled
            elif st == _SB:
                if b == IAC:
                    self._state = _SB_IAC
                else:
                    self._sb.append(b)
            elif st == _SB_IAC:
                if b == SE:
                    self._state = _DATA
                    self._subnegotiation(bytes(self._sb))
                else:
                    self._sb.append(b)
                    self._state = _SB
        if buf:
            out.append(bytes(buf))
        return out

    def _negotiate(self, verb: int, opt: int) -> None:
        if verb == WILL:
            if opt in self.peer_enabled:
                return
            if opt in self.accept_peer:
                self.peer_enabled.add(opt)
                if opt not in self._requested_peer:
                    self.replies += bytes([IAC, DO, opt])
                self._requested_peer.discard(opt)
            else:
                self.replies += bytes([IAC, DONT, opt])
        elif verb == WONT:
            was = opt in self.peer_enabled or opt in self._requested_peer
            self.peer_enabled.discard(opt)
            if opt in self._requested_peer:
                self._requested_peer.discard(opt)
            elif was:
                self.replies += bytes([IAC, DONT, opt])
        elif verb == DO:
            if opt in self.local_enabled:
                return
            if opt in self.accept_local:
                self.local_enabled.add(opt)
                if opt not in self._requested_local:
                    self.replies += bytes([IAC, WILL, opt])
                self._requested_local.discard(opt)
            else:
                self.replies += bytes([IAC, WONT, opt])
        elif verb == DONT:
            was = opt in self.local_enabled or opt in self._requested_local
            self.local_enabled.discard(opt)
            if opt in self._requested_local:
                self._requested_local.discard(opt)
            elif was:
                self.replies += bytes([IAC, WONT, opt])

    def _subnegotiation(self, payload: bytes) -> None:
        # TTYPE SEND -> answer IS "VT100"; everything else is ignored.
        if payload[:2] == bytes([OPT_TTYPE, 1]) and OPT_TTYPE in self.local_enabled:
            self.replies += bytes([IAC, SB, OPT_TTYPE, 0]) + b"VT100" + bytes([IAC, SE])

    # -- encoding ---------------------------------------------------------------
    def encode(self, data: bytes) -> bytes:
        """Escape IAC; outside BINARY mode a bare CR becomes CR NUL."""
        out = data.replace(b"\xff", b"\xff\xff")
        if OPT_BINARY not in self.local_enabled:
            out = _BARE_CR.sub(b"\r\x00", out)
        return out

    @staticmethod
    def break_bytes() -> bytes:
        return bytes([IAC, BRK])
