"""Start-up: ``consolebot --help`` imports no command module; running a command builds its parser alone.

The command list of ``--help`` comes from ``consolebot.cli.main.COMMANDS``; these tests hold it to what
each command's module registers. No time is asserted (scripts print the start-up figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from consolebot.cli import main as cli_main


def test_the_command_table_says_what_the_modules_register() -> None:
    full = cli_main.build_parser()  # every module registered
    sub = next(a for a in full._actions if a.dest == "command")
    listed = [(a.dest, a.help) for a in sub._get_subactions()]  # type: ignore[attr-defined]
    assert listed == list(cli_main.COMMANDS)
    want = full.format_help()
    assert cli_main.build_parser(None).format_help() == want
    for name, _help in cli_main.COMMANDS:
        lazy = cli_main.build_parser(name)
        assert lazy.format_help() == want, name
        # the command's own parser is the full one: same options, same help
        assert command_parser(lazy, name).format_help() == command_parser(full, name).format_help(), name


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if a.dest == "command")
    choices: dict[str, argparse.ArgumentParser] = sub.choices  # type: ignore[assignment]
    return choices[name]


@pytest.mark.parametrize(("argv", "command"), [
    ([], None), (["--help"], None), (["--version"], None), (["watch", "-"], "watch"),
    (["--json", "capture", "a", "b"], "capture"), (["lab", "serve"], "lab"), (["--", "run"], None),
    (["nosuch"], "nosuch"),
])
def test_command_named(argv: list[str], command: str | None) -> None:
    assert cli_main.command_named(argv) == command


def test_help_imports_no_command_module() -> None:
    script = ("import sys, runpy, contextlib, io\n"
              "sys.argv = ['consolebot', '--help']\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    try:\n"
              "        runpy.run_module('consolebot', run_name='__main__')\n"
              "    except SystemExit:\n"
              "        pass\n"
              "import json\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith('consolebot'))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    commands = {f"consolebot.cli.{name}" for name, _help in cli_main.COMMANDS}
    assert not commands & set(loaded), loaded
    assert not [m for m in loaded if m.startswith(("consolebot.recognise", "consolebot.inventory", "consolebot.lab"))]


def test_unknown_command_lists_every_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "consolebot", "nosuch"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert all(repr(name) in proc.stderr for name, _help in cli_main.COMMANDS)
