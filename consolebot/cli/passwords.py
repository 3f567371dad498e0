"""``consolebot passwords add|list|remove|reorder``: the candidate passwords in the keyring.

No command prints a password: ``list`` shows hosts, users and counts only.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import UsageError
from consolebot.secrets.secret import Secret


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a candidate number is 1, 2, 3 ..., not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"candidate numbers start at 1, not {value}")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Given the top-level subparsers and the common options parser, add ``passwords`` and its actions."""
    pw = sub.add_parser(
        "passwords",
        help="manage candidate passwords in the keyring",
        description="Candidate passwords per HOST and USER, kept in the system keyring and tried in order. "
        "A configuration refers to them as keyring:HOST/USER (the first) or keyring:HOST/USER#N. "
        "Put --json after the action (e.g. 'passwords list --json').",
    )
    actions = pw.add_subparsers(dest="passwords_command", metavar="ACTION")

    add = actions.add_parser(
        "add",
        parents=[common],
        help="append a candidate password for HOST and USER",
        description="Append a candidate password. On a terminal it is asked twice without echo; "
        "otherwise exactly one line is read from stdin (e.g. from a password manager's pipe).",
    )
    add.add_argument("host")
    add.add_argument("user")
    add.set_defaults(handler=add_cmd)

    lst = actions.add_parser(
        "list", parents=[common], help="show hosts, users and candidate counts (never a password)"
    )
    lst.add_argument("host", nargs="?")
    lst.add_argument("user", nargs="?")
    lst.set_defaults(handler=list_cmd)

    rm = actions.add_parser(
        "remove", parents=[common], help="delete candidate INDEX; later candidates move down one"
    )
    rm.add_argument("host")
    rm.add_argument("user")
    rm.add_argument("index", type=_index)
    rm.set_defaults(handler=remove_cmd)

    ro = actions.add_parser(
        "reorder",
        parents=[common],
        help="put the candidates in a new order",
        description="Give every current candidate number once, in the new order: "
        "'reorder web1 root 3 1 2' makes the old #3 the first one tried.",
    )
    ro.add_argument("host")
    ro.add_argument("user")
    ro.add_argument("order", nargs="+", type=_index, metavar="INDEX")
    ro.set_defaults(handler=reorder_cmd)

    pw.set_defaults(handler=_no_action)


def _no_action(args: argparse.Namespace, out: Output) -> int:
    raise UsageError("choose an action: consolebot passwords add|list|remove|reorder (see --help)")


def read_password(host: str, user: str) -> str:
    """Given a host and user, return the password the user types (no echo, twice) or one stdin line.

    Raise UsageError if it is empty, the two typed entries differ, or stdin is closed.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"password for {host}/{user}: ")
        if not first:
            raise UsageError("empty password: nothing stored")
        second = getpass.getpass(f"again for {host}/{user}: ")
        if first != second:
            raise UsageError("the two entries differ: nothing stored")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        raise UsageError("empty password on stdin (give one line holding the password): nothing stored")
    return line


def add_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.secrets.store import check_name, open_store

    host = check_name("host", args.host)
    user = check_name("user", args.user)
    store = open_store()
    value = read_password(host, user)
    out.redactor.add(value)
    index = store.add(host, user, Secret(value, f"{host}/{user}"))
    out.say(f"stored candidate #{index} for {host}/{user} in {store.backend_name}")
    out.result(True, backend=store.backend_name, host=host, user=user, index=index, count=index)
    return 0


def list_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.secrets.store import check_name, open_store

    if args.host is not None:
        check_name("host", args.host)
    if args.user is not None:
        check_name("user", args.user)
    store = open_store()
    rows = [
        (h, u, n)
        for h, u, n in store.entries()
        if (args.host is None or h == args.host) and (args.user is None or u == args.user)
    ]
    out.say(f"backend: {store.backend_name}")
    if rows:
        wh = max(4, *(len(h) for h, _, _ in rows))
        wu = max(4, *(len(u) for _, u, _ in rows))
        out.say(f"{'HOST':<{wh}}  {'USER':<{wu}}  COUNT")
        for h, u, n in rows:
            out.say(f"{h:<{wh}}  {u:<{wu}}  {n}")
    else:
        which = "/".join(x for x in (args.host, args.user) if x) or "any host"
        out.say(f"no passwords stored for {which}")
    out.result(
        True,
        backend=store.backend_name,
        host=args.host,
        user=args.user,
        entries=[{"host": h, "user": u, "count": n} for h, u, n in rows],
        count=sum(n for _, _, n in rows),
    )
    return 0


def remove_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.secrets.store import check_name, open_store

    host = check_name("host", args.host)
    user = check_name("user", args.user)
    store = open_store()
    left = store.remove(host, user, args.index)
    out.say(f"removed candidate #{args.index} of {host}/{user}; {left} left in {store.backend_name}")
    out.result(True, backend=store.backend_name, host=host, user=user, index=args.index, count=left)
    return 0


def reorder_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.secrets.store import check_name, open_store

    host = check_name("host", args.host)
    user = check_name("user", args.user)
    store = open_store()
    store.reorder(host, user, list(args.order))
    moves = ", ".join(f"#{new}<-#{old}" for new, old in enumerate(args.order, start=1))
    out.say(f"reordered {host}/{user} in {store.backend_name}: {moves}")
    out.result(
        True, backend=store.backend_name, host=host, user=user, order=list(args.order), count=len(args.order)
    )
    return 0
