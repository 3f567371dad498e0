"""``consolebot.secrets.store`` in process, on keyrings.alt's real file backend and on keyring's own failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.core
import pytest
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend
from keyring.errors import InitError, KeyringLocked
from keyrings.alt.file import PlaintextKeyring

from consolebot.errors import EXIT_SECRET, EXIT_USAGE, SecretUnavailable, UsageError
from consolebot.secrets.secret import Secret
from consolebot.secrets.store import SecretStore, open_store, parse_ref

PW = ["Unit-Pw-One-1", "Unit-Pw-Two-2", "Unit-Pw-Three-3"]


def file_backend(tmp: Path) -> PlaintextKeyring:
    kr = PlaintextKeyring()
    kr.file_path = str(tmp / "keyring_pass.cfg")
    return kr


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(file_backend(tmp_path))


@pytest.fixture
def filled(store: SecretStore) -> SecretStore:
    for pw in PW:
        store.add("web1", "root", Secret(pw))
    return store


def assert_clean(exc: BaseException, *secrets: str) -> None:
    text = f"{exc} {exc!r} {exc.args!r}"
    for s in secrets:
        assert s not in text
    assert "\n" not in str(exc)


@pytest.fixture
def fresh_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Let open_store detect a backend anew, and put everything back afterwards."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    monkeypatch.setattr(keyring.backend, "_limit", None, raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield


# -- layout and operations --------------------------------------------------


def test_layout_in_the_keyring(filled: SecretStore, tmp_path: Path) -> None:
    kr = file_backend(tmp_path)
    assert kr.get_password("consolebot/web1", "root#1") == PW[0]
    assert kr.get_password("consolebot/web1", "root#3") == PW[2]
    assert kr.get_password("consolebot/web1", "root#count") == "3"
    assert kr.get_password("consolebot", "index") == '["web1/root"]'


def test_add_count_candidates_get(filled: SecretStore) -> None:
    assert filled.count("web1", "root") == 3
    assert filled.count("web1", "other") == 0
    cands = filled.candidates("web1", "root")
    assert [c.reveal() for c in cands] == PW
    assert [c.label for c in cands] == ["web1/root#1", "web1/root#2", "web1/root#3"]
    assert filled.get("web1", "root", 2).reveal() == PW[1]
    for c in cands:
        assert_clean(Exception(repr(c)), *PW)
    assert filled.add("web1", "root", Secret("Fourth-4")) == 4


def test_entries(filled: SecretStore) -> None:
    filled.add("db2", "admin", Secret("Db-Pw-9"))
    assert filled.entries() == [("db2", "admin", 1), ("web1", "root", 3)]
    assert filled.backend_name == "keyrings.alt.file.PlaintextKeyring"
    assert "PlaintextKeyring" in repr(filled) and PW[0] not in repr(filled)


def test_remove_shifts_and_last_removal_clears_index(filled: SecretStore) -> None:
    assert filled.remove("web1", "root", 2) == 2
    assert [c.reveal() for c in filled.candidates("web1", "root")] == [PW[0], PW[2]]
    filled.remove("web1", "root", 2)
    filled.remove("web1", "root", 1)
    assert filled.count("web1", "root") == 0
    assert filled.entries() == []


def test_reorder(filled: SecretStore) -> None:
    filled.reorder("web1", "root", [2, 3, 1])
    assert [c.reveal() for c in filled.candidates("web1", "root")] == [PW[1], PW[2], PW[0]]


@pytest.mark.parametrize("order", [[1, 2], [1, 1, 2], [0, 1, 2], [1, 2, 4], [], [1, 2, 3, 3]])
def test_reorder_rejects_non_permutations(filled: SecretStore, order: list[int]) -> None:
    with pytest.raises(UsageError) as ei:
        filled.reorder("web1", "root", order)
    assert ei.value.exit_code == EXIT_USAGE
    assert [c.reveal() for c in filled.candidates("web1", "root")] == PW


@pytest.mark.parametrize("index", [0, 4, -1])
def test_remove_rejects_bad_index(filled: SecretStore, index: int) -> None:
    with pytest.raises(UsageError):
        filled.remove("web1", "root", index)
    assert filled.count("web1", "root") == 3


@pytest.mark.parametrize(
    ("host", "user"), [("a/b", "u"), ("h", "u#1"), ("h", "u v"), ("", "u"), ("h", "u\tx")]
)
def test_bad_names(store: SecretStore, host: str, user: str) -> None:
    with pytest.raises(UsageError):
        store.add(host, user, Secret("Name-Test-Pw"))
    with pytest.raises(UsageError):
        store.count(host, user)


def test_empty_secret_refused(store: SecretStore) -> None:
    with pytest.raises(UsageError):
        store.add("web1", "root", Secret(""))
    assert store.count("web1", "root") == 0


# -- references -----------------------------------------------------------------


def test_resolve_ref(filled: SecretStore) -> None:
    first = filled.resolve_ref("keyring:web1/root")
    assert first.reveal() == PW[0] and first.label == "web1/root#1"
    assert filled.resolve_ref("keyring:web1/root#3").reveal() == PW[2]


@pytest.mark.parametrize(
    "ref",
    [
        "web1/root",
        "keyring:web1",
        "keyring:/root",
        "keyring:web1/",
        "keyring:web1/root#",
        "keyring:web1/root#x",
        "keyring:web1/root#0",
        "keyring:a/b/c",
        "keyring:web 1/root",
        "keyring:web1/root#1#2",
        "env:X",
    ],
)
def test_resolve_ref_bad_syntax(filled: SecretStore, ref: str) -> None:
    with pytest.raises(UsageError):
        filled.resolve_ref(ref)


def test_parse_ref() -> None:
    assert parse_ref("keyring:web1.example.org/root") == ("web1.example.org", "root", None)
    assert parse_ref("keyring:[fe80::1]/admin#12") == ("[fe80::1]", "admin", 12)


def test_resolve_ref_missing_names_the_fix(filled: SecretStore) -> None:
    with pytest.raises(SecretUnavailable) as ei:
        filled.resolve_ref("keyring:db2/admin")
    assert "consolebot passwords add db2 admin" in str(ei.value)
    assert ei.value.exit_code == EXIT_SECRET
    with pytest.raises(SecretUnavailable) as ei2:
        filled.resolve_ref("keyring:web1/root#4")
    assert "consolebot passwords add web1 root" in str(ei2.value)
    assert_clean(ei2.value, *PW)


# -- failures of the backend --------------------------------------------------


class RaisingBackend:
    """A backend whose every call raises the given exception (the value passed in is in its text)."""

    def __init__(self, make: type[Exception]) -> None:
        self.make = make

    def get_password(self, service: str, username: str) -> str | None:
        raise self.make(f"cannot read {service} {username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.make(f"cannot store {password!r} for {username}")

    def delete_password(self, service: str, username: str) -> None:
        raise self.make("cannot delete")


class DBusException(Exception):
    pass


DBusException.__module__ = "jeepney.wrappers"


class OnlyWritesFail(RaisingBackend):
    def get_password(self, service: str, username: str) -> str | None:
        return None


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (KeyringLocked, "locked"),
        (InitError, "no usable keyring backend"),
        (DBusException, "D-Bus"),
        (ValueError, "failed"),
    ],
)
def test_backend_errors_become_secret_unavailable(make: type[Exception], needle: str) -> None:
    store = SecretStore(RaisingBackend(make))
    with pytest.raises(SecretUnavailable) as ei:
        store.count("web1", "root")
    assert needle in str(ei.value)
    assert "PYTHON_KEYRING_BACKEND" in str(ei.value) or make is ValueError
    assert_clean(ei.value)


@pytest.mark.parametrize("make", [KeyringLocked, DBusException, ValueError, RuntimeError])
def test_a_failing_write_never_shows_the_value(make: type[Exception]) -> None:
    store = SecretStore(OnlyWritesFail(make))
    with pytest.raises(SecretUnavailable) as ei:
        store.add("web1", "root", Secret("Never-Show-Me-77"))
    assert_clean(ei.value, "Never-Show-Me-77", "Never-Show")


def test_unreachable_file_is_secret_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    kr = PlaintextKeyring()
    kr.file_path = str(blocker / "keyring_pass.cfg")
    with pytest.raises(SecretUnavailable) as ei:
        SecretStore(kr).add("web1", "root", Secret("File-Pw-31"))
    assert "storage" in str(ei.value)
    assert_clean(ei.value, "File-Pw-31")


def test_corrupt_count(tmp_path: Path) -> None:
    kr = file_backend(tmp_path)
    kr.set_password("consolebot/web1", "root#count", "three")
    with pytest.raises(SecretUnavailable) as ei:
        SecretStore(kr).count("web1", "root")
    assert "corrupt" in str(ei.value)


def test_count_without_value(tmp_path: Path) -> None:
    kr = file_backend(tmp_path)
    kr.set_password("consolebot/web1", "root#count", "1")
    with pytest.raises(SecretUnavailable) as ei:
        SecretStore(kr).resolve_ref("keyring:web1/root")
    assert "lacks web1/root#1" in str(ei.value)


# -- open_store ---------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_keyring")
def test_open_store_with_env_plaintext(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    store = open_store()
    assert store.backend_name == "keyrings.alt.file.PlaintextKeyring"
    store.add("web1", "root", Secret(PW[0]))
    assert (tmp_path / "data" / "python_keyring" / "keyring_pass.cfg").is_file()
    assert open_store().resolve_ref("keyring:web1/root").reveal() == PW[0]


@pytest.mark.usefixtures("fresh_keyring")
@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring])
def test_open_store_refuses_fail_and_null(backend: type[keyring.backend.KeyringBackend]) -> None:
    keyring.set_keyring(backend())
    with pytest.raises(SecretUnavailable) as ei:
        open_store()
    msg = str(ei.value)
    assert f"{backend.__module__}.{backend.__qualname__}" in msg
    assert "keyrings.alt" in msg and "Unattended keyring" in msg
    assert "\n" not in msg


@pytest.mark.usefixtures("fresh_keyring")
def test_open_store_refuses_empty_chainer() -> None:
    keyring.core.init_backend(limit=lambda kr: isinstance(kr, ChainerBackend))
    assert isinstance(keyring.get_keyring(), ChainerBackend)
    with pytest.raises(SecretUnavailable) as ei:
        open_store()
    assert "nothing to chain" in str(ei.value)


@pytest.mark.usefixtures("fresh_keyring")
def test_open_store_bad_env_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no_such_module.Keyring")
    with pytest.raises(SecretUnavailable) as ei:
        open_store()
    assert "PYTHON_KEYRING_BACKEND=no_such_module.Keyring" in str(ei.value)


@pytest.mark.usefixtures("fresh_keyring")
def test_open_store_probes_a_locked_backend(tmp_path: Path) -> None:
    kr = file_backend(tmp_path)

    def locked(service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    kr.get_password = locked  # a real backend whose reads now report a locked keyring
    keyring.set_keyring(kr)
    with pytest.raises(SecretUnavailable) as ei:
        open_store()
    assert "locked" in str(ei.value) and "unlock it" in str(ei.value)
