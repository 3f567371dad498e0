"""The keyring-backed store of candidate passwords, per (host, user).

Layout in the keyring (nothing but the candidates themselves is secret):

* service ``consolebot/HOST``, usernames ``USER#1`` ... ``USER#n``: the candidates,
  tried in that order;
* service ``consolebot/HOST``, username ``USER#count``: ``n``;
* service ``consolebot``, username ``index``: a JSON list of ``"HOST/USER"``, so
  that ``consolebot passwords list`` can enumerate without a secret.

A configuration refers to candidates as ``keyring:HOST/USER`` (the first one) or
``keyring:HOST/USER#N``; :meth:`SecretStore.resolve_ref` turns that into a
:class:`~consolebot.secrets.secret.Secret`.

Every failure of the backend (none installed, locked, no D-Bus session, a broken
file) becomes :class:`~consolebot.errors.SecretUnavailable` with one line that
names the fix; no message ever carries a candidate's value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from consolebot.errors import SecretUnavailable, UsageError
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret

SERVICE_PREFIX = "consolebot/"
INDEX_SERVICE = "consolebot"
INDEX_USERNAME = "index"
REF_PREFIX = "keyring:"

UNATTENDED_FIX = (
    "install keyrings.alt and set PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring "
    "or write ~/.config/python_keyring/keyringrc.cfg; see README 'Unattended keyring'"
)

# Backends that cannot hold anything: fail raises on every call, null forgets silently.
_UNUSABLE_CLASSES = {"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"}
_DBUS_MODULES = ("dbus", "jeepney", "secretstorage", "_dbus")
_NAME_BAD = re.compile(r"[/#\s]")
_REF = re.compile(r"keyring:(?P<host>[^/#\s]+)/(?P<user>[^/#\s]+)(?:#(?P<index>[0-9]+))?")

T = TypeVar("T")


class KeyringLike(Protocol):
    """What the store needs of a keyring backend (``keyring.backend.KeyringBackend`` has it)."""

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


def class_path(obj: object) -> str:
    """Given an object, return the dotted path of its class."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_backend(backend: object) -> str:
    """Given a keyring backend, return its dotted class path (a chainer lists what it chains)."""
    name = class_path(backend)
    if name == "keyring.backends.chainer.ChainerBackend":
        try:
            chained = [class_path(b) for b in getattr(backend, "backends", [])]
        except Exception:  # a chainer whose discovery fails is described without its list
            return name
        return f"{name}({', '.join(chained)})"
    return name


def unusable_reason(backend: object) -> str | None:
    """Given a keyring backend, return why it cannot hold secrets, or None if it looks usable."""
    name = class_path(backend)
    if name in _UNUSABLE_CLASSES:
        return f"no usable keyring backend ({name})"
    if name == "keyring.backends.chainer.ChainerBackend":
        try:
            chained = list(getattr(backend, "backends", []))
        except Exception as exc:
            return f"no usable keyring backend (chainer failed: {_one_line(type(exc).__name__, str(exc))})"
        usable = [b for b in chained if class_path(b) not in _UNUSABLE_CLASSES]
        if not usable:
            return f"no usable keyring backend ({name} with nothing to chain)"
    return None


def _one_line(kind: str, text: str, redactor: Redactor | None = None) -> str:
    if redactor is not None:
        text = redactor.redact_text(text, edges=True)
    text = " ".join(text.split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{kind}: {text}" if text else kind


def _is_dbus_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.split(".")[0].lower() in _DBUS_MODULES


def translate_error(
    exc: Exception, backend_name: str, what: str, redactor: Redactor | None = None
) -> SecretUnavailable:
    """Given an exception from a keyring backend, return a one-line ``SecretUnavailable`` naming the fix.

    ``what`` says which operation failed (e.g. "read consolebot/web1 root#1");
    ``redactor`` holds any value that was being written, so it cannot reach the message.
    """
    detail = _one_line(type(exc).__name__, str(exc), redactor)
    kind = type(exc).__name__
    if kind == "KeyringLocked":
        return SecretUnavailable(
            f"keyring {backend_name} is locked ({detail}) while trying to {what}; unlock it, or for "
            f"unattended use {UNATTENDED_FIX}"
        )
    if kind in ("NoKeyringError", "InitError"):
        return SecretUnavailable(f"no usable keyring backend ({backend_name}: {detail}); {UNATTENDED_FIX}")
    if _is_dbus_error(exc):
        return SecretUnavailable(
            f"keyring {backend_name} needs a D-Bus session/Secret Service that is not available ({detail}) "
            f"while trying to {what}; {UNATTENDED_FIX}"
        )
    if isinstance(exc, OSError):
        return SecretUnavailable(
            f"keyring {backend_name} cannot access its storage ({detail}) while trying to {what}; "
            "check the file's permissions and free space"
        )
    return SecretUnavailable(f"keyring {backend_name} failed to {what} ({detail}); {UNATTENDED_FIX}")


def check_name(kind: str, name: str) -> str:
    """Given a host or user name, return it. Raise UsageError if it is empty or has '/', '#' or whitespace."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"the {kind} name is empty")
    if _NAME_BAD.search(name) or not name.isprintable():
        raise UsageError(
            f"bad {kind} name {name!r}: it must not contain '/', '#', whitespace or control characters"
        )
    return name


def parse_ref(ref: str) -> tuple[str, str, int | None]:
    """Given ``keyring:HOST/USER`` or ``keyring:HOST/USER#N``, return (host, user, N or None).

    Raise UsageError if the reference does not have that form or N is not 1 or more.
    """
    m = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if m is None:
        raise UsageError(
            f"bad keyring reference {ref!r}: write keyring:HOST/USER or keyring:HOST/USER#N "
            "(no spaces, '/' or '#' inside HOST and USER)"
        )
    index = int(m.group("index")) if m.group("index") is not None else None
    if index is not None and index < 1:
        raise UsageError(f"bad keyring reference {ref!r}: candidates are numbered from 1")
    return m.group("host"), m.group("user"), index


class SecretStore:
    """Given a keyring backend, keep ordered candidate passwords per (host, user) in it.

    Build one with :func:`open_store`; tests may pass a backend directly.
    """

    def __init__(self, backend: KeyringLike, backend_name: str | None = None) -> None:
        self._backend = backend
        self.backend_name: str = backend_name or describe_backend(backend)

    def __repr__(self) -> str:
        return f"SecretStore({self.backend_name})"

    # -- raw access, every call translated ---------------------------------

    def _call(self, what: str, fn: Callable[[], T], redactor: Redactor | None = None) -> T:
        try:
            return fn()
        except SecretUnavailable:
            raise
        except Exception as exc:  # any backend failure is the keyring's, reported in one line
            raise translate_error(exc, self.backend_name, what, redactor) from None

    def _get(self, service: str, username: str) -> str | None:
        return self._call(f"read {service} {username}", lambda: self._backend.get_password(service, username))

    def _set(self, service: str, username: str, value: str, *, secret: bool) -> None:
        redactor = Redactor([value]) if secret else None
        self._call(
            f"write {service} {username}",
            lambda: self._backend.set_password(service, username, value),
            redactor,
        )

    def _delete(self, service: str, username: str) -> None:
        try:
            self._backend.delete_password(service, username)
        except Exception as exc:
            if type(exc).__name__ == "PasswordDeleteError":
                # Also raised for an entry that is simply not there: only a failure if it still is.
                if self._get(service, username) is None:
                    return
            raise translate_error(exc, self.backend_name, f"delete {service} {username}") from None

    # -- the index ----------------------------------------------------------

    def _read_index(self) -> list[str]:
        raw = self._get(INDEX_SERVICE, INDEX_USERNAME)
        if not raw:
            return []
        try:
            data = json.loads(raw)
        except ValueError:
            raise SecretUnavailable(
                f"the consolebot index in keyring {self.backend_name} is not JSON; delete the entry "
                f"service '{INDEX_SERVICE}' username '{INDEX_USERNAME}' and add the passwords again"
            ) from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise SecretUnavailable(
                f"the consolebot index in keyring {self.backend_name} is not a list of HOST/USER; delete the "
                f"entry service '{INDEX_SERVICE}' username '{INDEX_USERNAME}' and add the passwords again"
            )
        return data

    def _write_index(self, pairs: Iterable[str]) -> None:
        self._set(INDEX_SERVICE, INDEX_USERNAME, json.dumps(sorted(set(pairs))), secret=False)

    def probe(self) -> None:
        """Read the index once, so a locked or unreachable keyring shows up at once.

        Raise SecretUnavailable if the backend fails.
        """
        self._read_index()

    # -- candidates -----------------------------------------------------------

    @staticmethod
    def _service(host: str) -> str:
        return SERVICE_PREFIX + host

    def count(self, host: str, user: str) -> int:
        """Given a host and user, return how many candidates the keyring holds for them.

        Raise UsageError if a name is invalid, SecretUnavailable if the keyring fails or its count is corrupt.
        """
        check_name("host", host)
        check_name("user", user)
        raw = self._get(self._service(host), f"{user}#count")
        if raw is None or raw == "":
            return 0
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 0:
            raise SecretUnavailable(
                f"the candidate count of {host}/{user} in keyring {self.backend_name} is corrupt; "
                f"remove the entries of service '{self._service(host)}' and run "
                f"'consolebot passwords add {host} {user}' again"
            )
        return n

    def _set_count(self, host: str, user: str, n: int) -> None:
        service = self._service(host)
        pair = f"{host}/{user}"
        index = self._read_index()
        if n > 0:
            self._set(service, f"{user}#count", str(n), secret=False)
            if pair not in index:
                self._write_index([*index, pair])
        else:
            self._delete(service, f"{user}#count")
            if pair in index:
                self._write_index([p for p in index if p != pair])

    def add(self, host: str, user: str, secret: Secret) -> int:
        """Given a host, user and secret, append the secret as their last candidate and return its number.

        Raise UsageError if a name is invalid or the secret is empty, SecretUnavailable if the keyring fails.
        """
        if not isinstance(secret, Secret):
            raise UsageError("a candidate must be given as a Secret")
        if not secret.reveal():
            raise UsageError("an empty password cannot be stored")
        n = self.count(host, user) + 1
        self._set(self._service(host), f"{user}#{n}", secret.reveal(), secret=True)
        self._set_count(host, user, n)
        return n

    def get(self, host: str, user: str, index: int) -> Secret:
        """Given a host, user and 1-based index, return that candidate (labelled ``HOST/USER#N``).

        Raise UsageError if a name or the index is invalid, SecretUnavailable if there is no such
        candidate or the keyring fails.
        """
        n = self.count(host, user)
        if not isinstance(index, int) or isinstance(index, bool) or index < 1:
            raise UsageError(f"candidate numbers start at 1, not {index!r}")
        fix = f"add one with 'consolebot passwords add {host} {user}'"
        if n == 0:
            raise SecretUnavailable(f"keyring {self.backend_name} holds no password for {host}/{user}; {fix}")
        if index > n:
            raise SecretUnavailable(
                f"keyring {self.backend_name} holds {n} password(s) for {host}/{user}, not #{index}; {fix}"
            )
        value = self._get(self._service(host), f"{user}#{index}")
        if value is None:
            raise SecretUnavailable(
                f"keyring {self.backend_name} lacks {host}/{user}#{index} although its count is {n}; "
                f"remove it with 'consolebot passwords remove {host} {user} {index}' and {fix}"
            )
        return Secret(value, f"{host}/{user}#{index}")

    def candidates(self, host: str, user: str) -> list[Secret]:
        """Given a host and user, return all their candidates in order (possibly none).

        Raise UsageError if a name is invalid, SecretUnavailable if the keyring fails or lacks one.
        """
        return [self.get(host, user, i) for i in range(1, self.count(host, user) + 1)]

    def _check_index(self, host: str, user: str, index: int, n: int) -> None:
        if n == 0:
            raise UsageError(f"there are no passwords for {host}/{user} (see 'consolebot passwords list')")
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= n:
            raise UsageError(f"{host}/{user} has candidates 1..{n}; {index!r} is not one of them")

    def remove(self, host: str, user: str, index: int) -> int:
        """Given a host, user and 1-based index, delete that candidate, move later ones down, return the new count.

        Raise UsageError if a name or the index is invalid, SecretUnavailable if the keyring fails.
        """
        n = self.count(host, user)
        self._check_index(host, user, index, n)
        service = self._service(host)
        values = [self.get(host, user, i) for i in range(index + 1, n + 1)]
        for offset, value in enumerate(values):
            self._set(service, f"{user}#{index + offset}", value.reveal(), secret=True)
        self._delete(service, f"{user}#{n}")
        self._set_count(host, user, n - 1)
        return n - 1

    def reorder(self, host: str, user: str, new_order: list[int]) -> None:
        """Given a host, user and a permutation of 1..n, make old candidate ``new_order[k]`` number k+1.

        Raise UsageError if a name is invalid or ``new_order`` is not a permutation of 1..n,
        SecretUnavailable if the keyring fails.
        """
        n = self.count(host, user)
        if n == 0:
            raise UsageError(f"there are no passwords for {host}/{user} (see 'consolebot passwords list')")
        order = list(new_order)
        if any(isinstance(i, bool) or not isinstance(i, int) for i in order) or sorted(order) != list(
            range(1, n + 1)
        ):
            raise UsageError(
                f"{host}/{user} has {n} candidate(s): give each of 1..{n} exactly once, not "
                f"{' '.join(str(i) for i in order) or 'nothing'}"
            )
        old = [self.get(host, user, i) for i in range(1, n + 1)]
        service = self._service(host)
        for new_pos, old_pos in enumerate(order, start=1):
            if new_pos != old_pos:
                self._set(service, f"{user}#{new_pos}", old[old_pos - 1].reveal(), secret=True)

    def entries(self) -> list[tuple[str, str, int]]:
        """Return (host, user, count) for every pair in the index, sorted, skipping pairs with no candidates.

        Raise SecretUnavailable if the keyring fails or the index is corrupt.
        """
        out: list[tuple[str, str, int]] = []
        for pair in sorted(self._read_index()):
            host, sep, user = pair.partition("/")
            if not sep or not host or not user or _NAME_BAD.search(host) or _NAME_BAD.search(user):
                continue
            n = self.count(host, user)
            if n:
                out.append((host, user, n))
        return out

    def resolve_ref(self, ref: str) -> Secret:
        """Given ``keyring:HOST/USER`` or ``keyring:HOST/USER#N``, return that candidate (the first without #N).

        Raise UsageError if the reference is malformed, SecretUnavailable if the entry is missing
        (the message names ``consolebot passwords add HOST USER``) or the keyring fails.
        """
        host, user, index = parse_ref(ref)
        return self.get(host, user, index or 1)


def open_store() -> SecretStore:
    """Return a store on the keyring backend that ``keyring`` selects (environment, config file, detection).

    Raise SecretUnavailable (one line, naming the fix) if keyring is missing, no usable backend is
    configured, or the backend fails (locked, no D-Bus session).
    """
    try:
        import keyring
    except ImportError:
        raise SecretUnavailable(
            "the Python package 'keyring' is not installed; pip install keyring"
        ) from None
    try:
        backend: Any = keyring.get_keyring()
    except Exception as exc:  # a bad PYTHON_KEYRING_BACKEND or config file, a backend that fails to start
        chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
        source = f"PYTHON_KEYRING_BACKEND={chosen}: " if chosen else ""
        raise SecretUnavailable(
            f"no usable keyring backend ({source}{_one_line(type(exc).__name__, str(exc))}); {UNATTENDED_FIX}"
        ) from None
    reason = unusable_reason(backend)
    if reason is not None:
        raise SecretUnavailable(f"{reason}; {UNATTENDED_FIX}")
    store = SecretStore(backend)
    store.probe()
    return store
