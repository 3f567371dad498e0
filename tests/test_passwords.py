"""``consolebot passwords ...`` run as a real process against keyrings.alt's file backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAIL = "keyring.backends.fail.Keyring"
PW = ["Cand-One-7q!x", "Cand-Two-8r?y", "Cand-Three-9s#z"]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``python -m consolebot`` with a private HOME, XDG dirs and keyring backend; keeps every output."""

    def __init__(self, tmp: Path, backend: str = PLAINTEXT) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.data = tmp / "xdg-data"
        self.config = tmp / "xdg-config"
        for d in (self.home, self.data, self.config):
            d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_", "PYTHON_KEYRING"))}
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.data),
            XDG_CONFIG_HOME=str(self.config),
            PYTHON_KEYRING_BACKEND=backend,
        )
        env.pop("CONSOLEBOT_DEBUG", None)
        self.env = env
        self.outputs: list[str] = []

    @property
    def keyring_file(self) -> Path:
        # keyring.util.platform_.data_root() on Linux: $XDG_DATA_HOME/python_keyring
        return self.data / "python_keyring" / "keyring_pass.cfg"

    def run(self, *args: str, stdin: str = "") -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "consolebot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        self.outputs += [proc.stdout, proc.stderr]
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, stdin: str = "") -> Run:
        r = self.run(*args, stdin=stdin)
        assert r.rc == 0, (r.rc, r.stderr)
        return r

    def assert_no_secrets(self, secrets: list[str]) -> None:
        for out in self.outputs:
            for s in secrets:
                assert s not in out, "a password reached stdout/stderr"

    def stored(self, host: str, user: str, what: str) -> str | None:
        """Read the file the CLI wrote, through the same real backend class."""
        kr = PlaintextKeyring()
        kr.file_path = str(self.keyring_file)
        return kr.get_password(f"consolebot/{host}", f"{user}#{what}")


def last_json(text: str) -> dict[str, object]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no output"
    obj = json.loads(lines[-1])
    assert isinstance(obj, dict)
    return obj


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def three(cli: Cli) -> Cli:
    for i, pw in enumerate(PW, start=1):
        r = cli.ok("passwords", "add", "web1", "root", stdin=pw + "\n")
        assert f"#{i}" in r.stdout
    return cli


def test_add_three_stores_in_order_in_the_file_backend(three: Cli) -> None:
    assert three.keyring_file.is_file()
    assert not (three.home / ".local" / "share" / "python_keyring").exists()
    assert [three.stored("web1", "root", str(i)) for i in (1, 2, 3)] == PW
    assert three.stored("web1", "root", "count") == "3"
    three.assert_no_secrets(PW)


def test_list_shows_counts_and_backend_never_a_secret(three: Cli) -> None:
    three.ok("passwords", "add", "db2", "admin", stdin="Other-Pw-55\n")
    r = three.ok("passwords", "list")
    assert PLAINTEXT in r.stdout
    rows = {tuple(line.split()) for line in r.stdout.splitlines()}
    assert ("web1", "root", "3") in rows
    assert ("db2", "admin", "1") in rows
    only = three.ok("passwords", "list", "db2")
    assert "db2" in only.stdout and "web1" not in only.stdout
    j = last_json(three.ok("passwords", "list", "web1", "root", "--json").stdout)
    assert j["ok"] is True
    assert j["backend"] == PLAINTEXT
    assert j["entries"] == [{"host": "web1", "user": "root", "count": 3}]
    three.assert_no_secrets([*PW, "Other-Pw-55"])


def test_remove_shifts_later_candidates_down(three: Cli) -> None:
    r = three.ok("passwords", "remove", "web1", "root", "1")
    assert "2 left" in r.stdout
    assert three.stored("web1", "root", "1") == PW[1]
    assert three.stored("web1", "root", "2") == PW[2]
    assert three.stored("web1", "root", "3") is None
    assert three.stored("web1", "root", "count") == "2"
    j = last_json(three.ok("passwords", "remove", "web1", "root", "2", "--json").stdout)
    assert j == {"ok": True, "backend": PLAINTEXT, "host": "web1", "user": "root", "index": 2, "count": 1}
    three.assert_no_secrets(PW)


def test_removing_the_last_candidate_drops_the_pair_from_list(cli: Cli) -> None:
    cli.ok("passwords", "add", "web1", "root", stdin=PW[0] + "\n")
    cli.ok("passwords", "remove", "web1", "root", "1")
    j = last_json(cli.ok("passwords", "list", "--json").stdout)
    assert j["entries"] == []
    assert cli.stored("web1", "root", "count") is None
    cli.assert_no_secrets(PW)


def test_reorder_permutes(three: Cli) -> None:
    j = last_json(three.ok("passwords", "reorder", "web1", "root", "3", "1", "2", "--json").stdout)
    assert j["ok"] is True and j["order"] == [3, 1, 2] and j["count"] == 3
    assert [three.stored("web1", "root", str(i)) for i in (1, 2, 3)] == [PW[2], PW[0], PW[1]]
    three.assert_no_secrets(PW)


@pytest.mark.parametrize("order", [["1", "1", "2"], ["1", "2"], ["1", "2", "3", "4"], ["0", "1", "2"], ["x"]])
def test_bad_reorder_is_a_usage_error_and_changes_nothing(three: Cli, order: list[str]) -> None:
    r = three.run("passwords", "reorder", "web1", "root", *order)
    assert r.rc == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert [three.stored("web1", "root", str(i)) for i in (1, 2, 3)] == PW
    three.assert_no_secrets(PW)


def test_bad_reorder_json_last_line(three: Cli) -> None:
    r = three.run("passwords", "reorder", "web1", "root", "2", "2", "1", "--json")
    assert r.rc == 2
    j = last_json(r.stdout)
    assert j["ok"] is False and j["exit_code"] == 2
    three.assert_no_secrets(PW)


def test_remove_out_of_range_is_a_usage_error(three: Cli) -> None:
    r = three.run("passwords", "remove", "web1", "root", "4")
    assert r.rc == 2 and "1..3" in r.stderr
    assert three.stored("web1", "root", "count") == "3"
    three.assert_no_secrets(PW)


def test_add_json_evidence(cli: Cli) -> None:
    j = last_json(cli.ok("passwords", "add", "web1", "root", "--json", stdin=PW[0] + "\n").stdout)
    assert j == {"ok": True, "backend": PLAINTEXT, "host": "web1", "user": "root", "index": 1, "count": 1}
    cli.assert_no_secrets(PW)


def test_add_reads_exactly_one_line_and_strips_only_the_newline(cli: Cli) -> None:
    cli.ok("passwords", "add", "web1", "root", stdin=" spaced pw \nsecond-line-NOT-stored\n")
    cli.ok("passwords", "add", "web1", "root", stdin="crlf-pw\r\n")
    cli.ok("passwords", "add", "web1", "root", stdin="no-newline-pw")
    assert cli.stored("web1", "root", "1") == " spaced pw "
    assert cli.stored("web1", "root", "2") == "crlf-pw"
    assert cli.stored("web1", "root", "3") == "no-newline-pw"
    assert cli.stored("web1", "root", "count") == "3"
    cli.assert_no_secrets([" spaced pw ", "second-line-NOT-stored", "crlf-pw", "no-newline-pw"])


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_add_empty_is_a_usage_error(cli: Cli, stdin: str) -> None:
    r = cli.run("passwords", "add", "web1", "root", stdin=stdin)
    assert r.rc == 2 and "empty" in r.stderr
    assert cli.stored("web1", "root", "count") is None


@pytest.mark.parametrize(("host", "user"), [("web/1", "root"), ("web1", "ro#ot"), ("web 1", "root")])
def test_bad_names_are_usage_errors(cli: Cli, host: str, user: str) -> None:
    r = cli.run("passwords", "add", host, user, stdin=PW[0] + "\n")
    assert r.rc == 2 and "name" in r.stderr
    assert not cli.keyring_file.exists() or cli.stored("web1", "root", "count") is None
    cli.assert_no_secrets(PW)


def test_no_action_is_a_usage_error(cli: Cli) -> None:
    r = cli.run("passwords")
    assert r.rc == 2 and "add|list|remove|reorder" in r.stderr


@pytest.mark.parametrize("args", [["list"], ["add", "web1", "root"], ["remove", "web1", "root", "1"]])
def test_no_backend_exits_3_with_one_line(tmp_path: Path, args: list[str]) -> None:
    cli = Cli(tmp_path, backend=FAIL)
    r = cli.run("passwords", *args, stdin=PW[0] + "\n")
    assert r.rc == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert FAIL in lines[0] and "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring" in lines[0]
    assert "Unattended keyring" in lines[0]
    assert r.stdout == ""
    cli.assert_no_secrets(PW)


def test_no_backend_json(tmp_path: Path) -> None:
    cli = Cli(tmp_path, backend=FAIL)
    r = cli.run("passwords", "list", "--json")
    assert r.rc == 3
    j = last_json(r.stdout)
    assert j["ok"] is False and j["exit_code"] == 3 and j["error_type"] == "SecretUnavailable"


def test_unloadable_backend_names_the_variable(tmp_path: Path) -> None:
    cli = Cli(tmp_path, backend="no_such_module.Keyring")
    r = cli.run("passwords", "list")
    assert r.rc == 3
    assert "PYTHON_KEYRING_BACKEND=no_such_module.Keyring" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_add_on_a_terminal_asks_twice_without_echo(cli: Cli) -> None:
    pexpect = pytest.importorskip("pexpect")
    secret = "Tty-Secret-42!"
    child = pexpect.spawn(
        sys.executable, ["-m", "consolebot", "passwords", "add", "web1", "root"], env=cli.env, timeout=30
    )
    child.expect("password for web1/root: ")
    child.sendline(secret)
    child.expect("again for web1/root: ")
    child.sendline(secret)
    child.expect(pexpect.EOF)
    child.close()
    transcript = (child.before or b"").decode(errors="replace")
    assert child.exitstatus == 0, transcript
    assert "stored candidate #1" in transcript
    assert cli.stored("web1", "root", "1") == secret
    cli.outputs.append(transcript)
    cli.assert_no_secrets([secret])


def test_add_on_a_terminal_refuses_different_entries(cli: Cli) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable, ["-m", "consolebot", "passwords", "add", "web1", "root"], env=cli.env, timeout=30
    )
    child.expect("password for web1/root: ")
    child.sendline("First-Entry-1")
    child.expect("again for web1/root: ")
    child.sendline("Second-Entry-2")
    child.expect(pexpect.EOF)
    child.close()
    transcript = (child.before or b"").decode(errors="replace")
    assert child.exitstatus == 2
    assert "differ" in transcript
    assert cli.stored("web1", "root", "count") is None
    cli.outputs.append(transcript)
    cli.assert_no_secrets(["First-Entry-1", "Second-Entry-2"])
