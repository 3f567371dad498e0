"""Talk to the lab guest over a consolebot session, as a person at its serial console would.

The guest's texts: busybox getty prints ``HOST login: ``, busybox login ``Password: ``, and the
shell (busybox ash with Debian's PS1) ``root@HOST:~# `` followed by ``ESC[6n`` (the line editor
asks where the cursor is; nobody answers and nothing breaks). Command output comes back with
``CR LF`` line ends.
"""

from __future__ import annotations

import re

from consolebot.errors import PromptTimeout
from consolebot.secrets.secret import Secret
from consolebot.session.session import ExpectResult, Session

CURSOR_QUERY = b"\x1b[6n"
INVALID_PASSWORD = re.compile(rb"login\[(\d+)\]: invalid password for '([^']*)' on '([^']*)'")


def clean_output(raw: bytes) -> str:
    """Given console bytes, return text with ``ESC[6n`` removed and line ends made ``\\n``."""
    text = raw.replace(CURSOR_QUERY, b"").decode("utf-8", "replace")
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "")


class GuestConsole:
    """Given a session on the guest's console, its hostname and root's password: log in, run, SysRq."""

    def __init__(self, session: Session, hostname: str, password: Secret, user: str = "root") -> None:
        self.session = session
        self.hostname = hostname
        self.password = password
        self.user = user
        self.login_prompt = f"{hostname} login: ".encode()
        self.shell_prompt = re.compile(re.escape(f"{user}@{hostname}:".encode()) + rb"[^\r\n#$]*[#$] ")

    def wait_login_prompt(self, timeout_s: float = 60.0) -> ExpectResult:
        return self.session.expect([self.login_prompt], timeout_s)

    def login(self, password: Secret | None = None, timeout_s: float = 30.0) -> ExpectResult:
        """At the login prompt: type the user, then the password; return the shell prompt's match."""
        self.session.sendline(self.user)
        self.session.expect([b"Password: "], timeout_s)
        self.session.send_secret(password or self.password)
        return self.session.expect([self.shell_prompt], timeout_s)

    def ensure_shell(self, timeout_s: float = 30.0) -> None:
        """Poke Enter until a prompt shows; log in if it is the login prompt."""
        r = self.session.poke([self.login_prompt, self.shell_prompt], tries=max(1, int(timeout_s // 2)),
                              interval_s=2.0)
        if r.index == 0:
            self.login(timeout_s=timeout_s)

    def run(self, command: str, timeout_s: float = 30.0) -> str:
        """Type ``command`` at the shell prompt; return its output (cleaned, without the echoed command)."""
        self.session.sendline(command)
        r = self.session.expect([self.shell_prompt], timeout_s)
        text = clean_output(r.before)
        head, sep, rest = text.partition("\n")
        if command in head:
            text = rest
        return text.rstrip("\n")

    def sysrq(self, key: str) -> None:
        """BREAK, then the SysRq key (the kernel takes a key within 5 s of a BREAK)."""
        self.session.send_break()
        self.session.send(key)

    def logout(self, timeout_s: float = 30.0) -> ExpectResult:
        self.session.sendline("exit")
        return self.wait_login_prompt(timeout_s)

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> int:
        """Read until ``quiet_s`` passes with nothing new; return how many bytes came meanwhile.

        Raise ``PromptTimeout`` if the console never falls quiet within ``timeout_s``.
        """
        before = self.session.rx_total
        if not self.session.settle(quiet_s, timeout_s):
            raise PromptTimeout(f"the console did not fall quiet for {quiet_s:g} s within {timeout_s:g} s")
        return self.session.rx_total - before
