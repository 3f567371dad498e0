"""``consolebot``: argument parsing, error mapping and dispatch.

Every command returns an exit code; every ``ConsoleBotError`` becomes one line
on stderr and its family's exit code; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

from consolebot import __version__
from consolebot.cli.output import Output
from consolebot.errors import EXIT_USAGE, ConsoleBotError

Handler = Callable[[argparse.Namespace, Output], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own exit code is 2 as ours; keep one line and no usage dump.
        json_mode = "--json" in sys.argv
        out = Output(json_mode=json_mode)
        out.error(f"{message} (see '{self.prog} --help')")
        out.result(False, error=message, exit_code=EXIT_USAGE)
        raise SystemExit(EXIT_USAGE)


# Every command in the order ``--help`` lists them: (name, its help line). Its module is
# ``consolebot.cli.NAME``, whose ``register(sub, common)`` adds its parser. Only the command being run has
# its module imported and its parser built; the others are listed by name and help line alone, so start-up
# does not pay for them (tests/test_cli_startup.py checks these lines against the modules' own).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "recover a simulated hung Deleuze end to end (no hardware)"),
    ("recover", "recover a hung server: reboot, salvage, services, checks"),
    ("hosts", "list the inventory's hosts; --check validates deeper"),
    ("capture", "record consoles read-only, many at once, into transcripts"),
    ("console", "attach to a host's console interactively (~. leaves, ~B sends BREAK)"),
    ("watch", "classify a console transcript into a boot timeline"),
    ("sysrq", "send Magic SysRq keys, each confirmed by the kernel"),
    ("power", "chassis power through the BMC, each act proven"),
    ("reboot", "reboot a hung host: nudge, SysRq, NMI, power reset, cycle"),
    ("run", "run a command on a host: over SSH if it answers, else the console"),
    ("script", "run an expect script (expect_scripts/) on a host's console"),
    ("probe", "attach read-only to a console address and record it"),
    ("passwords", "manage candidate passwords in the keyring"),
    ("lab", "the built-in simulated site"),
)
_ALL = object()


def build_parser(command: str | None | object = _ALL) -> argparse.ArgumentParser:
    """The parser of every command; given ``command`` (a name, or None), that command's alone in full.

    With a ``command``, the other commands are only listed (name and help line): enough for ``--help`` and
    for argparse's "invalid choice" message, without importing their modules.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object with 'ok' as the last line")
    common.add_argument("--inventory", metavar="DIR", default=None,
                        help="inventory folder (else $CONSOLEBOT_INVENTORY, ./hardware, the shipped copy)")
    parser = _Parser(
        prog="consolebot",
        description="Rescue Linux servers through their out-of-band console.",
        epilog="Exit codes: 0 ok, 2 usage/configuration, 3 keyring, 4 unreachable, 5 busy/locked, "
        "6 target error, 7 verification failed, 8 refused.",
    )
    parser.add_argument("--version", action="version", version=f"consolebot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # Each command module adds its parsers; imports stay light (heavy ones happen in handlers).
    for name, help_line in COMMANDS:
        if command is _ALL or name == command:
            importlib.import_module(f"consolebot.cli.{name}").register(sub, common)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) runs: its first word that is not an option, if any."""
    for word in argv:
        if word == "--":
            break
        if not word.startswith("-"):
            return word
    return None


def _install_signal_handlers() -> None:
    def _term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_named(argv))
    rest: list[str] | None = None
    if "--" in argv:  # everything after "--" is a remote command (consolebot run HOST -- CMD...)
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    args = parser.parse_args(argv)
    if rest is not None:
        if not hasattr(args, "remote_command"):
            parser.error("'--' is only used by 'consolebot run HOST -- CMD...'")
        args.remote_command = list(args.remote_command or []) + rest
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    out = Output(json_mode=getattr(args, "json", False))
    _install_signal_handlers()
    try:
        return handler(args, out)
    except ConsoleBotError as exc:
        out.error(str(exc))
        out.result(False, error=str(exc), error_type=type(exc).__name__, exit_code=exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        out.result(False, error="interrupted", exit_code=130)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the one place an unexpected error is turned into one line
        if os.environ.get("CONSOLEBOT_DEBUG"):
            raise
        msg = f"internal error {type(exc).__name__}: {out.redactor.redact_text(str(exc), edges=True)} (set CONSOLEBOT_DEBUG=1 for a traceback)"
        out.error(msg)
        out.result(False, error=msg, exit_code=1)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
