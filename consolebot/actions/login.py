"""Log in on a console, lockout-safe, with the keyring's candidate passwords; always log out.

A password is sent only once ``Password:`` is on the screen (typing ahead would echo
it at the login prompt). After "Login incorrect" the next candidate is tried at the
next login prompt; the attempts stop after the candidate list or ``max_attempts``,
whichever is smaller, so pam_faillock never locks the account; "Maximum number of
tries exceeded" and lockout messages stop at once. The result names the candidate
index that worked, never the secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consolebot.actions.console import Console
from consolebot.errors import LoginFailed, PromptTimeout
from consolebot.secrets.secret import Secret

PROMPTS = ("login.prompt", "shell.prompt", "login.password_prompt")


@dataclass
class LoginResult:
    ok: bool
    user: str = ""
    candidate: int | None = None  # 1-based index of the candidate that worked
    attempts: int = 0
    refusals: int = 0  # "Login incorrect" / "invalid password" lines the console printed
    already: bool = False  # a shell was already open
    detail: str = ""
    elapsed_s: float = 0.0
    tried: list[int] = field(default_factory=list)


def reach_prompt(console: Console, timeout_s: float = 10.0, pokes: int = 3) -> str:
    """Get to a login or shell prompt: return the kind shown ('login.prompt' or 'shell.prompt')."""
    console.quiet(0.3, 2.0)
    mark = console.mark()
    last = console.events[-1] if console.events else None
    if last is not None and last.kind in ("login.prompt", "shell.prompt"):
        return last.kind
    per_poke_s = max(1.0, timeout_s / max(1, pokes))
    for _ in range(max(1, pokes)):
        if last is not None and last.kind == "login.password_prompt":
            console.session.send(b"\x03")  # abandon a half-done login without spending an attempt
        console.session.sendline()
        try:
            ev = console.wait_for(PROMPTS, per_poke_s, since=mark)
        except PromptTimeout:
            continue
        if ev.kind in ("login.prompt", "shell.prompt"):
            return ev.kind
        last = ev
        mark = console.mark()
    raise PromptTimeout(f"{console.name}: no login or shell prompt after {pokes} pokes")


def login(
    console: Console,
    users: Sequence[str],
    candidates: Callable[[str], list[Secret]],
    max_attempts: int = 3,
    prompt_timeout_s: float = 15.0,
) -> LoginResult:
    """Log in as the first of ``users`` whose candidates work; raise ``LoginFailed`` when none does."""
    started = time.monotonic()
    kind = reach_prompt(console)
    if kind == "shell.prompt":
        console.act("login", outcome="already-logged-in")
        return LoginResult(True, already=True, detail="a shell was already open on the console",
                           elapsed_s=round(time.monotonic() - started, 3))
    attempts = 0
    result = LoginResult(False)
    for user in users:
        secrets = candidates(user)
        limit = min(len(secrets), max_attempts - attempts)
        for index, secret in enumerate(secrets[:limit], start=1):
            mark = console.mark()
            console.session.sendline(user)
            try:
                ev = console.wait_for(("login.password_prompt", "shell.prompt", "login.lockout"), prompt_timeout_s,
                                      since=mark)
            except PromptTimeout:
                raise LoginFailed(f"{console.name}: no 'Password:' after user {user!r}") from None
            if ev.kind == "login.lockout":
                raise LoginFailed(f"{console.name}: {ev.text} (stopped; no further attempt)")
            if ev.kind == "shell.prompt":  # no password asked
                console.act("login", user=user, outcome="ok", candidate=None, evidence_line=ev.line)
                return LoginResult(True, user, None, attempts, elapsed_s=round(time.monotonic() - started, 3))
            mark = console.mark()
            console.session.send_secret(secret)
            attempts += 1
            result.tried.append(index)
            try:
                ev = console.wait_for(("shell.prompt", "login.incorrect", "login.invalid_password", "login.lockout",
                                       "login.prompt"), prompt_timeout_s, since=mark)
            except PromptTimeout:
                raise LoginFailed(f"{console.name}: no answer after the password for {user!r}") from None
            if ev.kind == "shell.prompt":
                console.act("login", user=user, outcome="ok", candidate=index, attempts=attempts, evidence_line=ev.line)
                return LoginResult(True, user, index, attempts, result.refusals, False,
                                   f"candidate {index} for {user} accepted", round(time.monotonic() - started, 3),
                                   result.tried)
            if ev.kind == "login.lockout":
                raise LoginFailed(f"{console.name}: {ev.text} (stopped; no further attempt)")
            result.refusals += 1
            console.act("login", user=user, outcome="refused", candidate=index, evidence=ev.kind, evidence_line=ev.line)
            # wait for the next login prompt before the next candidate
            try:
                console.wait_for(("login.prompt",), prompt_timeout_s, since=mark)
            except PromptTimeout:
                reach_prompt(console)
        if attempts >= max_attempts:
            break
    raise LoginFailed(
        f"{console.name}: no candidate accepted after {attempts} attempt(s) "
        f"(limit {max_attempts}; the console refused {result.refusals}); check 'consolebot passwords list'"
    )
