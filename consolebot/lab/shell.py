"""A small bash: what an admin and consolebot type at a root prompt, interpreted, never executed.

Quoting ('...', "...", backslash), ``$VAR``/``${VAR}``/``$?``/``$$``, lists (``;``, ``&&``, ``||``, ``&``),
pipelines (``|``), redirections (``>``, ``>>``, ``<``, ``2>``, ``2>&1``, ``&>``), assignments (``PS1=...``),
the builtins (echo, printf, export, unset, set, bind, shopt, cd, pwd, test/[, true, false, :, exit, logout,
sleep, env, type) and a prompt with bash's escapes. Everything else is a ``System`` command (ps, sv,
bos, ...: see ``commands.py``); an unknown name is "command not found" (127).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

Writer = Callable[[str], None]


class ShellSyntaxError(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


class Incomplete(Exception):
    """The line needs more input (open quote, trailing backslash, && or |): bash shows PS2."""


@dataclass
class Part:
    kind: str  # "lit", "var", "status", "pid"
    value: str = ""
    quoted: bool = False


@dataclass
class Word:
    parts: list[Part] = field(default_factory=list)

    @property
    def quoted(self) -> bool:
        return any(p.quoted for p in self.parts)

    def literal(self) -> str | None:
        """The word's text when it has no expansion, else None."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.value for p in self.parts)
        return None


Token = tuple[str, "Word | str"]  # ("word", Word) or ("op", "&&")

_OPS = ("2>&1", "&>>", "2>>", ">&2", "1>&2", "&&", "||", ";;", ">>", "&>", "2>", "1>", ";", "|", "&", ">", "<")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lex(line: str) -> list[Token]:
    """Split a command line into words and operators; raise ``Incomplete`` when it is unfinished."""
    tokens: list[Token] = []
    word: Word | None = None
    i, n = 0, len(line)

    def lit(text: str, quoted: bool = False) -> None:
        nonlocal word
        if word is None:
            word = Word()
        last = word.parts[-1] if word.parts else None
        if last is not None and last.kind == "lit" and last.quoted == quoted:
            last.value += text
        else:
            word.parts.append(Part("lit", text, quoted))

    def dollar(j: int, quoted: bool) -> int:
        """Expand the ``$`` at ``line[j]``; return the index after it."""
        nonlocal word
        if word is None:
            word = Word()
        nxt = line[j + 1 : j + 2]
        if nxt == "?":
            word.parts.append(Part("status", quoted=quoted))
            return j + 2
        if nxt == "$":
            word.parts.append(Part("pid", quoted=quoted))
            return j + 2
        if nxt == "{":
            end = line.find("}", j + 2)
            if end < 0:
                raise Incomplete
            word.parts.append(Part("var", line[j + 2 : end], quoted))
            return end + 1
        m = _NAME.match(line, j + 1)
        if m:
            word.parts.append(Part("var", m.group(), quoted))
            return m.end()
        lit("$", quoted)
        return j + 1

    while i < n:
        c = line[i]
        if c in " \t\r\n":
            if word is not None:
                tokens.append(("word", word))
                word = None
            i += 1
            continue
        if c == "#" and word is None:
            break
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise Incomplete
            lit(line[i + 1 : end], True)
            i = end + 1
            continue
        if c == '"':
            j = i + 1
            buf = ""
            while True:
                if j >= n:
                    raise Incomplete
                d = line[j]
                if d == '"':
                    break
                if d == "\\" and j + 1 < n and line[j + 1] in '$`"\\\n':
                    buf += line[j + 1]
                    j += 2
                    continue
                if d == "$":
                    lit(buf, True)
                    buf = ""
                    j = dollar(j, True)
                    continue
                buf += d
                j += 1
            lit(buf, True)
            i = j + 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise Incomplete
            lit(line[i + 1], True)
            i += 2
            continue
        if c == "$":
            i = dollar(i, False)
            continue
        op = next((o for o in _OPS if line.startswith(o, i)), None)
        if op is not None:
            if op[0] in "12" and word is not None:  # "echo x2>f": the 2 belongs to the word
                op = op[1:] if op[1:] in _OPS else None
                if op is None or not line.startswith(op, i):
                    lit(c)
                    i += 1
                    continue
            if word is not None:
                w = word.literal()
                if op[0] in "<>" and w in ("1", "2") and not word.quoted:
                    op = w + op
                    word = None
                else:
                    tokens.append(("word", word))
                    word = None
            tokens.append(("op", op))
            i += len(op)
            continue
        lit(c)
        i += 1
    if word is not None:
        tokens.append(("word", word))
    if tokens and tokens[-1][0] == "op" and tokens[-1][1] in ("&&", "||", "|"):
        raise Incomplete
    return tokens


@dataclass
class Command:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word | None]] = field(default_factory=list)


Pipeline = list[Command]

_REDIRECTS = {">", ">>", "<", "2>", "2>>", "&>", "&>>", "1>"}
_DUPS = {"2>&1", ">&2", "1>&2"}


def parse(tokens: list[Token]) -> list[tuple[str, Pipeline]]:
    """Return ``[(connector, pipeline), ...]``; the first connector is ``;``."""
    items: list[tuple[str, Pipeline]] = []
    connector = ";"
    pipeline: Pipeline = []
    cmd = Command()
    i = 0

    def finish_cmd() -> None:
        nonlocal cmd
        if not cmd.words and not cmd.assigns and not cmd.redirects:
            raise ShellSyntaxError("newline")
        pipeline.append(cmd)
        cmd = Command()

    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "word":
            assert isinstance(val, Word)
            first = val.parts[0] if val.parts else None
            if (not cmd.words and first is not None and first.kind == "lit" and not first.quoted
                    and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", first.value)):
                name, _, rest = first.value.partition("=")
                value = Word([Part("lit", rest, True), *val.parts[1:]])
                cmd.assigns.append((name, value))
            else:
                cmd.words.append(val)
            i += 1
            continue
        assert isinstance(val, str)
        if val in _REDIRECTS:
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "word":
                raise ShellSyntaxError("newline" if i + 1 >= len(tokens) else str(tokens[i + 1][1]))
            target = tokens[i + 1][1]
            assert isinstance(target, Word)
            cmd.redirects.append((val, target))
            i += 2
            continue
        if val in _DUPS:
            cmd.redirects.append((val, None))
            i += 1
            continue
        if val == "|":
            if not cmd.words and not cmd.assigns:
                raise ShellSyntaxError("|")
            finish_cmd()
            i += 1
            continue
        # ; && || &
        if val == ";;" or not cmd.words and not cmd.assigns and not cmd.redirects:
            raise ShellSyntaxError(val)
        finish_cmd()
        items.append((connector, pipeline))
        pipeline = []
        connector = ";" if val == "&" else val
        i += 1
    if cmd.words or cmd.assigns or cmd.redirects:
        finish_cmd()
    if pipeline:
        items.append((connector, pipeline))
    return items


class System(Protocol):
    """The machine's commands behind the shell."""

    async def run(self, shell: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int | None:
        """Run ``argv``; return its exit status, or None when there is no such command."""

    def write_file(self, shell: Shell, path: str, data: str, append: bool) -> str | None:
        """Write a redirection's output; return an error message or None."""

    def read_file(self, path: str) -> str | None: ...

    def hostname(self) -> str: ...


class ExitShell(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Shell:
    """One shell session (a console login, or one SSH command)."""

    system: System
    user: str = "root"
    interactive: bool = True
    name: str = "-bash"  # how bash names itself in its errors
    status: int = 0
    cwd: str = "/root"
    pid: int = 4242
    vars: dict[str, str] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)
    exit_requested: int | None = None
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        defaults = {
            "PS1": "${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ ",
            "PS2": "> ",
            "HOME": "/root",
            "USER": self.user,
            "LOGNAME": self.user,
            "SHELL": "/bin/bash",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM": "vt102",
            "HISTFILE": "/root/.bash_history",
        }
        for k, v in defaults.items():
            self.vars.setdefault(k, v)
        self.exported |= {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM"}

    # -- prompt -----------------------------------------------------------------------
    def expand_var(self, name: str) -> str:
        if ":+" in name:
            var, _, word = name.partition(":+")
            return word if self.vars.get(var) else ""
        if ":-" in name:
            var, _, word = name.partition(":-")
            return self.vars.get(var) or word
        return self.vars.get(name, "")

    def _promptvars(self, text: str) -> str:
        def rep(m: re.Match[str]) -> str:
            inner = m.group(1) or m.group(2) or ""
            if inner.startswith("{"):
                inner = inner[1:-1]
            value = self.expand_var(inner)
            return value

        return re.sub(r"\$(\{[^}]*\})|\$([A-Za-z_][A-Za-z0-9_]*)", rep, text)

    def render_prompt(self, ps: str) -> str:
        host = self.system.hostname()
        home = self.vars.get("HOME", "/root")
        cwd = "~" + self.cwd[len(home):] if self.cwd.startswith(home) else self.cwd
        out = []
        text = self._promptvars(ps)
        i = 0
        while i < len(text):
            c = text[i]
            if c != "\\" or i + 1 >= len(text):
                out.append(c)
                i += 1
                continue
            e = text[i + 1]
            i += 2
            out.append({
                "u": self.user, "h": host.split(".")[0], "H": host, "w": cwd,
                "W": cwd.rsplit("/", 1)[-1] or "/", "$": "#" if self.user == "root" else "$",
                "n": "\n", "r": "\r", "\\": "\\", "[": "", "]": "", "e": "\x1b", "a": "\x07",
                "s": "bash", "t": time.strftime("%H:%M:%S"), "d": time.strftime("%a %b %d"),
            }.get(e, "\\" + e))
        return "".join(out)

    def prompt(self) -> str:
        return self.render_prompt(self.vars.get("PS1", ""))

    def prompt2(self) -> str:
        return self.render_prompt(self.vars.get("PS2", ""))

    # -- expansion ----------------------------------------------------------------------
    def expand(self, w: Word) -> str:
        out = []
        for p in w.parts:
            if p.kind == "lit":
                out.append(p.value)
            elif p.kind == "status":
                out.append(str(self.status))
            elif p.kind == "pid":
                out.append(str(self.pid))
            else:
                out.append(self.expand_var(p.value))
        return "".join(out)

    def expand_words(self, words: list[Word]) -> list[str]:
        argv = []
        for w in words:
            text = self.expand(w)
            if text == "" and not w.quoted:
                continue
            if w.quoted or all(p.kind == "lit" for p in w.parts):
                argv.append(text)
            else:
                argv.extend(text.split())  # unquoted expansion: word splitting
        return [a.replace("~", self.vars.get("HOME", "/root"), 1) if a.startswith("~") else a for a in argv]

    # -- running ----------------------------------------------------------------------------
    def complete(self, text: str) -> bool:
        """True when ``text`` is a whole command line (no open quote or trailing operator)."""
        try:
            lex(text)
        except Incomplete:
            return False
        return True

    async def run_line(self, line: str, out: Writer, err: Writer | None = None) -> int:
        """Run one command line; return its exit status. Raise ``ExitShell`` on exit/logout."""
        err = err or out
        try:
            items = parse(lex(line))
        except Incomplete:
            err(f"{self.name}: syntax error: unexpected end of file\n")
            self.status = 2
            return 2
        except ShellSyntaxError as exc:
            err(f"{self.name}: syntax error near unexpected token `{exc.token}'\n")
            self.status = 2
            return 2
        for connector, pipeline in items:
            if connector == "&&" and self.status != 0:
                continue
            if connector == "||" and self.status == 0:
                continue
            self.status = await self._pipeline(pipeline, out, err)
        return self.status

    async def _pipeline(self, pipeline: Pipeline, out: Writer, err: Writer) -> int:
        data = ""
        status = 0
        for i, cmd in enumerate(pipeline):
            last = i == len(pipeline) - 1
            buf: list[str] = []
            target: Writer = out if last else buf.append
            status = await self._command(cmd, data, target, err)
            data = "".join(buf)
        return status

    async def _command(self, cmd: Command, stdin: str, out: Writer, err: Writer) -> int:
        argv = self.expand_words(cmd.words)
        if not argv:
            for name, value in cmd.assigns:
                self.vars[name] = self.expand(value)
            return 0
        # redirections
        files: list[tuple[str, bool, list[str]]] = []
        o, e = out, err
        for op, target in cmd.redirects:
            path = self.expand(target) if target is not None else ""
            if op == "<":
                content = self.system.read_file(path)
                if content is None:
                    err(f"{self.name}: {path}: No such file or directory\n")
                    return 1
                stdin = content
                continue
            if op in ("2>&1",):
                e = o
                continue
            if op in (">&2", "1>&2"):
                o = e
                continue
            sink: list[str] = []
            append = op.endswith(">>")
            if path != "/dev/null":
                files.append((path, append, sink))
            to_file: Writer = sink.append
            if op in (">", ">>", "1>"):
                o = to_file
            elif op in ("2>", "2>>"):
                e = to_file
            else:  # &> &>>
                o = e = to_file
        status = await self.dispatch(argv, stdin, o, e)
        for path, append, sink in files:
            problem = self.system.write_file(self, path, "".join(sink), append)
            if problem:
                err(f"{self.name}: {problem}\n")
                status = 1
        return status

    async def dispatch(self, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
        builtin = _BUILTINS.get(argv[0])
        if builtin is not None:
            return await builtin(self, argv, stdin, out, err)
        status = await self.system.run(self, argv, stdin, out, err)
        if status is None:
            err(f"{self.name}: {argv[0]}: command not found\n")
            return 127
        return status


# -- builtins ------------------------------------------------------------------------------------
Builtin = Callable[[Shell, list[str], str, Writer, Writer], Awaitable[int]]


def _escapes(text: str) -> str:
    out = []
    i = 0
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "a": "\x07", "e": "\x1b", "0": "\x00"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            e = text[i + 1]
            if e == "x" and re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 : i + 4]):
                m = re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 : i + 4])
                assert m is not None
                out.append(chr(int(m.group(), 16)))
                i += 2 + len(m.group())
                continue
            if e in table:
                out.append(table[e])
                i += 2
                continue
            if e == "c":
                break
        out.append(c)
        i += 1
    return "".join(out)


async def _echo(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    args = argv[1:]
    newline, interpret = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        interpret = "e" in args[0] or (interpret and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    out((_escapes(text) if interpret else text) + ("\n" if newline else ""))
    return 0


def printf_format(fmt: str, args: list[str]) -> tuple[str, bool]:
    """bash's printf: the format is reused while arguments remain. Return (text, ok)."""
    out: list[str] = []
    ok = True
    args = list(args)
    spec = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([sdibcxXou%])")
    while True:
        used = 0
        pos = 0
        for m in spec.finditer(fmt):
            out.append(_escapes(fmt[pos : m.start()]))
            pos = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            arg = args.pop(0) if args else ""
            used += 1
            if conv in "di":
                try:
                    val: object = int(arg or "0", 0)
                except ValueError:
                    ok = False
                    val = 0
            elif conv in "xXou":
                try:
                    val = int(arg or "0", 0)
                except ValueError:
                    ok = False
                    val = 0
            elif conv == "b":
                val, conv = _escapes(arg), "s"
            elif conv == "c":
                val, conv = arg[:1], "s"
            else:
                val = arg
            py = f"%{flags}{width}{'.' + prec if prec else ''}{conv}"
            out.append(py % val)
        out.append(_escapes(fmt[pos:]))
        if not args or used == 0:
            break
    return "".join(out), ok


async def _printf(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if len(argv) < 2:
        err(f"{sh.name}: printf: usage: printf [-v var] format [arguments]\n")
        return 2
    text, ok = printf_format(argv[1], argv[2:])
    out(text)
    return 0 if ok else 1


async def _export(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    for a in argv[1:]:
        if a.startswith("-"):
            continue
        name, eq, value = a.partition("=")
        if not _NAME.fullmatch(name):
            err(f"{sh.name}: export: `{a}': not a valid identifier\n")
            return 1
        if eq:
            sh.vars[name] = value
        sh.exported.add(name)
    if len(argv) == 1:
        for k in sorted(sh.exported):
            if k in sh.vars:
                out(f'declare -x {k}="{sh.vars[k]}"\n')
    return 0


async def _unset(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    for a in argv[1:]:
        if a.startswith("-"):
            continue
        sh.vars.pop(a, None)
        sh.exported.discard(a)
    return 0


async def _true(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    return 0


async def _false(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    return 1


async def _set(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if len(argv) == 1:
        for k in sorted(sh.vars):
            out(f"{k}='{sh.vars[k]}'\n")
    return 0


async def _exit(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    code = sh.status
    if len(argv) > 1:
        try:
            code = int(argv[1]) & 0xFF
        except ValueError:
            err(f"{sh.name}: exit: {argv[1]}: numeric argument required\n")
            code = 2
    raise ExitShell(code)


async def _cd(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    target = argv[1] if len(argv) > 1 else sh.vars.get("HOME", "/root")
    if not target.startswith("/"):
        target = sh.cwd.rstrip("/") + "/" + target
    parts: list[str] = []
    for p in target.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    sh.cwd = "/" + "/".join(parts)
    return 0


async def _pwd(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    out(sh.cwd + "\n")
    return 0


async def _sleep(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    try:
        seconds = float(argv[1].rstrip("s"))
    except (IndexError, ValueError):
        err("sleep: missing operand\n")
        return 1
    await asyncio.sleep(seconds)
    return 0


async def _env(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    if len(argv) > 1:
        return await sh.dispatch(argv[1:], stdin, out, err)
    for k in sorted(sh.exported):
        if k in sh.vars:
            out(f"{k}={sh.vars[k]}\n")
    return 0


async def _type(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    status = 0
    for a in argv[1:]:
        if a in _BUILTINS:
            out(f"{a} is a shell builtin\n")
        else:
            out(f"{a} is /usr/bin/{a}\n")
    return status


def _test_expr(args: list[str], sh: Shell) -> bool:
    if not args:
        return False
    if args[0] == "!":
        return not _test_expr(args[1:], sh)
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, a = args
        if op == "-n":
            return a != ""
        if op == "-z":
            return a == ""
        if op in ("-e", "-f", "-r", "-s", "-x", "-d"):
            return sh.system.read_file(a) is not None or a.startswith("/etc/init.d/")
        return False
    a, op, b = args[0], args[1], args[2]
    if op in ("=", "=="):
        return a == b
    if op == "!=":
        return a != b
    try:
        x, y = int(a), int(b)
    except ValueError:
        return False
    return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}.get(op, False)


async def _test(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            err(f"{sh.name}: [: missing `]'\n")
            return 2
        args = args[:-1]
    return 0 if _test_expr(args, sh) else 1


async def _sh_c(sh: Shell, argv: list[str], stdin: str, out: Writer, err: Writer) -> int:
    """``sh -c COMMAND`` / ``bash -c COMMAND``: a child shell (its ``exit`` ends it, not the caller)."""
    if len(argv) < 3 or argv[1] != "-c":
        err(f"{argv[0]}: only '{argv[0]} -c COMMAND' is simulated here\n")
        return 2
    child = Shell(sh.system, user=sh.user, interactive=False, name=argv[0], cwd=sh.cwd, pid=sh.pid + 1,
                  vars={k: v for k, v in sh.vars.items() if k in sh.exported}, exported=set(sh.exported))
    try:
        return await child.run_line(argv[2], out, err)
    except ExitShell as exc:
        return exc.status


_BUILTINS: dict[str, Builtin] = {
    "echo": _echo, "printf": _printf, "export": _export, "unset": _unset, "set": _set, "bind": _true,
    "shopt": _true, "true": _true, ":": _true, "false": _false, "exit": _exit, "logout": _exit, "cd": _cd,
    "pwd": _pwd, "sleep": _sleep, "env": _env, "type": _type, "test": _test, "[": _test, "history": _true,
    "alias": _true, "unalias": _true, "trap": _true, "umask": _true, "hash": _true, "sh": _sh_c, "bash": _sh_c,
}
