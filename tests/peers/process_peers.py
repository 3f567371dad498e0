"""Real peers for the process transports: OpenSSH's sshd, conserver, a telnet echo console.

Every peer is a context manager that always stops what it started, children
first (sshd and conserver fork per connection / per console group), and never
touches /etc: configurations, keys and logs live in the test's tmp directory.

Run as a script, this file is also a console peer itself::

    python process_peers.py echo LOGFILE [REFUSEFILE]

puts its stdin (a pty under ssh -tt) in raw mode, prints ``ECHO-READY``, then
echoes every byte back unchanged and appends what it received to LOGFILE
(or, if REFUSEFILE exists, prints its text and exits 1).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ECHO_READY = b"ECHO-READY"
TELNET_BANNER = b"TELNET-PEER-READY\r\n"


# -- processes -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    """Given a pid, return its descendants, deepest first."""
    kids = _children()
    out: list[int] = []

    def walk(p: int) -> None:
        for c in kids.get(p, []):
            walk(c)
            out.append(c)

    walk(pid)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def stop_tree(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Stop ``proc`` and every descendant: children first (SIGTERM), then the
    process itself; SIGKILL whatever is left after ``timeout_s``; reap ``proc``."""
    kids = descendants(proc.pid) if proc.poll() is None else []
    for pid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if proc.poll() is None:
        proc.terminate()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and (proc.poll() is None or any(_alive(p) for p in kids)):
        time.sleep(0.02)
    for pid in [*kids, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout_s)


def _wait_for_log(
    proc: subprocess.Popen[bytes], log: Path, needle: str, what: str, timeout_s: float = 10.0
) -> None:
    end = time.monotonic() + timeout_s
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if needle in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {text.strip()[-2000:]}")
        if time.monotonic() > end:
            raise RuntimeError(f"{what} did not start within {timeout_s} s: {text.strip()[-2000:]}")
        time.sleep(0.01)


# -- the echo console (a script mode of this file) -------------------------------
def echo_argv(log: Path, refuse_file: Path | None = None) -> list[str]:
    """Given a log path, return the argv of the echo console.

    If ``refuse_file`` exists when the console starts, it prints that file's
    text and exits with status 1 instead (a console server refusing a port).
    """
    argv = [sys.executable, os.path.abspath(__file__), "echo", str(log)]
    return argv + [str(refuse_file)] if refuse_file is not None else argv


def echo_command(log: Path, refuse_file: Path | None = None) -> str:
    """The same as a shell command line (for sshd's ForceCommand)."""
    return shlex.join(echo_argv(log, refuse_file))


def _echo_main(log: str, refuse: str | None = None) -> int:
    in_fd, out_fd = 0, 1
    if refuse is not None and os.path.exists(refuse):
        with open(refuse, "rb") as f:
            os.write(out_fd, f.read())
        return 1
    if os.isatty(in_fd):
        import termios
        import tty

        tty.setraw(in_fd, termios.TCSANOW)
    os.write(out_fd, ECHO_READY + b"\r\n")
    with open(log, "ab", buffering=0) as f:
        while True:
            try:
                data = os.read(in_fd, 65536)
            except OSError:
                return 0
            if not data:
                return 0
            f.write(data)
            os.write(out_fd, data)


# -- telnet echo console -----------------------------------------------------------
@dataclass
class TelnetPeer:
    """A telnet server on loopback that echoes console data and counts ``IAC BRK``."""

    port: int
    received: bytearray = field(default_factory=bytearray)
    events: list[int] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def breaks(self) -> int:
        from consolebot.transport.telnet_codec import BRK

        with self.lock:
            return self.events.count(BRK)

    def data(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def wait_for(self, cond: Callable[[TelnetPeer], bool], timeout_s: float = 5.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if cond(self):
                return True
            time.sleep(0.01)
        return cond(self)


def _serve_telnet(peer: TelnetPeer, listener: socket.socket, stop: threading.Event) -> None:
    from consolebot.transport.telnet_codec import TelnetCodec, TelnetEvent

    conns: dict[socket.socket, TelnetCodec] = {}
    try:
        while not stop.is_set():
            readable, _, _ = select.select([listener, *conns], [], [], 0.05)
            for s in readable:
                if s is listener:
                    conn, _ = listener.accept()
                    codec = TelnetCodec("server")
                    conns[conn] = codec
                    with peer.lock:
                        peer.connections += 1
                    conn.sendall(codec.start() + TELNET_BANNER)
                    continue
                codec = conns[s]
                try:
                    raw = s.recv(65536)
                except OSError:
                    raw = b""
                if not raw:
                    del conns[s]
                    s.close()
                    continue
                echo = bytearray()
                for item in codec.feed(raw):
                    with peer.lock:
                        if isinstance(item, TelnetEvent):
                            peer.events.append(item.command)
                        else:
                            peer.received += item
                            echo += item
                out = codec.take_replies() + codec.encode(bytes(echo))
                if out:
                    with contextlib.suppress(OSError):
                        s.sendall(out)
    finally:
        for s in conns:
            s.close()
        listener.close()


@contextlib.contextmanager
def telnet_peer() -> Iterator[TelnetPeer]:
    """Yield a running telnet echo console on 127.0.0.1; its thread stops on exit."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    peer = TelnetPeer(port=int(listener.getsockname()[1]))
    stop = threading.Event()
    thread = threading.Thread(target=_serve_telnet, args=(peer, listener, stop), daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)


# -- OpenSSH server ----------------------------------------------------------------
@dataclass
class SshdPeer:
    host: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def options(self) -> dict[str, str]:
        """ssh options that verify the peer's own host key (no blind trust)."""
        return {"UserKnownHostsFile": str(self.known_hosts), "StrictHostKeyChecking": "yes"}

    def url(self, break_sequence: str | None = None, **query: str) -> str:
        """An ``ssh://`` address for this server: its key, its known_hosts, strict checking."""
        import urllib.parse

        q = {
            "identity": str(self.identity),
            "UserKnownHostsFile": str(self.known_hosts),
            "StrictHostKeyChecking": "yes",
            **query,
        }
        if break_sequence is not None:
            q["break"] = break_sequence
        return f"ssh://{self.user}@{self.host}:{self.port}?{urllib.parse.urlencode(q)}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "consolebot-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


# sshd sets these itself for a session; the rest of ``env`` goes through SetEnv
_SSHD_OWN_ENV = {"HOME", "USER", "LOGNAME", "SHELL", "MAIL", "TERM", "PWD", "OLDPWD", "_", "SHLVL"}


def _setenv_lines(env: dict[str, str] | None) -> list[str]:
    # one SetEnv line with every pair: for SetEnv, as for most keywords, sshd
    # keeps the first line it reads and ignores the others
    pairs = []
    for key, value in sorted((env or {}).items()):
        if key in _SSHD_OWN_ENV or key.startswith("SSH_") or not key.replace("_", "").isalnum():
            continue
        if any(ch in value for ch in '"\\\n\r') or not value.isprintable():
            continue
        pairs.append(f'"{key}={value}"')
    return ["SetEnv " + " ".join(pairs)] if pairs else []


@contextlib.contextmanager
def sshd_peer(tmp_path: Path, force_command: str, env: dict[str, str] | None = None) -> Iterator[SshdPeer]:
    """Given a tmp directory and a ForceCommand, yield a running OpenSSH server on loopback.

    Every login runs ``force_command`` (through the user's shell, as sshd does)
    with ``env`` added to the session's environment (sshd's ``SetEnv``; values
    with quotes, backslashes or control characters are left out). The server
    has its own host key (listed in ``known_hosts``) and accepts the client key
    ``identity`` for the current user only. It logs at DEBUG1, so the log shows
    channel requests such as an RFC 4335 ``break``.
    """
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        raise RuntimeError("sshd not found: install openssh-server")
    d = tmp_path / "sshd"
    d.mkdir(parents=True, exist_ok=True)
    host_key = d / "host_ed25519"
    identity = d / "client_ed25519"
    _keygen(host_key)
    _keygen(identity)
    authorized = d / "authorized_keys"
    authorized.write_text(Path(str(identity) + ".pub").read_text())
    port = free_port()
    host = "127.0.0.1"
    known_hosts = d / "known_hosts"
    known_hosts.write_text(f"[{host}]:{port} {Path(str(host_key) + '.pub').read_text()}")
    user = pwd.getpwuid(os.getuid()).pw_name
    root = os.geteuid() == 0
    if root:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    config = d / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {host}",
                f"HostKey {host_key}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "AuthenticationMethods publickey",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                f"PermitRootLogin {'yes' if root else 'no'}",
                f"AllowUsers {user}",
                "StrictModes no",
                "UsePAM no",
                "PrintMotd no",
                "PrintLastLog no",
                "PermitTTY yes",
                "LogLevel DEBUG1",
                "Subsystem sftp internal-sftp",
                *_setenv_lines(env),
                f"ForceCommand {force_command}",
                "",
            ]
        )
    )
    log = d / "sshd.log"
    with open(log, "ab") as logf:  # sshd -E appends to the same file
        proc = subprocess.Popen(
            [sshd, "-D", "-E", str(log), "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
        )
    try:
        _wait_for_log(proc, log, "Server listening on", "sshd")
        yield SshdPeer(host, port, user, identity, known_hosts, log, proc)
    finally:
        stop_tree(proc)


# -- a TCP relay that connects upstream late -------------------------------------------
@contextlib.contextmanager
def delayed_relay(upstream_port: int, delay_s: float) -> Iterator[int]:
    """Yield a loopback port that relays to ``upstream_port``, connecting upstream
    only ``delay_s`` after each client connects (bytes pass unchanged both ways)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()
    sockets: list[socket.socket] = [listener]
    threads: list[threading.Thread] = []

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while not stop.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def serve() -> None:
        while not stop.is_set():
            readable, _, _ = select.select([listener], [], [], 0.05)
            if not readable:
                continue
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            sockets.append(conn)
            if stop.wait(delay_s):
                return
            try:
                up = socket.create_connection(("127.0.0.1", upstream_port), timeout=5)
            except OSError:
                conn.close()
                continue
            sockets.append(up)
            t = threading.Thread(target=pipe, args=(conn, up), daemon=True)
            threads.append(t)
            t.start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        server.join(5)
        for t in threads:
            t.join(5)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()


# -- conserver ---------------------------------------------------------------------
@dataclass
class ConserverPeer:
    host: str
    port: int
    console: str
    user: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """The ``conserver://`` address of the console."""
        return self.url_for(self.console)

    def url_for(self, console: str) -> str:
        return f"conserver://{self.user}@{self.host}:{self.port}/{console}"


@contextlib.contextmanager
def conserver_peer(
    tmp_path: Path,
    console_name: str,
    telnet_port: int,
    on_demand: bool = True,
    connect_delay_s: float = 0.5,
    confirm_break: bool = False,
) -> Iterator[ConserverPeer]:
    """Given a tmp directory, a console name and a telnet port on 127.0.0.1, yield a
    running conserver master on loopback with that one console (``type host``,
    ``protocol telnet``) in front of the port.

    Clients from 127.0.0.1 are trusted (no password); the current user is in
    ``conserver.passwd`` with an empty password. conserver always writes
    /run/conserver/conserver.pid (no option moves it); nothing else leaves tmp.

    ``on_demand`` (conserver ``-i``): conserver connects to the console only when
    a client attaches. conserver drops console output that arrives between the
    client's ``call`` and the client's own ``^Ec;`` handshake, so a peer that
    talks the instant it is connected (the simulator boots then) would lose its
    first lines; ``connect_delay_s`` makes conserver's connection reach the
    telnet port that much later (through a relay), as a real console that is
    already running would behave. ``confirm_break``: the console's break
    (``\\z``, sequence 5 here) asks ``confirm? [y/N]`` first.
    """
    binary = shutil.which("conserver") or "/usr/sbin/conserver"
    if not os.path.exists(binary):
        raise RuntimeError("conserver not found: install conserver-server")
    with contextlib.ExitStack() as stack:
        if connect_delay_s > 0:
            telnet_port = stack.enter_context(delayed_relay(telnet_port, connect_delay_s))
        yield stack.enter_context(
            _conserver(tmp_path, binary, console_name, telnet_port, on_demand, confirm_break)
        )


@contextlib.contextmanager
def _conserver(
    tmp_path: Path, binary: str, console_name: str, telnet_port: int, on_demand: bool, confirm_break: bool
) -> Iterator[ConserverPeer]:
    d = tmp_path / "conserver"
    d.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1"
    user = pwd.getpwuid(os.getuid()).pw_name
    cf = d / "conserver.cf"
    breaks = 'break 5 {\n    string "\\z";\n    confirm yes;\n}\n' if confirm_break else ""
    cf.write_text(
        breaks
        + f"""
config * {{
    autocomplete no;
    defaultaccess rejected;
}}
default * {{
    logfile "";
    timestamp "";
    rw *;
    master {host};
}}
console {console_name} {{
    type host;
    host {host};
    port {telnet_port};
    protocol telnet;
    {"break 5;" if confirm_break else ""}
}}
access * {{
    trusted {host};
}}
"""
    )
    passwd = d / "conserver.passwd"
    passwd.write_text(f"{user}:\n")
    port = free_port()
    log = d / "conserver.log"
    # not -d: stay in the foreground, log to stderr; -E: accept clients without SSL
    # (no certificate here); -i (on_demand): connect to the console only while a
    # client is attached, so the client sees everything from the console's
    # first byte (the simulator boots when its first client connects); else
    # -o: bring a downed console up when a client attaches.
    argv = [binary, "-C", str(cf), "-P", str(passwd), "-p", str(port), "-M", host, "-E", "-m", "4"]
    argv.append("-i" if on_demand else "-o")
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    try:
        _wait_for_listen(proc, host, port, log)
        yield ConserverPeer(host, port, console_name, user, log, proc)
    finally:
        stop_tree(proc)


def _wait_for_listen(
    proc: subprocess.Popen[bytes], host: str, port: int, log: Path, timeout_s: float = 10.0
) -> None:
    end = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"conserver exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > end:
            raise RuntimeError(
                f"conserver did not listen within {timeout_s} s: {log.read_text(errors='replace')}"
            )
        time.sleep(0.02)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "echo":
        sys.exit(_echo_main(*sys.argv[2:]))
    print("usage: process_peers.py echo LOGFILE [REFUSEFILE]", file=sys.stderr)
    sys.exit(2)
