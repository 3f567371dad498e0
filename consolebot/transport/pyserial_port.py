"""Serial devices and pyserial's URL handlers: ``serial://``, ``rfc2217://``, ``socket://``, ``loop://``.

Addresses::

    serial:///dev/ttyS0?baud=115200&parity=N&bytesize=8&stopbits=1&rtscts=0&xonxoff=0
    rfc2217://HOST:PORT[?baud=...&parity=...&timeout=SECONDS&ign_set_control&poll_modem]
    socket://HOST:PORT          (raw TCP, e.g. ser2net "raw" ports)
    loop://                     (pyserial's loopback, for tests)

Line settings default to 115200 8N1 without flow control on a device. On ``rfc2217://`` they are
sent to the server **only when given**: pyserial would otherwise push its own default (9600 8N1) to
the remote port on every open and garble a console that runs at 115200.

Opening
    The port is built with ``serial.serial_for_url(url, do_not_open=True)``, set non-blocking
    (``timeout=0``) and opened. Every pyserial ``open()`` ends with ``reset_input_buffer()``: a
    ``tcflush`` on a device, a receive-and-discard loop on ``socket://``, an RFC 2217 PURGE that
    makes the *server* flush its port. That would throw away a boot log or a prompt that arrived
    before we looked, so the flush is disabled for the duration of ``open()``.
    A device is opened with ``exclusive=True`` (pyserial takes ``flock(LOCK_EX|LOCK_NB)``): a second
    consolebot, or any other program that locks the port, gets ``ConsoleBusy`` (exit 5). The lock
    is advisory: a program that does not lock (``cat``, ``screen``) is not kept out.

BREAK
    A device sends it with ``tcsendbreak``; ``rfc2217://`` with the RFC 2217 SET-CONTROL
    BREAK-ON/OFF pair (pyserial's ``send_break``, which waits for the server's acknowledgement).
    ``socket://`` and ``loop://`` cannot carry one (pyserial silently ignores it), and neither can a
    pseudo-terminal (``/dev/pts/*``, major 136-143: Linux ignores ``TIOCSBRK`` on a pty), so those
    do not declare ``Ability.BREAK`` and ``send_break()`` raises ``BreakUnsupported``.

Readiness (``fileno()``) and reading
    * device: the device descriptor itself; ``_read_available`` is one non-blocking ``os.read``
      (what the driver holds, like ``read(in_waiting)``, but it also sees ``EIO`` when the port
      goes away, which ``in_waiting`` cannot report). pyserial sets VMIN=0/VTIME=0, so an empty
      read means "nothing yet"; only ``POLLHUP``/``POLLERR`` or ``EIO`` mean the end.
    * ``socket://``: pyserial's own non-blocking socket (``ser._socket``); one ``recv``.
    * ``rfc2217://`` and ``loop://``: there is no descriptor that tells the truth. pyserial's RFC
      2217 reader thread consumes the socket and puts the console bytes (one per item) into a
      ``queue.Queue`` (``ser._read_buffer``); ``loop://`` keeps its bytes in ``ser.queue``. We hook
      that queue's ``_put`` (the documented subclass hook that ``Queue.put`` calls under the
      queue's mutex) so that a put into an *empty* queue writes one byte to a wakeup pipe;
      ``fileno()`` is the pipe's read end. ``_read_available`` first empties the pipe, then drains
      the queue without blocking, so a wakeup is never lost (a put after the drain finds the queue
      empty and pokes again) and the worst case is a spurious wakeup that yields ``b""``. No
      polling thread, no latency. pyserial's end-of-stream marker (``None`` in the queue) becomes
      ``ConsoleClosed``.
"""

from __future__ import annotations

import errno
import os
import queue
import re
import select
import socket
import stat
import termios
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import serial

from consolebot.errors import BreakUnsupported, ConsoleBusy, ConsoleClosed, ConsoleUnreachable, UsageError
from consolebot.transport.base import Ability, Transport

DEFAULT_BAUD = 115200
PTY_MAJORS = range(136, 144)  # UNIX98 pty slaves (/dev/pts/*)

_LINE_OPTIONS = ("baud", "parity", "bytesize", "stopbits", "rtscts", "xonxoff")
_RFC2217_OPTIONS = ("timeout", "ign_set_control", "poll_modem")  # handed through to pyserial
_PARITIES = {
    "n": serial.PARITY_NONE,
    "none": serial.PARITY_NONE,
    "e": serial.PARITY_EVEN,
    "even": serial.PARITY_EVEN,
    "o": serial.PARITY_ODD,
    "odd": serial.PARITY_ODD,
    "m": serial.PARITY_MARK,
    "mark": serial.PARITY_MARK,
    "s": serial.PARITY_SPACE,
    "space": serial.PARITY_SPACE,
}
_STOPBITS = {"1": serial.STOPBITS_ONE, "1.5": serial.STOPBITS_ONE_POINT_FIVE, "2": serial.STOPBITS_TWO}
_TRUE = ("1", "true", "yes", "on", "")
_FALSE = ("0", "false", "no", "off")
_MAX_READ = 65536


def is_pty(path: str) -> bool:
    """Given a device path, return True if it is a pseudo-terminal slave (which cannot carry a BREAK)."""
    if os.path.realpath(path).startswith("/dev/pts/"):
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_MAJORS


def _fd_is_pty(fd: int) -> bool:
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_MAJORS


class _Wakeup:
    """A non-blocking pipe: ``poke()`` makes ``fileno()`` readable, ``drain()`` clears it.

    ``poke`` may run on pyserial's reader thread while ``close`` runs on ours; the lock keeps a
    poke from writing into a descriptor number that was closed (and maybe reused) meanwhile.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._open = True

    def fileno(self) -> int:
        return self._r

    def poke(self) -> None:
        with self._lock:
            if self._open:
                try:
                    os.write(self._w, b"\0")
                except BlockingIOError:
                    pass  # the pipe is full, so it is readable already

    def drain(self) -> None:
        with self._lock:
            if not self._open:
                return
            try:
                while os.read(self._r, 4096):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                os.close(self._r)
                os.close(self._w)


def _hook_queue(q: queue.Queue[bytes | None], wakeup: _Wakeup) -> Callable[[], None]:
    """Make every put into the empty queue ``q`` poke ``wakeup``; return the function that unhooks."""
    plain_put = q._put
    qsize = q._qsize

    def put_and_wake(item: bytes | None) -> None:
        was_empty = qsize() == 0
        plain_put(item)
        if was_empty:
            wakeup.poke()

    with q.mutex:  # Queue.put calls self._put under this mutex: no put can slip between hook and check
        setattr(q, "_put", put_and_wake)  # noqa: B010  (mypy refuses assigning to a method)
        if qsize():
            wakeup.poke()

    def unhook() -> None:
        with q.mutex:
            if "_put" in vars(q):
                delattr(q, "_put")

    return unhook


@contextmanager
def _input_flush_disabled(ser: serial.SerialBase) -> Iterator[None]:
    """While open() runs, make pyserial's "clean start" input flush a no-op."""

    def no_flush() -> None:
        return None

    names = ("reset_input_buffer", "_reset_input_buffer")
    for name in names:
        setattr(ser, name, no_flush)
    try:
        yield
    finally:
        for name in names:
            if name in vars(ser):
                delattr(ser, name)


def _root_cause(exc: BaseException) -> BaseException:
    """pyserial re-raises OS errors as SerialException inside ``except``: find the original."""
    seen: BaseException = exc
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            return seen
        seen = nxt


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, termios.error) and len(exc.args) >= 2:
        return str(exc.args[1])
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PySerialTransport(Transport):
    """Given a pyserial URL (see the module docstring), a console on a device or through pyserial."""

    scheme = "serial"
    abilities = frozenset({Ability.BREAK, Ability.EXCLUSIVE, Ability.WRITE, Ability.POLLABLE})

    def __init__(
        self,
        kind: str,
        pyserial_url: str,
        display: str,
        *,
        settings: dict[str, Any] | None = None,
        configure_line: bool = True,
        break_duration_s: float = 0.25,
        write_timeout_s: float = 10.0,
    ) -> None:
        """``kind`` is serial/rfc2217/socket/loop; ``pyserial_url`` what pyserial opens (a device path
        for ``serial``); ``display`` the secret-free address; ``settings`` keyword arguments for
        ``serial_for_url``; ``configure_line`` False leaves an RFC 2217 server's port settings alone."""
        super().__init__()
        if kind not in ("serial", "rfc2217", "socket", "loop"):
            raise UsageError(f"pyserial transport: unknown kind {kind!r}")
        self.scheme = kind
        self.pyserial_url = pyserial_url
        self.display = display
        self.settings = dict(settings or {})
        self.configure_line = configure_line
        self.break_duration_s = break_duration_s
        self.write_timeout_s = write_timeout_s
        self.abilities = self._abilities_for(pty=kind == "serial" and is_pty(pyserial_url))
        self._ser: serial.SerialBase | None = None
        self._fd: int | None = None  # device descriptor or socket descriptor
        self._sock: socket.socket | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._wakeup: _Wakeup | None = None
        self._unhook: Callable[[], None] | None = None
        self._eof = False

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_url(cls, url: str) -> PySerialTransport:
        """Given ``serial://``, ``rfc2217://``, ``socket://`` or ``loop://``, return an unopened
        transport; ``UsageError`` names the bad part of the address."""
        parts = urllib.parse.urlsplit(url.strip())
        raw = re.sub(
            r"^([a-zA-Z0-9+.-]+://)[^/?#@]*@", r"\1", url.strip()
        )  # messages never show user:password
        kind = parts.scheme.lower()
        try:
            pairs = urllib.parse.parse_qsl(
                parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)
            )
        except ValueError:
            raise UsageError(f"console address {raw!r}: cannot parse the options after '?'") from None
        opts: dict[str, str] = {}
        for key, value in pairs:
            key = key.lower()
            if key in opts:
                raise UsageError(f"console address {raw!r}: option {key!r} is given twice")
            opts[key] = value
        if parts.fragment:
            raise UsageError(f"console address {raw!r}: unexpected '#{parts.fragment}'")

        if kind == "serial":
            _check_known(raw, opts, _LINE_OPTIONS)
            if parts.netloc:
                raise UsageError(
                    f"console address {raw!r}: a device address has no host; write serial:///dev/ttyS0 (three slashes)"
                )
            path = urllib.parse.unquote(parts.path)
            if not path.startswith("/") or path == "/":
                raise UsageError(f"console address {raw!r}: no device path; write it as serial:///dev/ttyS0")
            settings = _line_settings(raw, opts, device=True)
            settings["exclusive"] = True
            query = f"?{urllib.parse.urlencode(opts)}" if opts else ""
            return cls("serial", path, f"serial://{path}{query}", settings=settings)

        if kind in ("rfc2217", "socket"):
            allowed = _LINE_OPTIONS + _RFC2217_OPTIONS if kind == "rfc2217" else ()
            _check_known(raw, opts, allowed)
            host, port, netloc = _host_port(raw, parts)
            settings = _line_settings(raw, opts, device=False)
            passthrough: dict[str, str] = {}
            for key in _RFC2217_OPTIONS:
                if key in opts:
                    passthrough[key] = opts[key]
            if "timeout" in passthrough:
                passthrough["timeout"] = str(_positive_float(raw, "timeout", passthrough["timeout"]))
            query = f"?{urllib.parse.urlencode(passthrough)}" if passthrough else ""
            line_given = any(k in opts for k in _LINE_OPTIONS)
            display = f"{kind}://{netloc}" + (f"?{urllib.parse.urlencode(opts)}" if opts else "")
            return cls(
                kind, f"{kind}://{netloc}{query}", display, settings=settings, configure_line=line_given
            )

        if kind == "loop":
            _check_known(raw, opts, ())
            if parts.netloc or parts.path:
                raise UsageError(f"console address {raw!r}: write the loopback as loop://")
            return cls("loop", "loop://", "loop://", settings={})

        raise UsageError(f"console address {raw!r}: not a pyserial address (serial, rfc2217, socket, loop)")

    def _abilities_for(self, *, pty: bool) -> frozenset[Ability]:
        base = {Ability.WRITE, Ability.POLLABLE}
        if self.scheme == "serial":
            base.add(Ability.EXCLUSIVE)
            if not pty:
                base.add(Ability.BREAK)
        elif self.scheme == "rfc2217":
            base.add(Ability.BREAK)
        return frozenset(base)

    def describe(self) -> str:
        return self.display

    @property
    def is_pty(self) -> bool:
        return self.scheme == "serial" and Ability.BREAK not in self.abilities

    # -- open / close -----------------------------------------------------------
    def open(self) -> None:
        if not self._closed:
            self.close()
        self._eof = False
        kwargs: dict[str, Any] = dict(self.settings)
        kwargs["timeout"] = 0
        if self.scheme in ("serial", "socket"):
            kwargs["write_timeout"] = self.write_timeout_s  # rfc2217 refuses a write timeout
        try:
            ser = serial.serial_for_url(self.pyserial_url, do_not_open=True, **kwargs)
        except (ValueError, serial.SerialException) as exc:
            raise UsageError(f"{self.describe()}: pyserial rejects the address: {_strerror(exc)}") from None
        if self.scheme == "loop":
            setattr(ser, "buffer_size", 1 << 20)  # noqa: B010  (default 4096: a larger write would block forever)
        try:
            with _input_flush_disabled(ser):
                if self.scheme == "rfc2217" and not self.configure_line:
                    with _patched(ser, "_reconfigure_port", lambda: None):
                        ser.open()
                else:
                    ser.open()
        except (serial.SerialException, OSError, termios.error, ValueError) as exc:
            try:
                ser.close()
            except Exception:  # already failing: report the first error
                pass
            raise self._open_error(exc) from None
        self._ser = ser
        try:
            self._attach(ser)
        except BaseException:
            self.close()
            raise
        self._closed = False

    def _attach(self, ser: serial.SerialBase) -> None:
        if self.scheme == "serial":
            self._fd = ser.fileno()
            self.abilities = self._abilities_for(pty=_fd_is_pty(self._fd) or is_pty(self.pyserial_url))
        elif self.scheme == "socket":
            self._sock = cast(socket.socket, getattr(ser, "_socket"))  # noqa: B009
            self._fd = self._sock.fileno()
        else:
            name = "_read_buffer" if self.scheme == "rfc2217" else "queue"
            self._queue = cast("queue.Queue[bytes | None]", getattr(ser, name))
            self._wakeup = _Wakeup()
            self._unhook = _hook_queue(self._queue, self._wakeup)

    def _open_error(self, exc: BaseException) -> Exception:
        cause = _root_cause(exc)
        what = self.describe()
        if self.scheme == "serial":
            path = self.pyserial_url
            code = exc.errno if isinstance(exc, OSError) and exc.errno else getattr(cause, "errno", None)
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
                return ConsoleBusy(
                    f"{path} is in use by another program (it holds the port exclusively); find it with: fuser -v {path}"
                )
            if code == errno.ENOENT:
                return ConsoleUnreachable(
                    f"{path}: no such device; check the console address and that the adapter is present"
                )
            if code in (errno.EACCES, errno.EPERM):
                return ConsoleUnreachable(
                    f"{path}: permission denied; add the user to the device's group (usually 'dialout') or run as root"
                )
            if code in (errno.ENXIO, errno.ENODEV):
                return ConsoleUnreachable(f"{path}: no device behind this node ({os.strerror(code)})")
            if isinstance(cause, termios.error) or code == errno.ENOTTY:
                return ConsoleUnreachable(
                    f"{path}: not a serial device (cannot set its line settings: {_strerror(cause)})"
                )
            if code:
                return ConsoleUnreachable(f"{path}: cannot open: {os.strerror(code)}")
            return ConsoleUnreachable(f"{path}: cannot open: {_strerror(cause)}")
        if isinstance(cause, ConnectionRefusedError):
            return ConsoleUnreachable(
                f"{what}: connection refused; check the console address and that the server runs"
            )
        if isinstance(cause, socket.gaierror):
            return ConsoleUnreachable(f"{what}: cannot resolve the host ({cause.strerror})")
        if isinstance(cause, TimeoutError):
            return ConsoleUnreachable(f"{what}: no answer from the server")
        if isinstance(cause, OSError) and not isinstance(cause, serial.SerialException):
            return ConsoleUnreachable(f"{what}: cannot connect: {_strerror(cause)}")
        text = _strerror(exc)
        if "does not seem to support RFC2217" in text:
            return ConsoleUnreachable(
                f"{what}: the server does not speak RFC 2217 (no COM-PORT negotiation); "
                "for a raw TCP port use socket://, for a telnet port telnet://"
            )
        if "does not accept parameter change" in text:
            return ConsoleUnreachable(f"{what}: the RFC 2217 server did not confirm the line settings")
        if "remote rejected value for option" in text:
            return ConsoleUnreachable(
                f"{what}: the RFC 2217 server refused the line setting {text.split()[-1]}"
            )
        if "timeout while waiting for option" in text:
            return ConsoleUnreachable(
                f"{what}: the RFC 2217 server did not answer a request ({text.split()[-1]})"
            )
        return ConsoleUnreachable(f"{what}: cannot open: {text}")

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()  # joins pyserial's RFC 2217 reader thread
            except Exception:  # close is best effort and idempotent
                pass
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None
        self._fd = None
        self._sock = None
        self._queue = None
        self._closed = True

    # -- primitives ---------------------------------------------------------------
    def fileno(self) -> int:
        if self._wakeup is not None:
            return self._wakeup.fileno()
        if self._fd is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        return self._fd

    def _read_available(self) -> bytes:
        if self._ser is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        if self._queue is not None:
            return self._read_queue()
        if self._sock is not None:
            return self._read_socket(self._sock)
        assert self._fd is not None
        try:
            data = os.read(self._fd, _MAX_READ)
        except BlockingIOError:
            return b""
        except OSError as exc:
            self.close()
            reason = (
                "the other end of the pseudo-terminal went away" if exc.errno == errno.EIO else _strerror(exc)
            )
            raise ConsoleClosed(f"{self.pyserial_url}: the port is gone ({reason})") from None
        if not data:
            # pyserial sets VMIN=0 VTIME=0, so an empty read is "nothing yet", not end of file;
            # a hung-up line says so in poll()
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            if any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0)):
                self.close()
                raise ConsoleClosed(f"{self.pyserial_url}: the port was hung up")
        return data

    def _read_socket(self, sock: socket.socket) -> bytes:
        try:
            data = sock.recv(_MAX_READ)
        except BlockingIOError:
            return b""
        except OSError as exc:
            self.close()
            raise ConsoleClosed(f"{self.describe()}: connection lost ({_strerror(exc)})") from None
        if not data:
            self.close()
            raise ConsoleClosed(f"{self.describe()}: the server closed the connection")
        return data

    def _read_queue(self) -> bytes:
        assert self._queue is not None and self._wakeup is not None
        if self._eof:
            self.close()
            raise ConsoleClosed(f"{self.describe()}: the server closed the connection")
        self._wakeup.drain()  # first the pipe, then the queue: a later put pokes again
        chunks: list[bytes] = []
        size = 0
        while size < _MAX_READ:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._eof = True
                break
            chunks.append(item)
            size += len(item)
        else:
            self._wakeup.poke()  # more is queued: stay readable
        if self._eof:
            if chunks:
                self._wakeup.poke()  # deliver these now, report the end on the next call
            else:
                self.close()
                raise ConsoleClosed(f"{self.describe()}: the server closed the connection")
        elif not chunks and self.scheme == "rfc2217" and not self._reader_alive():
            self.close()
            raise ConsoleClosed(f"{self.describe()}: the connection to the RFC 2217 server is gone")
        return b"".join(chunks)

    def _reader_alive(self) -> bool:
        thread = getattr(self._ser, "_thread", None)
        return isinstance(thread, threading.Thread) and thread.is_alive()

    def write(self, data: bytes) -> None:
        if self._ser is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        try:
            self._ser.write(data)
        except serial.SerialTimeoutException:
            raise ConsoleClosed(
                f"{self.describe()}: the port accepted no data for {self.write_timeout_s:g} s (flow control stuck?)"
            ) from None
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise ConsoleClosed(
                f"{self.describe()}: connection lost while sending ({_strerror(exc)})"
            ) from None

    def _send_break(self) -> None:
        if self._ser is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        try:
            self._ser.send_break(self.break_duration_s)
        except (serial.SerialException, OSError, termios.error) as exc:
            if self.scheme == "rfc2217" and self._reader_alive():
                raise BreakUnsupported(
                    f"{self.describe()}: the RFC 2217 server did not acknowledge the BREAK ({_strerror(exc)})"
                ) from None
            self.close()
            raise ConsoleClosed(
                f"{self.describe()}: connection lost while sending a BREAK ({_strerror(exc)})"
            ) from None


@contextmanager
def _patched(obj: object, name: str, value: object) -> Iterator[None]:
    setattr(obj, name, value)
    try:
        yield
    finally:
        if name in vars(obj):
            delattr(obj, name)


def _check_known(raw: str, opts: dict[str, str], allowed: tuple[str, ...]) -> None:
    for key in opts:
        if key not in allowed:
            if not allowed:
                raise UsageError(
                    f"console address {raw!r}: option {key!r} is not accepted; this transport takes no options"
                )
            raise UsageError(
                f"console address {raw!r}: unknown option {key!r} (known options: {', '.join(allowed)})"
            )


def _host_port(raw: str, parts: urllib.parse.SplitResult) -> tuple[str, int, str]:
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"console address {raw!r}: the port is not a number between 0 and 65535") from None
    if not host:
        raise UsageError(f"console address {raw!r}: no host; write it as {parts.scheme}://HOST:PORT")
    if port is None or port == 0:
        raise UsageError(f"console address {raw!r}: no port; write it as {parts.scheme}://HOST:PORT")
    if parts.path not in ("", "/"):
        raise UsageError(f"console address {raw!r}: unexpected path {parts.path!r} after HOST:PORT")
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never carry user:password further
    return host, port, netloc


def _positive_float(raw: str, name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0 or number != number or number == float("inf"):
        raise UsageError(
            f"console address {raw!r}: option {name!r} must be a positive number of seconds (got {value!r})"
        )
    return number


def _bool(raw: str, name: str, value: str) -> bool:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise UsageError(
        f"console address {raw!r}: option {name!r} must be 1/0, true/false, yes/no or on/off (got {value!r})"
    )


def _line_settings(raw: str, opts: dict[str, str], *, device: bool) -> dict[str, Any]:
    """The ``serial_for_url`` keyword arguments for the line options in ``opts`` (validated)."""
    settings: dict[str, Any] = {}
    if device:
        settings["baudrate"] = DEFAULT_BAUD
    if "baud" in opts:
        value = opts["baud"]
        if not value.isdigit() or not 0 < int(value) <= 100_000_000:
            raise UsageError(
                f"console address {raw!r}: option 'baud' must be a positive whole number such as 115200 (got {value!r})"
            )
        settings["baudrate"] = int(value)
    if "parity" in opts:
        value = opts["parity"]
        if value.lower() not in _PARITIES:
            raise UsageError(
                f"console address {raw!r}: option 'parity' must be N, E, O, M or S (none/even/odd/mark/space; got {value!r})"
            )
        settings["parity"] = _PARITIES[value.lower()]
    if "bytesize" in opts:
        value = opts["bytesize"]
        if value not in ("5", "6", "7", "8"):
            raise UsageError(
                f"console address {raw!r}: option 'bytesize' must be 5, 6, 7 or 8 (got {value!r})"
            )
        settings["bytesize"] = int(value)
    if "stopbits" in opts:
        value = opts["stopbits"]
        if value not in _STOPBITS:
            raise UsageError(
                f"console address {raw!r}: option 'stopbits' must be 1, 1.5 or 2 (got {value!r})"
            )
        settings["stopbits"] = _STOPBITS[value]
    for name in ("rtscts", "xonxoff"):
        if name in opts:
            settings[name] = _bool(raw, name, opts[name])
    if settings.get("rtscts") and settings.get("xonxoff"):
        raise UsageError(f"console address {raw!r}: options 'rtscts' and 'xonxoff' cannot both be on")
    return settings
