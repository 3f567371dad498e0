"""Console paths through a local client program under a pty: ``exec:``, ``ssh://``, ``conserver://``.

:class:`ProcessTransport` runs an argv under a pseudo-terminal (pexpect) and moves
bytes through it unchanged: the pty is put in raw mode in the child before the
program starts (no echo, no CR/NL translation, no signal characters), so a
``\\r``, a ``\\x00``, a ``\\xff`` or a ``^C`` reaches the program as it was
written. ``fileno()`` is the pty master; reads never block; ``close()`` hangs up
the child's process group (SIGHUP, then SIGTERM, then SIGKILL) and reaps it.

Secrets reach a child only through its environment (``env_secrets``), never its
argv (visible in ``ps``) and never a message.

``open()`` detects an immediate failure with event waits (poll on the pty, on
the child's stderr pipe and on a pidfd for its exit), never fixed sleeps: it
returns when the subclass's readiness condition holds and the child survived a
short settling window; it raises ``ConsoleUnreachable`` (exit 4) or
``ConsoleBusy`` (exit 5) with one line, taken from what the program said, if
the child ends first. Readiness:

* ``exec:``: the command is still running after the settling window (0.25 s).
* ``ssh``: ssh runs with ``LogLevel=VERBOSE`` and its stderr on a pipe (so
  ssh's own messages never mix into the console data); it logs
  ``Authenticated to HOST`` once the key was accepted, then the settling
  window catches a console server that hangs up at once.
* ``conserver``: the client's banner ``[Enter `^Ec?' for help]``, then the
  answer to ``^Eca`` (attach read-write): ``[ok]``/``[attached]`` means we hold
  the console, ``[no, USER is attached]`` is ``ConsoleBusy`` (consolebot never
  forces with ``-f``); an unknown console name or an unreachable master is
  ``ConsoleUnreachable``. Banner and answer are removed from the data.

A console server may refuse a busy port only after the session started; an
end of stream within 5 s of ``open()`` whose text says so ("in use", "busy",
"already active"...) is reported as ``ConsoleBusy``, else ``ConsoleClosed``.

Escape characters
-----------------
Interactive clients watch their input for an escape character. Data written to
a console must never trigger one by accident, so each transport that sits on
such a client declares it (``client_escape``) and ``write()`` neutralises it:

* ``ssh``: OpenSSH recognises ``~`` only as the first character of a line
  (after ``\\r`` or ``\\n``, and at the start of the session); ``~~`` there sends
  one literal ``~``. ``write()`` doubles exactly those ``~``, so ``\\r~.`` in data
  arrives as ``\\r~.`` instead of killing the session. The escape is enabled
  (``-e ~``) only when it is needed, for the RFC 4335 BREAK; otherwise ssh runs
  with ``-e none`` and data passes untouched.
* conserver's ``console``: the escape is the pair ``^E c`` (pinned with
  ``-e ^Ec`` so a user's ``.consolerc`` cannot change it). A literal ``^E`` is
  sent as ``^Ec\\005`` (console(1): "use ^Ec\\ooo to send the first escape
  character"), which the server acknowledges with ``[quote \\005]``; that
  acknowledgement is removed from the data. Only a ``^E`` that could start the
  pair is quoted: one followed by ``c`` or ending a write (the server holds a
  trailing ``^E`` and would pair it with the next write's first byte); any
  other ``^E`` passes as it is.

BREAK
-----
* ``exec:``: a configured ``break_sequence`` (text with C escapes, see
  :func:`decode_sequence`) is written in-band as the BREAK; without one the
  transport has no BREAK ability.
* ``ssh``: ``break_sequence="rfc4335"`` (or ``"~B"``) uses OpenSSH's ``~B``
  escape, which sends an RFC 4335 ``break`` channel request, what console
  servers turn into a serial BREAK. ``~B`` counts only at the start of a line;
  the transport tracks the line position exactly as ssh does, so after a
  ``\\r``/``\\n`` (or before any data) it sends just ``~B``. Mid-line it must send
  a ``\\r`` first, the one side effect (an Enter on the console), and the
  least intrusive correct choice: there is no other way to reach ssh's
  line-start state. Any other value is an in-band byte sequence (escaped like
  data); ``None`` means no BREAK ability.
* ``conserver``: ``^Ecl0`` sends the console's configured break sequence
  (conserver's default is sequence 1, ``\\z``: a serial BREAK on a device, ``IAC
  BRK`` on a telnet host console; an administrator's choice for the console
  is honoured). ``send_break()`` waits for the ``[halt sent]`` answer and
  removes it from the data; a ``confirm? [y/N]`` question (``confirm yes``) is
  answered ``y``; ``undefined``/``aborted`` raise ``BreakUnsupported``.
  ``close()`` detaches with ``^Ec.`` before hanging up.

Known limits: conserver drops console output that arrives between attaching
and the client's own handshake (milliseconds); through conserver's telnet
side, a NUL right after a CR is taken as telnet's CR NUL and dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import termios
import time
import tty
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pexpect

from consolebot.errors import (
    BreakUnsupported,
    ConsoleBotError,
    ConsoleBusy,
    ConsoleClosed,
    ConsoleUnreachable,
    TransportError,
    UsageError,
)
from consolebot.escapes import decode_escapes, escape_tilde
from consolebot.secrets.secret import Secret
from consolebot.transport.base import Ability, Transport

_READ_SIZE = 65536
_EARLY_S = 5.0  # an end of stream this soon after open() may be a refusal (busy)
_EARLY_BYTES = 8192
_BASE_ABILITIES = frozenset({Ability.WRITE, Ability.POLLABLE})

def decode_sequence(text: str) -> bytes:
    """Given a break sequence written as text, return its bytes; ``UsageError`` if malformed or empty.

    The escapes are :func:`consolebot.escapes.decode_escapes`'s. Examples: ``\\x05cl1``
    (conserver's ^Ecl1), ``~B``, ``\\x00``, ``\\r~^b``.
    """
    return decode_escapes(text, what="break sequence")


def _printable_line(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lines(raw: bytes | str) -> list[str]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return [p for p in (_printable_line(x) for x in re.split(r"[\r\n]+", text)) if p]


class _Spawn(pexpect.spawn):
    """``pexpect.spawn`` that can keep extra descriptors open in the child (``pass_fds``)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        pass_fds: tuple[int, ...],
        preexec_fn: Callable[[], None],
        dimensions: tuple[int, int],
    ) -> None:
        self._pass_fds = pass_fds
        super().__init__(
            argv[0],
            argv[1:],
            env=env,
            echo=False,
            encoding=None,
            preexec_fn=preexec_fn,
            dimensions=dimensions,
            use_poll=True,
            timeout=None,
        )

    def _spawnpty(self, args: list[str], **kwargs: Any) -> Any:
        return pexpect.pty_spawn.ptyprocess.PtyProcess.spawn(args, pass_fds=self._pass_fds, **kwargs)


def _child_setup(stderr_fd: int | None) -> Callable[[], None]:
    """Return the function the child runs between fork and exec."""

    def setup() -> None:
        # Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across exec.
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        # Raw before the program runs: bytes pass both ways unchanged.
        tty.setraw(0, termios.TCSANOW)
        if stderr_fd is not None:
            os.dup2(stderr_fd, 2)
            os.close(stderr_fd)

    return setup


class ProcessTransport(Transport):
    """Given an argv, run it under a raw pty and use its stdin/stdout as the console.

    ``env`` is merged over this process's environment (``TERM`` is ``vt100``
    unless ``env`` says otherwise); ``env_secrets`` are added to the child's
    environment only.
    With ``separate_stderr`` the child's stderr goes to a pipe (kept for error
    messages) instead of into the console data.
    """

    scheme = "exec"
    abilities = _BASE_ABILITIES
    client_escape: str | None = None  # the client program's escape, if it has one
    program_name = "the console command"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        env_secrets: Mapping[str, Secret] | None = None,
        break_bytes: bytes | None = None,
        separate_stderr: bool = False,
        open_timeout_s: float = 10.0,
        settle_s: float = 0.25,
        write_timeout_s: float = 30.0,
        dimensions: tuple[int, int] = (24, 80),
    ) -> None:
        super().__init__()
        if not argv:
            raise UsageError("a console command needs at least a program name")
        self.argv = list(argv)
        self.env = dict(env or {})
        self.env_secrets = dict(env_secrets or {})
        for key, value in self.env_secrets.items():
            if not isinstance(value, Secret):
                raise TypeError(f"env_secrets[{key!r}] must be a Secret")
        self.break_bytes = break_bytes
        if break_bytes:
            self.abilities = self.abilities | {Ability.BREAK}
        self.separate_stderr = separate_stderr
        self.open_timeout_s = open_timeout_s
        self.settle_s = settle_s
        self.write_timeout_s = write_timeout_s
        self.dimensions = dimensions
        self.stop_grace_s = 1.0  # how long SIGHUP, then SIGTERM, get before the next signal
        self._child: Any = None
        self._stderr_fd: int | None = None
        self._pidfd: int | None = None
        self._inbox = bytearray()  # console bytes read from the pty, not yet delivered
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._stderr_partial = b""
        self._eof_seen = False
        self._opened_at = 0.0
        self._early = bytearray()  # console bytes of the first seconds, to recognise a refusal
        self._tail = b""  # the last console bytes delivered, for error messages

    # -- description -------------------------------------------------------
    def describe(self) -> str:
        return "exec:" + shlex.join(self.argv)

    # -- hooks for subclasses -----------------------------------------------------
    def _startup_ready(self) -> bool:
        """During ``open()``: True once the client is ready (``self._inbox`` holds its output)."""
        return True

    def _startup_timeout(self) -> ConsoleBotError:
        return ConsoleUnreachable(
            f"{self.describe()}: {self.program_name} gave no console within {self.open_timeout_s:g} s"
            + self._last_words_suffix()
        )

    def _startup_failure(self, status: str) -> ConsoleBotError:
        """The child ended during ``open()``: say why in one line."""
        busy = self._busy_line()
        if busy:
            return ConsoleBusy(f"{self.describe()}: the console is in use: {busy}")
        line = self._last_words()
        return ConsoleUnreachable(
            f"{self.describe()}: {self.program_name} ended at once ({status})" + (f": {line}" if line else "")
        )

    def _closing_line(self) -> str:
        """The line that best explains an end of stream after ``open()``."""
        return self._last_words()

    def _encode(self, data: bytes) -> bytes:
        """Escape console data for the client program."""
        return data

    def _filter(self, data: bytes, final: bool) -> bytes:
        """Remove the client's own chatter from console data (``final``: nothing more comes)."""
        return data

    def _before_close(self) -> None:
        """Ask the client to leave politely, while it still runs."""

    # -- primitives ------------------------------------------------------------
    def open(self) -> None:
        if self._child is not None:
            return
        self._inbox.clear()
        self._early.clear()
        self._tail = b""
        self._stderr_tail.clear()
        self._stderr_partial = b""
        self._eof_seen = False
        env = dict(os.environ)
        env["TERM"] = "vt100"
        env.update(self.env)
        for key, secret in self.env_secrets.items():
            env[key] = secret.reveal()
        read_end: int | None = None
        write_end: int | None = None
        if self.separate_stderr:
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
        try:
            child = _Spawn(
                self.argv,
                env,
                (write_end,) if write_end is not None else (),
                _child_setup(write_end),
                self.dimensions,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            if read_end is not None:
                os.close(read_end)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            raise ConsoleUnreachable(
                f"{self.describe()}: cannot start {self.argv[0]!r}: {_printable_line(reason)}"
            ) from None
        finally:
            if write_end is not None:
                os.close(write_end)
            env.clear()
        # the child's environment (with secrets) is not kept in memory longer than needed
        child.env = None
        child.ptyproc.env = None
        child.delaybeforesend = None
        child.delayafterclose = 0
        child.delayafterterminate = 0
        child.ptyproc.delayafterclose = 0
        child.ptyproc.delayafterterminate = 0
        os.set_blocking(child.child_fd, False)
        self._child = child
        self._stderr_fd = read_end
        try:
            self._pidfd = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        self._closed = False
        try:
            self._startup()
        except BaseException:
            self._shutdown(polite=True)
            raise

    def _startup(self) -> None:
        deadline = time.monotonic() + self.open_timeout_s
        settle_end: float | None = None
        while True:
            if self._pump():
                raise self._startup_failure(self._exit_status(wait_s=1.0))
            now = time.monotonic()
            if settle_end is None and self._startup_ready():
                settle_end = now + self.settle_s
            if settle_end is not None and now >= settle_end:
                self._opened_at = time.monotonic()
                return
            if settle_end is None and now >= deadline:
                raise self._startup_timeout()
            until = settle_end if settle_end is not None else deadline
            self._wait_events(until - now)

    def fileno(self) -> int:
        if self._child is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        return int(self._child.child_fd)

    def _read_available(self) -> bytes:
        if self._child is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        eof = self._eof_seen or self._pump()
        data = self._filter(bytes(self._inbox), final=eof)
        self._inbox.clear()
        if data:
            self._tail = (self._tail + data)[-2000:]
            if len(self._early) < _EARLY_BYTES and time.monotonic() - self._opened_at < _EARLY_S:
                self._early += data[: _EARLY_BYTES - len(self._early)]
        if eof:
            if data and not self._eof_seen:
                self._eof_seen = True  # deliver what we have; EOF is reported on the next call
                return data
            raise self._closed_error()
        return data

    def write(self, data: bytes) -> None:
        if self._child is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        self._write_raw(self._encode(bytes(data)))

    def _send_break(self) -> None:
        if not self.break_bytes:
            super()._send_break()
            return
        self.write(self.break_bytes)

    def close(self) -> None:
        self._shutdown(polite=True)

    # -- machinery -----------------------------------------------------------------
    def _pump(self) -> bool:
        """Move what the child wrote into the inbox; return True at end of stream."""
        child = self._child
        if child is None:
            return True
        eof = False
        try:
            self._inbox += child.read_nonblocking(_READ_SIZE, timeout=0)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            eof = True
        except OSError:
            eof = True
        self._drain_stderr()
        return eof

    def _drain_stderr(self) -> None:
        fd = self._stderr_fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                if self._stderr_partial:
                    self._stderr_tail.extend(_lines(self._stderr_partial))
                    self._stderr_partial = b""
                os.close(fd)
                self._stderr_fd = None
                return
            buf = self._stderr_partial + chunk
            *complete, self._stderr_partial = re.split(rb"\r?\n|\r", buf)
            for line in complete:
                self._stderr_tail.extend(_lines(line))
            if len(self._stderr_partial) > 4096:
                self._stderr_tail.extend(_lines(self._stderr_partial))
                self._stderr_partial = b""

    def _diag_lines(self) -> list[str]:
        """Lines the child wrote to its stderr pipe (most recent last)."""
        self._drain_stderr()
        extra = _lines(self._stderr_partial) if self._stderr_partial else []
        return [*self._stderr_tail, *extra]

    def _last_words(self) -> str:
        """The most telling line the child left: its stderr, else its console output."""
        lines = self._diag_lines() or _lines(self._recent())
        return lines[-1] if lines else ""

    def _recent(self) -> bytes:
        """The last console bytes, delivered or not."""
        return (self._tail + bytes(self._inbox))[-2000:]

    def _last_words_suffix(self) -> str:
        line = self._last_words()
        return f"; last message: {line}" if line else ""

    def _wait_for(self, pattern: re.Pattern[bytes], timeout_s: float) -> re.Match[bytes] | None:
        """Read into the inbox until ``pattern`` matches it; the match, or None on timeout."""
        end = time.monotonic() + timeout_s
        while True:
            m = pattern.search(self._inbox)
            if m is not None:
                return m
            remaining = end - time.monotonic()
            if remaining <= 0:
                return None
            self._wait_events(remaining)
            if self._pump():
                m = pattern.search(self._inbox)
                if m is not None:
                    return m
                raise self._closed_error()

    def _wait_events(self, timeout_s: float) -> None:
        """Wait until the pty or stderr is readable, or the child exits, at most ``timeout_s``."""
        child = self._child
        if child is None or timeout_s <= 0:
            return
        poller = select.poll()
        poller.register(child.child_fd, select.POLLIN)
        if self._stderr_fd is not None:
            poller.register(self._stderr_fd, select.POLLIN)
        if self._pidfd is not None:
            poller.register(self._pidfd, select.POLLIN)
        poller.poll(max(1, int(timeout_s * 1000)))

    def _wait_exit(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the child to exit; reap it. True if it is gone."""
        child = self._child
        if child is None:
            return True
        end = time.monotonic() + timeout_s
        while True:
            try:
                if not child.isalive():
                    return True
            except Exception:
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            if self._pidfd is not None:
                poller = select.poll()
                poller.register(self._pidfd, select.POLLIN)
                poller.poll(max(1, int(remaining * 1000)))
            else:
                time.sleep(min(0.01, remaining))

    def _exit_status(self, wait_s: float = 0.0) -> str:
        child = self._child
        if child is None or not self._wait_exit(wait_s):
            return "still running"
        if child.signalstatus is not None:
            try:
                name = signal.Signals(child.signalstatus).name
            except ValueError:
                name = str(child.signalstatus)
            return f"killed by {name}"
        if child.exitstatus is not None:
            return f"exit status {child.exitstatus}"
        return "ended"

    def _busy_line(self) -> str:
        """The line of the client's early words that says the console is taken, or ``""``."""
        text = (
            bytes(self._early) + bytes(self._inbox)[-4000:] + b"\n" + "\n".join(self._diag_lines()).encode()
        )
        m = _BUSY.search(text)
        if m is None:
            return ""
        start = max(text.rfind(b"\n", 0, m.start()), text.rfind(b"\r", 0, m.start())) + 1
        end = min(i for i in (text.find(b"\r", m.end()), text.find(b"\n", m.end()), len(text)) if i >= 0)
        return _printable_line(text[start:end])

    def _closed_error(self) -> TransportError:
        """End of stream: ``ConsoleClosed``, or ``ConsoleBusy`` if the client was refused
        within seconds of ``open()`` (a console server that reports a busy port and hangs up)."""
        status = self._exit_status(wait_s=1.0)
        line = self._closing_line()
        busy = self._busy_line() if time.monotonic() - self._opened_at < _EARLY_S else ""
        self._shutdown(polite=False)
        if busy:
            return ConsoleBusy(
                f"{self.describe()}: the console is in use ({self.program_name} {status}): {busy}"
            )
        return ConsoleClosed(
            f"{self.describe()}: {self.program_name} closed the console ({status})"
            + (f": {line}" if line else "")
        )

    def _write_raw(self, data: bytes) -> None:
        child = self._child
        if child is None:
            raise ConsoleClosed(f"{self.describe()}: not open")
        fd = child.child_fd
        view = memoryview(data)
        end = time.monotonic() + self.write_timeout_s
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise ConsoleClosed(
                        f"{self.describe()}: {self.program_name} took no input for {self.write_timeout_s:g} s"
                    ) from None
                poller = select.poll()
                poller.register(fd, select.POLLOUT | select.POLLIN)
                events = poller.poll(max(1, int(min(remaining, 1.0) * 1000)))
                if any(ev & select.POLLIN for _, ev in events) and self._pump():
                    raise self._closed_error() from None
                continue
            except OSError:
                raise self._closed_error() from None
            view = view[n:]

    def _shutdown(self, polite: bool) -> None:
        child = self._child
        if child is None:
            self._closed = True
            return
        try:
            if polite and not self._eof_seen:
                with contextlib.suppress(Exception):
                    if child.isalive():
                        self._before_close()
            if not self._wait_exit(0):
                self._hang_up(child)
        finally:
            with contextlib.suppress(Exception):
                child.close(force=True)
            for fd in (self._stderr_fd, self._pidfd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._stderr_fd = None
            self._pidfd = None
            self._child = None
            self._closed = True

    def _hang_up(self, child: Any) -> None:
        """SIGHUP, then SIGTERM, then SIGKILL to the child's process group, until it exits."""
        grace = self.stop_grace_s
        for sig, wait_s in ((signal.SIGHUP, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)  # the child leads its own session and process group
            except ProcessLookupError:
                pass
            except PermissionError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)
            if self._wait_exit(wait_s):
                return


class ExecTransport(ProcessTransport):
    """``exec:COMMAND``: any command that yields a console on its stdin/stdout.

    Given ``break_sequence`` (C escapes, see :func:`decode_sequence`), writing
    those bytes is the BREAK; without it the transport cannot send one.
    """

    scheme = "exec"

    def __init__(
        self,
        argv: Sequence[str],
        break_sequence: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        env_secrets: Mapping[str, Secret] | None = None,
    ) -> None:
        self.break_sequence = break_sequence
        super().__init__(
            argv,
            env=env,
            env_secrets=env_secrets,
            break_bytes=decode_sequence(break_sequence) if break_sequence else None,
        )


# -- ssh ------------------------------------------------------------------------------
_SSH_OPTIONS = {
    name.lower(): name
    for name in (
        "UserKnownHostsFile",
        "StrictHostKeyChecking",
        "ConnectTimeout",
        "ProxyJump",
        "HostKeyAlias",
        "HostKeyAlgorithms",
        "ServerAliveInterval",
        "ServerAliveCountMax",
        "IdentityAgent",
        "CertificateFile",
        "PubkeyAcceptedAlgorithms",
        "KexAlgorithms",
        "Ciphers",
        "MACs",
        "AddressFamily",
        "BindAddress",
        "CheckHostIP",
        "VerifyHostKeyDNS",
        "UpdateHostKeys",
        "GlobalKnownHostsFile",
    )
}
_SSH_ALIASES = {"known_hosts": "UserKnownHostsFile", "connect_timeout": "ConnectTimeout", "jump": "ProxyJump"}
_SSH_NOT_OPTIONS = {"break", "break_sequence", "identity", "user", "port"}
_RFC4335 = {"rfc4335", "~b"}

_SSH_FAILURE = re.compile(
    r"connection refused|permission denied|host key verification failed|could not resolve hostname"
    r"|connection timed out|no route to host|network is unreachable|remote host identification has changed"
    r"|host key is known|connection closed by|connection reset|too many authentication failures"
    r"|not accessible|bad configuration option|kex_exchange_identification|no matching"
    r"|operation timed out|request failed|channel \d+: open failed",
    re.IGNORECASE,
)
_SSH_CHATTER = re.compile(
    r"^(Authenticated to |Transferred: |Bytes per second|Connection to .* closed\.?$|Warning: Permanently added"
    r"|Pseudo-terminal will not|debug\d: |~B$|~\.$|Shared connection to )",
    re.IGNORECASE,
)
_BUSY = re.compile(
    rb"\b(?:in use|busy|already (?:connected|attached|in use|active|open)|is attached|"
    rb"another (?:session|user) (?:is )?(?:active|connected|attached)|locked by)\b",
    re.IGNORECASE,
)


def _ssh_options(options: Mapping[str, str] | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in (options or {}).items():
        if key.lower() in _SSH_NOT_OPTIONS:
            continue
        name = _SSH_ALIASES.get(key.lower()) or _SSH_OPTIONS.get(key.lower())
        if name is None:
            allowed = ", ".join(sorted({*_SSH_OPTIONS.values(), *_SSH_ALIASES}))
            raise UsageError(
                f"ssh option {key!r} is not accepted in a console address (commands such as ProxyCommand "
                f"are refused); use one of: {allowed}, or put it in ~/.ssh/config"
            )
        if not value or any(not ch.isprintable() for ch in value):
            raise UsageError(f"ssh option {name}: the value {value!r} is empty or has control characters")
        out.append((name, value))
    return out


class SshTransport(ProcessTransport):
    """``ssh://[USER@]HOST[:PORT]``: a console server reached with OpenSSH's ``ssh -tt``.

    Authentication is by key or agent only (``BatchMode=yes``: ssh never waits
    for a password). ``identity`` is a private key file; ``options`` are ssh
    options from the address (a whitelist: known-hosts files, host-key checking,
    timeouts, ProxyJump...; command-running options are refused).
    ``break_sequence``: ``"rfc4335"`` (or ``"~B"``) for ssh's ``~B`` break request,
    another value for in-band bytes, ``None`` for no BREAK.
    """

    scheme = "ssh"
    program_name = "ssh"

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str | None = None,
        break_sequence: str | None = None,
        identity: str | None = None,
        options: Mapping[str, str] | None = None,
        *,
        connect_timeout_s: float = 10.0,
        env_secrets: Mapping[str, Secret] | None = None,
        program: str = "ssh",
    ) -> None:
        if not host or host.startswith("-") or any(not ch.isprintable() or ch.isspace() for ch in host):
            raise UsageError(f"ssh console: bad host name {host!r}")
        if user is not None and (
            not user or user.startswith("-") or any(not ch.isprintable() for ch in user)
        ):
            raise UsageError(f"ssh console: bad user name {user!r}")
        self.host = host
        self.port = int(port)
        self.user = user
        self.identity = identity
        self.break_sequence = break_sequence
        self.rfc4335 = break_sequence is not None and break_sequence.strip().lower() in _RFC4335
        extra = _ssh_options(options)
        timeout = connect_timeout_s
        for name, value in extra:
            if name == "ConnectTimeout":
                try:
                    timeout = float(value)
                except ValueError:
                    raise UsageError(f"ssh option ConnectTimeout wants seconds, not {value!r}") from None
        argv = [program, "-tt", "-e", "~" if self.rfc4335 else "none"]
        argv += ["-o", "BatchMode=yes", "-o", "LogLevel=VERBOSE"]
        names = {name for name, _ in extra}
        if "ConnectTimeout" not in names:
            argv += ["-o", f"ConnectTimeout={connect_timeout_s:g}"]
        if "ServerAliveInterval" not in names:
            argv += ["-o", "ServerAliveInterval=30"]
        argv += ["-p", str(self.port)]
        if identity:
            argv += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        for name, value in extra:
            argv += ["-o", f"{name}={value}"]
        if user:
            argv += ["-l", user]
        argv += ["--", host]
        in_band = None if self.rfc4335 or not break_sequence else decode_sequence(break_sequence)
        super().__init__(
            argv,
            env_secrets=env_secrets,
            break_bytes=in_band,
            separate_stderr=True,
            open_timeout_s=timeout + 20.0,
        )
        if self.rfc4335:
            self.abilities = self.abilities | {Ability.BREAK}
        self.client_escape = "~" if self.rfc4335 else None
        self._line_start = True  # ssh's own view: the session starts "after a newline"

    def describe(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"ssh://{who}{self.host}:{self.port}"

    def open(self) -> None:
        self._line_start = True
        super().open()

    # Readiness: ssh (LogLevel VERBOSE) logs "Authenticated to HOST" on its stderr
    # pipe once the key was accepted; the settle window then catches a console
    # server that closes the channel at once (busy port, unknown port).
    def _startup_ready(self) -> bool:
        return any(line.startswith("Authenticated to ") for line in self._diag_lines())

    def _telling_line(self, console_too: bool = True) -> str:
        """ssh's error line if it wrote one; else (at open) the console server's last words."""
        diag = self._diag_lines()
        for line in diag:
            if _SSH_FAILURE.search(line):
                return line
        console = _lines(bytes(self._inbox)[-2000:]) if console_too else []
        if console:
            return console[-1]
        meaningful = [x for x in diag if not _SSH_CHATTER.search(x)]
        return meaningful[-1] if meaningful else ""

    def _startup_failure(self, status: str) -> ConsoleBotError:
        busy = self._busy_line()
        if busy:
            return ConsoleBusy(f"{self.describe()}: the console server says the console is in use: {busy}")
        line = self._telling_line()
        if not line:
            line = f"ssh ended ({status})"
        return ConsoleUnreachable(f"{self.describe()}: {line}")

    def _startup_timeout(self) -> ConsoleBotError:
        line = self._telling_line()
        return ConsoleUnreachable(
            f"{self.describe()}: no SSH session within {self.open_timeout_s:g} s"
            + (f"; last message: {line}" if line else "")
        )

    def _closing_line(self) -> str:
        return self._telling_line(console_too=False)

    def _encode(self, data: bytes) -> bytes:
        if not self.rfc4335:
            return data
        out, self._line_start = escape_tilde(data, self._line_start)  # "~~" sends one "~" through ssh
        return out

    def _send_break(self) -> None:
        if not self.rfc4335:
            super()._send_break()
            return
        prefix = b"" if self._line_start else b"\r"
        self._write_raw(prefix + b"~B")
        self._line_start = True  # ssh consumed "~B"; it still is at a line start


# -- conserver -------------------------------------------------------------------------
_CS_BANNER = re.compile(rb"\[Enter `[^'\r\n]{1,16}\?' for help\]\r?\n")
_CS_ATTACH_OK = re.compile(rb"\[(?:ok|attached)(?: \(nologging\))?\]\r?\n")
_CS_BUSY = re.compile(rb"\[no, ([^\]\r\n]{1,200}) is attached\]\r?\n")
_CS_REFUSED = re.compile(rb"\[(line to host is down|host is read-only|no -- on ctl)\]\r?\n")
_CS_DOWN = re.compile(rb"\[`([^'\r\n]{1,200})' -- console is down\]")
_CS_PASSWORD = re.compile(rb"password:\s*$", re.IGNORECASE)
_CS_QUOTE_ACK = b"[quote \\005]"
# "[halt " then "sent]", "undefined]", "aborted]", or "confirm? [y/N] " (then "y " and the outcome)
_CS_HALT = re.compile(rb"\[halt (?:confirm\? \[y/N\] |(?P<outcome>sent|undefined|aborted)\]\r\n)")
_CS_HALT_DONE = re.compile(rb"\[halt (?:confirm\? \[y/N\] y )?(?P<outcome>sent|undefined|aborted)\]\r\n")
_BREAK_ANSWER_S = 5.0
_ACK_TTL_S = 10.0


class ConserverTransport(ProcessTransport):
    """``conserver://[USER@]MASTER[:PORT]/CONSOLE``: a console through conserver's ``console`` client.

    Attaches read-write or not at all: if someone else holds the console
    read-write, ``open()`` raises ``ConsoleBusy`` (consolebot never forces, which
    would be ``console -f``). The client's banner and answers are removed
    from the console data.
    """

    scheme = "conserver"
    program_name = "console"
    client_escape = "^Ec"
    abilities = frozenset({Ability.BREAK, Ability.EXCLUSIVE, Ability.WRITE, Ability.POLLABLE})

    def __init__(
        self,
        host: str,
        port: int = 782,
        console: str = "",
        user: str | None = None,
        *,
        env_secrets: Mapping[str, Secret] | None = None,
        open_timeout_s: float = 15.0,
        program: str = "console",
    ) -> None:
        if (
            not console
            or console.startswith("-")
            or any(not ch.isprintable() or ch.isspace() for ch in console)
        ):
            raise UsageError(f"conserver console: bad console name {console!r}")
        if not host or host.startswith("-"):
            raise UsageError(f"conserver console: bad master host {host!r}")
        if user is not None and (
            not user or user.startswith("-") or any(not ch.isprintable() for ch in user)
        ):
            raise UsageError(f"conserver console: bad user name {user!r}")
        self.host = host
        self.port = int(port)
        self.console = console
        self.user = user
        argv = [program, "-M", host, "-p", str(self.port)]
        if user:
            argv += ["-l", user]
        argv += ["-e", "^Ec", console]
        super().__init__(
            argv, env_secrets=env_secrets, separate_stderr=True, open_timeout_s=open_timeout_s, settle_s=0.0
        )
        self._phase = "banner"
        self._acks: list[tuple[bytes, float]] = []
        self._held = b""
        self._trailing_esc = False

    def describe(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"conserver://{who}{self.host}:{self.port}/{self.console}"

    def open(self) -> None:
        self._phase = "banner"
        self._acks = []
        self._held = b""
        super().open()

    # Readiness: the banner, then the answer to "^Eca" (attach read-write):
    # "[ok]"/"[attached]" means we hold the console, "[no, X is attached]" busy.
    def _startup_ready(self) -> bool:
        buf = bytes(self._inbox)
        if self._phase == "banner":
            m = _CS_BANNER.search(buf)
            if m is None:
                if _CS_PASSWORD.search(buf[-200:]):
                    raise ConsoleUnreachable(
                        f"{self.describe()}: conserver asks for a password; consolebot attaches only where "
                        "the conserver host trusts this client or the user's conserver.passwd entry is empty"
                    )
                return False
            before = buf[: m.start()]
            down = _CS_DOWN.search(before)
            if down is not None:
                raise ConsoleUnreachable(
                    f"{self.describe()}: conserver has console {self.console!r} down "
                    "(it cannot reach the console's port or device)"
                )
            del self._inbox[: m.end()]
            self._phase = "attach"
            self._write_raw(b"\x05ca")
            return False
        if self._phase == "attach":
            busy = _CS_BUSY.search(buf)
            if busy is not None:
                who = busy.group(1).decode("utf-8", "replace")
                raise ConsoleBusy(
                    f"{self.describe()}: {_printable_line(who)} is attached read-write; "
                    "consolebot does not force them off (detach them or wait)"
                )
            refused = _CS_REFUSED.search(buf)
            if refused is not None:
                raise ConsoleUnreachable(
                    f"{self.describe()}: conserver refuses to attach: {refused.group(1).decode()}"
                )
            ok = _CS_ATTACH_OK.search(buf)
            if ok is None:
                return False
            del self._inbox[ok.start() : ok.end()]
            self._phase = "attached"
            return True
        return True

    def _failure_line(self) -> str:
        lines = [*_lines(self._recent()), *self._diag_lines()]
        for line in lines:
            if "not found" in line or "Unable to connect" in line or "refused" in line.lower():
                return line
        return lines[-1] if lines else ""

    def _startup_failure(self, status: str) -> ConsoleBotError:
        line = self._failure_line()
        if "not found" in line:
            return ConsoleUnreachable(
                f"{self.describe()}: conserver at {self.host}:{self.port} has no console {self.console!r} ({line})"
            )
        return ConsoleUnreachable(f"{self.describe()}: " + (line or f"console ended ({status})"))

    def _startup_timeout(self) -> ConsoleBotError:
        line = self._failure_line()
        step = "no banner" if self._phase == "banner" else "no answer to the attach request"
        return ConsoleUnreachable(
            f"{self.describe()}: {step} from conserver within {self.open_timeout_s:g} s"
            + (f"; last message: {line}" if line else "")
        )

    def _closing_line(self) -> str:
        return self._failure_line()

    def _encode(self, data: bytes) -> bytes:
        if 5 not in data:
            return data
        out = bytearray()
        n = len(data)
        for i, b in enumerate(data):
            if b == 5 and (i + 1 == n or data[i + 1] == 0x63):  # ^E that could pair with a "c"
                out += b"\x05c\\005"
                self._expect(_CS_QUOTE_ACK)
            else:
                out.append(b)
        return bytes(out)

    def _expect(self, ack: bytes) -> None:
        self._acks.append((ack, time.monotonic() + _ACK_TTL_S))

    def _filter(self, data: bytes, final: bool) -> bytes:
        now = time.monotonic()
        self._acks = [(a, t) for a, t in self._acks if t > now]
        buf = self._held + data
        self._held = b""
        if not self._acks:
            return buf
        remaining: list[tuple[bytes, float]] = []
        for ack, t in self._acks:
            i = buf.find(ack)
            if i >= 0:
                buf = buf[:i] + buf[i + len(ack) :]
            else:
                remaining.append((ack, t))
        self._acks = remaining
        if final or not remaining:
            return buf
        hold = 0
        for ack, _ in remaining:
            for k in range(min(len(ack) - 1, len(buf)), 0, -1):
                if buf.endswith(ack[:k]):
                    hold = max(hold, k)
                    break
        if hold:
            self._held = buf[-hold:]
            buf = buf[:-hold]
        return buf

    def _send_break(self) -> None:
        """``^Ecl0``, then wait for conserver's answer: ``[halt sent]`` (removed from the
        data); a ``confirm? [y/N]`` question (break configured with ``confirm yes``)
        is answered ``y``; ``undefined`` or ``aborted`` raise ``BreakUnsupported``."""
        self._write_raw(b"\x05cl0")
        m = self._wait_for(_CS_HALT, _BREAK_ANSWER_S)
        if m is not None and m.group("outcome") is None:  # the confirmation question
            self._write_raw(b"y")
            m = self._wait_for(_CS_HALT_DONE, _BREAK_ANSWER_S)
        if m is None:
            raise TransportError(
                f"{self.describe()}: conserver did not acknowledge the BREAK within {_BREAK_ANSWER_S:g} s"
            )
        outcome = m.group("outcome").decode()  # before the inbox (the match's buffer) changes
        del self._inbox[m.start() : m.end()]
        if outcome != "sent":
            raise BreakUnsupported(
                f"{self.describe()}: conserver did not send the BREAK ({outcome}); "
                "define a break sequence for this console in conserver.cf"
            )

    def _before_close(self) -> None:
        if self._phase == "banner":
            return
        self._write_raw(b"\x05c.")
        self._wait_exit(1.0)
