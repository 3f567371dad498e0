from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consolebot.errors import ConfigError, TargetError
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret
from consolebot.session.chat import ChatScript
from consolebot.session.session import Session
from consolebot.session.transcript import Transcript
from consolebot.transport.telnet import TelnetTransport
from tests.conftest import Sim, assert_no_secret, start_sim, stop_proc

ROOT = Path(__file__).resolve().parent.parent
KVM_PASSWORD = "kvm-Secret-77"


@pytest.fixture
def kvm_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.setenv("CONSOLEBOT_LAB_KVM_PASSWORD", KVM_PASSWORD)
    s = start_sim(tmp_path, "--kvm-menu")
    yield s
    stop_proc(s.proc)


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"x.chat:2: unknown step 'sned'"):
        ChatScript.parse("expect a\nsned b\n", "x.chat")
    with pytest.raises(ConfigError, match="never a literal"):
        ChatScript.parse("send-secret hunter2\n", "x.chat")
    with pytest.raises(ConfigError, match="not a number"):
        ChatScript.parse("timeout soon\n", "x.chat")


def test_dry_run_plan_masks_secrets() -> None:
    script = ChatScript.load(ROOT / "expect_scripts" / "kvm-menu.chat")
    plan = script.plan({"kvm_user": "admin", "port": "1", "kvm_secret": "keyring:kvm1/admin"})
    assert any("send-secret keyring:kvm1/admin" in p and "***" in p for p in plan)
    assert any(p.endswith('kvm-menu.chat:7 send "admin\\r"') for p in plan)  # as the script writes it
    assert any(p.endswith('send "1\\r"') for p in plan)


def test_connect_script_walks_the_kvm_menu(kvm_sim: Sim, tmp_path: Path) -> None:
    script = ChatScript.load(ROOT / "expect_scripts" / "kvm-menu.chat")
    t = TelnetTransport("127.0.0.1", kvm_sim.ports["telnet"])
    t.open()
    session = Session(t, Transcript(tmp_path / "t", "kvm", Redactor()))
    asked: list[str] = []

    def resolve(ref: str) -> Secret:
        asked.append(ref)
        return Secret(KVM_PASSWORD, ref)

    done = script.run(session, resolve, {"kvm_user": "admin", "port": "1", "kvm_secret": "keyring:kvm1/admin"})
    assert asked == ["keyring:kvm1/admin"]
    assert len(done) == len(script.steps)
    # now on the console itself: the machine boots to its login prompt
    r = session.expect(["login: "], 30)
    assert b"deleuze-sim" in r.before
    session.close()
    assert_no_secret(KVM_PASSWORD, folder=tmp_path / "t")


def test_connect_script_wrong_password_aborts(kvm_sim: Sim, tmp_path: Path) -> None:
    script = ChatScript.load(ROOT / "expect_scripts" / "kvm-menu.chat")
    t = TelnetTransport("127.0.0.1", kvm_sim.ports["telnet"])
    t.open()

    session = Session(t, Transcript(tmp_path / "t", "kvm", Redactor()))
    with pytest.raises(TargetError, match=r"kvm-menu.chat:\d+: aborted"):
        script.run(session, lambda ref: Secret("wrong", ref), {"kvm_user": "admin", "port": "1", "kvm_secret": "keyring:k/a"})
    session.close()


def test_secret_refs_and_variables_are_checked_before_a_run() -> None:
    script = ChatScript.parse('send-secret {s}\nsend-secret keyring:a/b\nsend-secret {s}\nsend "{x}\\r"\n', "t.chat")
    assert script.secret_refs({"s": "keyring:k/u", "x": "1"}) == ["keyring:k/u", "keyring:a/b"]
    with pytest.raises(ConfigError, match=r"t.chat:4: no value for \{x\}"):
        script.plan({"s": "keyring:k/u"})
    with pytest.raises(ConfigError, match=r"t.chat:1: send-secret needs a keyring reference") as caught:
        script.secret_refs({"s": "hunter2", "x": "1"})
    assert "hunter2" not in str(caught.value)  # a literal put in a variable is never echoed
    sent: list[bytes] = []

    class NoSession:
        def send(self, data: bytes) -> None:
            sent.append(data)

    with pytest.raises(ConfigError, match=r"t.chat:4: no value for \{x\}"):
        script.run(NoSession(), lambda ref: Secret("unused", ref), {"s": "keyring:k/u"})  # type: ignore[arg-type]
    assert sent == []  # the missing variable of line 4 stopped it before line 1 sent anything


def test_a_bad_escape_is_reported_at_load_naming_the_line() -> None:
    import pytest as _pytest

    from consolebot.errors import ConfigError
    from consolebot.session.chat import ChatScript

    with _pytest.raises(ConfigError) as exc:
        ChatScript.parse('expect "ok"\nsend "\\\\q"\n', "x.chat")
    assert str(exc.value).startswith("x.chat:2: script text") and "unknown escape" in str(exc.value)
