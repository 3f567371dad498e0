"""Every shipped expect script (``consolebot/data/expect_scripts/*.chat``), run by ``consolebot script`` as a
real process against the simulator's front ends, and listed by ``--dry-run`` with its secrets as ``***``.

A script shipped without an entry in ``CASES`` fails ``test_every_shipped_script_has_a_simulator_case``
and its own parametrized tests: each shipped template needs a simulator set-up here.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from consolebot.errors import EXIT_SECRET, EXIT_TARGET, EXIT_USAGE
from consolebot.power.lab_bmc import LabBmc
from consolebot.session.chat import ChatScript
from tests.conftest import Sim, assert_no_secret, cb_env, consolebot_cmd, free_port, start_sim, stop_proc

SHIPPED = Path(__file__).resolve().parent.parent / "consolebot" / "data" / "expect_scripts"
SHIPPED_NAMES = sorted(p.name for p in SHIPPED.glob("*.chat"))
KVM_PASSWORD = "Kvm-s3cret-Pw#41"
KVM_REF = "keyring:kvm1/admin"
CLI_TIMEOUT_S = 120.0
LOGIN_PROMPT_TIMEOUT_S = 60  # a whole simulated boot, with 1 ms between boot lines


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        last = self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""
        assert last.startswith("{"), f"no JSON result (rc {self.rc}): {self.stderr}"
        obj: dict[str, Any] = json.loads(last)
        return obj

    def saw(self, step_verb: str = "expect") -> list[str]:
        """What each expect step of the report saw, in order."""
        out = []
        for line in self.result["steps"]:
            m = re.search(r" (expect|expect-re) .*  -> saw (.*)$", line)
            if m and (step_verb == "any" or m.group(1) == step_verb):
                out.append(ast.literal_eval(m.group(2)))
        return out


@dataclass
class Lab:
    """A running simulated site, an inventory folder and an isolated consolebot environment."""

    sim: Sim | None  # None: no simulator (a dry run needs none)
    tmp: Path
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    @property
    def inv(self) -> Path:
        return self.tmp / "inv"

    def port(self, sim_host: str, kind: str = "telnet") -> int:
        assert self.sim is not None
        hosts: Any = self.sim.ports["hosts"]  # the ready file: every host's ports under "hosts"
        return int(hosts[sim_host][kind])

    def host(self, name: str, sim_host: str, script_vars: dict[str, str], connect_script: str | None = None,
             port: int | None = None) -> None:
        """An inventory entry whose console is ``sim_host``'s telnet port (where the front end answers)."""
        self.inv.mkdir(parents=True, exist_ok=True)
        lines = [f'simulated = true\nconsole_hostnames = ["{sim_host}-sim"]\n\n[console]\ntransport = "telnet"',
                 f'address = "telnet://127.0.0.1:{port or self.port(sim_host)}"']
        if connect_script:
            lines.append(f'connect_script = "{connect_script}"')
        if script_vars:
            lines.append("script_vars = { " + ", ".join(f'{k} = "{v}"' for k, v in script_vars.items()) + " }")
        lines.append('\n[login]\nusers = ["root"]\n')
        (self.inv / f"{name}.toml").write_text("\n".join(lines))

    def cli(self, *args: str, stdin: str = "") -> Run:
        proc = subprocess.run(consolebot_cmd(*args), input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=CLI_TIMEOUT_S, cwd=self.tmp)
        run = Run(proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        return run

    def script(self, host: str, file: str, *args: str) -> Run:
        return self.cli("script", host, file, "--json", *args)

    def acts(self, sim_host: str) -> list[dict[str, Any]]:
        path = self.tmp / f"sim-act.{sim_host}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def power(self, sim_host: str, act: str) -> None:
        bmc = LabBmc("127.0.0.1", self.port(sim_host, "bmc"))
        try:
            assert bmc.act(act).state == act
        finally:
            bmc.close()

    def assert_no_secret(self) -> None:
        texts = [t for r in self.runs for t in (r.stdout, r.stderr)]
        assert_no_secret(KVM_PASSWORD, *texts, folder=self.tmp / "state")


@pytest.fixture
def lab_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Lab]]:
    monkeypatch.setenv("CONSOLEBOT_LAB_KVM_PASSWORD", KVM_PASSWORD)
    started: list[Sim] = []

    def make(*flags: str, serve: bool = True) -> Lab:
        sim = start_sim(tmp_path, "--site", *flags) if serve else None
        if sim is not None:
            started.append(sim)
        lab = Lab(sim, tmp_path, cb_env(tmp_path, tmp_path / "inv"))
        r = lab.cli("passwords", "add", "kvm1", "admin", stdin=KVM_PASSWORD + "\n")
        assert r.rc == 0, r.stderr
        return lab

    yield make
    for s in started:
        stop_proc(s.proc)


# -- the simulator set-up and the evidence, per shipped script ------------------------------------------------


def acts_of(lab: Lab, sim_host: str, act: str) -> list[dict[str, Any]]:
    return [a for a in lab.acts(sim_host) if a["act"] == act]


def check_kvm_menu(lab: Lab, run: Run) -> None:
    # port 2 of the menu is Mire: the KVM attached the connection to Mire's console, not Deleuze's (whose
    # telnet port the inventory names, where the KVM answers)
    assert run.saw("expect-re")[-1].startswith("Connected to mire-sim")
    assert acts_of(lab, "mire", "connect") and not acts_of(lab, "deleuze", "connect")


def check_sp_console(lab: Lab, run: Run) -> None:
    assert run.saw()[-1] == "Serial console started"
    acts = [(a["act"], a.get("text")) for a in lab.acts("mire") if a["act"] in ("sp", "connect")]
    assert acts == [("sp", "start /SP/console"), ("sp", "y"), ("connect", None)]


def check_sp_power_state(lab: Lab, run: Run) -> None:
    assert run.saw("expect-re") == ["power_state = On"]
    lab.power("mire", "off")
    again = lab.script("mire", "sp-power-state.chat")
    assert again.rc == 0, again.stderr
    assert again.saw("expect-re") == ["power_state = Off"]
    # it only asks: no power act came from the service processor, no console was attached
    assert [a["text"] for a in acts_of(lab, "mire", "sp")] == ["show /SYS power_state"] * 2
    assert not [a for a in acts_of(lab, "mire", "bmc") if a.get("via") == "sp"]
    assert not acts_of(lab, "mire", "connect")


def prepare_power_off(lab: Lab) -> None:
    lab.power("mire", "off")


def check_sp_power_on(lab: Lab, run: Run) -> None:
    assert "Starting /SYS" in run.saw("expect-re")
    assert run.saw()[-1] == "Serial console started"
    on = [a for a in acts_of(lab, "mire", "bmc") if a.get("via") == "sp"]
    assert [a["cmd"] for a in on] == ["on"]
    assert acts_of(lab, "mire", "boot") and acts_of(lab, "mire", "connect")
    # a second run finds it on and leaves it alone
    again = lab.script("mire", "sp-power-on.chat")
    assert again.rc == 0, again.stderr
    assert "Target already started" in again.saw("expect-re")
    assert len([a for a in acts_of(lab, "mire", "bmc") if a.get("via") == "sp"]) == 1


@dataclass(frozen=True)
class Case:
    flags: tuple[str, ...]  # the simulator's front end
    sim_host: str  # whose telnet port the inventory entry names
    script_vars: dict[str, str]
    check: Callable[[Lab, Run], None]
    console_hostname: str | None  # where the script leaves the connection: this host's console, else None
    prepare: Callable[[Lab], None] | None = None


CASES: dict[str, Case] = {
    "kvm-menu.chat": Case(("--kvm-menu",), "deleuze",
                          {"kvm_user": "admin", "port": "2", "kvm_secret": KVM_REF}, check_kvm_menu, "mire-sim"),
    "sp-console.chat": Case(("--sp-cli",), "mire", {}, check_sp_console, "mire-sim"),
    "sp-power-state.chat": Case(("--sp-cli",), "mire", {}, check_sp_power_state, None),
    "sp-power-on.chat": Case(("--sp-cli",), "mire", {}, check_sp_power_on, "mire-sim", prepare_power_off),
}


def case_for(name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"expect_scripts/{name} ships without a simulator test: add a Case for it to CASES in "
                    "tests/test_expect_scripts.py (front end flags, inventory vars, evidence to check)")
    return CASES[name]


def test_every_shipped_script_has_a_simulator_case() -> None:
    assert SHIPPED_NAMES, f"no *.chat found in {SHIPPED}"
    assert sorted(CASES) == SHIPPED_NAMES, "CASES and the shipped scripts differ"


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_script_runs_against_the_simulator(name: str, lab_factory: Callable[..., Lab]) -> None:
    case = case_for(name)
    lab = lab_factory(*case.flags)
    lab.host(case.sim_host, case.sim_host, case.script_vars)
    if case.prepare is not None:
        case.prepare(lab)
    run = lab.script(case.sim_host, name)
    assert run.rc == 0, run.stderr
    script = ChatScript.load(SHIPPED / name)
    assert len(run.result["steps"]) == len(script.steps)
    case.check(lab, run)
    lab.assert_no_secret()
    if case.console_hostname is not None:
        # used as a host's connect script, it leaves the next script at the host's own console: a login prompt
        probe = lab.tmp / "login-prompt.chat"
        probe.write_text(f'send "\\r"\nexpect "{case.console_hostname} login: " {LOGIN_PROMPT_TIMEOUT_S}\n')
        lab.host("via-script", case.sim_host, case.script_vars, connect_script=name)
        r = lab.script("via-script", str(probe))
        assert r.rc == 0, r.stderr
        assert r.saw() == [f"{case.console_hostname} login: "]
        log = Path(r.result["transcript"]["log"]).read_text()
        assert f"{case.console_hostname} login: " in log
        lab.assert_no_secret()


def test_kvm_menu_then_sp_console_reaches_mires_login(lab_factory: Callable[..., Lab]) -> None:
    """The two templates chained as at a site: the KVM's port 2 is Mire's service processor, then its console."""
    lab = lab_factory("--kvm-menu", "--sp-cli")
    lab.host("mire-via-kvm", "outpost", {"kvm_user": "admin", "port": "2", "kvm_secret": KVM_REF},
             connect_script="kvm-menu.chat")
    run = lab.script("mire-via-kvm", "sp-console.chat")
    assert run.rc == 0, run.stderr
    assert run.saw()[-1] == "Serial console started"
    assert [a["text"] for a in acts_of(lab, "mire", "sp")] == ["start /SP/console", "y"]
    assert acts_of(lab, "mire", "connect") and not acts_of(lab, "outpost", "connect")
    dry = lab.cli("script", "mire-via-kvm", "sp-console.chat", "--dry-run")
    assert dry.rc == 0, dry.stderr
    listed = dry.stdout.splitlines()
    first = listed.index("first the host's connect script " + str(SHIPPED / "kvm-menu.chat") + ":")
    assert any(line.endswith("(sends *** then Enter)") for line in listed[first:])
    assert listed[-1].endswith('sp-console.chat:12 expect "Serial console started"')
    # the host's connect script named as FILE runs once, on its own (a second walk would wait for a
    # "Username: " that never comes)
    alone = lab.script("mire-via-kvm", "kvm-menu.chat")
    assert alone.rc == 0, alone.stderr
    assert alone.saw("expect-re")[-1].startswith("Connected to mire-sim")
    lab.assert_no_secret()


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_dry_run_lists_every_step_with_secrets_masked(name: str, lab_factory: Callable[..., Lab]) -> None:
    case = case_for(name)
    lab = lab_factory(serve=False)
    # nobody listens at the entry's address: a dry run that tried to connect would fail (exit 4)
    lab.host("dry", case.sim_host, case.script_vars, port=free_port())
    script = ChatScript.load(SHIPPED / name)
    run = lab.cli("script", "dry", name, "--dry-run")
    assert run.rc == 0, run.stderr
    listed = [line for line in run.stdout.splitlines() if re.match(rf"\S*{re.escape(name)}:\d+ ", line)]
    assert [int(line.split(" ", 1)[0].rsplit(":", 1)[1]) for line in listed] == [s.lineno for s in script.steps]
    for step, line in zip(script.steps, listed, strict=True):
        assert line.split(" ")[1] == step.verb
        if step.verb == "send-secret":
            assert line.endswith(f"send-secret {KVM_REF}  (sends *** then Enter)")
    secret_steps = [s for s in script.steps if s.verb == "send-secret"]
    assert run.stdout.count("***") == len(secret_steps)
    as_json = lab.script("dry", name, "--dry-run")
    assert as_json.rc == 0 and as_json.result["dry_run"] is True and len(as_json.result["steps"]) == len(script.steps)
    assert not (lab.tmp / "state" / "transcripts" / "dry.log").exists()  # nothing was attached or recorded
    lab.assert_no_secret()


# -- failures: one line, the step named, a distinct exit code -----------------------------------------------------


def assert_one_line_error(run: Run) -> str:
    lines = [x for x in run.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("consolebot: error: "), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    return lines[0]


def test_wrong_kvm_password_is_one_line_and_exit_6(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("--kvm-menu")
    r = lab.cli("passwords", "add", "kvm1", "admin", stdin="Not-the-kvm-pw-9\n")  # candidate #2: wrong
    assert r.rc == 0, r.stderr
    lab.host("kvm", "deleuze", {"kvm_user": "admin", "port": "1", "kvm_secret": "keyring:kvm1/admin#2"})
    run = lab.cli("script", "kvm", "kvm-menu.chat")
    assert run.rc == EXIT_TARGET
    line = assert_one_line_error(run)
    assert re.search(r"kvm-menu\.chat:\d+: aborted while awaiting expect-re \"Select \(port\|channel\): \": "
                     r".*the console shows 'Access denied'", line), line
    assert "transcript: " in line
    assert_no_secret("Not-the-kvm-pw-9", run.stdout, run.stderr, folder=lab.tmp / "state")
    assert not acts_of(lab, "deleuze", "connect")
    lab.assert_no_secret()


def test_failed_expect_names_the_step_and_what_was_awaited(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("--kvm-menu")
    lab.host("kvm", "deleuze", {"kvm_user": "admin", "port": "1", "kvm_secret": KVM_REF})
    probe = lab.tmp / "wrong-prompt.chat"
    probe.write_text('expect "Username: "\nsend "admin\\r"\nexpect "Passphrase: " 0.5\n')
    run = lab.cli("script", "kvm", str(probe))
    assert run.rc == EXIT_TARGET
    line = assert_one_line_error(run)
    assert 'wrong-prompt.chat:3: expect "Passphrase: " not seen within 0.5 s on telnet://' in line
    assert "last output: " in line and "Password: " in line


def test_missing_variable_and_keyring_entry_fail_before_anything_is_sent(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("--kvm-menu")
    lab.host("novars", "deleuze", {"kvm_user": "admin", "kvm_secret": KVM_REF})  # no port
    run = lab.cli("script", "novars", "kvm-menu.chat")
    assert run.rc == EXIT_USAGE
    assert "no value for {port}" in assert_one_line_error(run)
    lab.host("nokey", "deleuze", {"kvm_user": "admin", "port": "1", "kvm_secret": "keyring:kvm9/admin"})
    run = lab.cli("script", "nokey", "kvm-menu.chat")
    assert run.rc == EXIT_SECRET
    assert "consolebot passwords add kvm9 admin" in assert_one_line_error(run)
    # neither run reached the console: no transcript, the KVM never attached anyone
    assert not (lab.tmp / "state" / "transcripts" / "novars.log").exists()
    assert not (lab.tmp / "state" / "transcripts" / "nokey.log").exists()
    assert not acts_of(lab, "deleuze", "connect")
