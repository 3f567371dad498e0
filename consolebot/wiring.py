"""The composition root: from an inventory host to concrete transports and secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consolebot.errors import ConfigError, SecretUnavailable
from consolebot.inventory.model import Host
from consolebot.recognise.rules import Rule
from consolebot.secrets.redact import Redactor
from consolebot.secrets.secret import Secret
from consolebot.transport.base import Transport
from consolebot.transport.registry import transport_for

if TYPE_CHECKING:
    from consolebot.actions.console import Console
    from consolebot.power.base import PowerBackend


def console_factory(host: Host, steal: bool = False) -> Callable[[], Transport]:
    """Given a host, return a function that makes a fresh (unopened) console transport.

    ``steal`` (``--steal``): an IPMI SOL console that another client holds is taken over, and the
    transport's notes say so (record them with :func:`take_notes`). Nothing else ever steals.
    """
    spec = host.console
    if spec.transport in ("ipmitool-sol", "pyghmi-sol"):
        return _sol_factory(host, steal)
    opts: dict[str, str] = {}
    if spec.break_sequence:
        opts["break_sequence"] = spec.break_sequence
    transport_for(spec.address, **opts)  # validate now, so a bad address fails before anything starts

    def make() -> Transport:
        return transport_for(spec.address, **opts)

    return make


def _bmc_resolver() -> Callable[[str], Secret]:
    from consolebot.secrets.store import open_store

    return lambda ref: open_store().resolve_ref(ref)


def _sol_factory(host: Host, steal: bool) -> Callable[[], Transport]:
    """IPMI serial-over-LAN through the BMC of ``[bmc]`` as ``sol_user`` (password from the keyring)."""
    from consolebot.power.ipmi_common import bmc_target

    if host.bmc is None:
        raise ConfigError(f"{host.source}: console.transport = {host.console.transport} needs a [bmc] table")
    target = bmc_target(host.bmc, "sol", _bmc_resolver(), where=f"{host.source}: bmc")
    if host.console.transport == "ipmitool-sol":
        from consolebot.transport.ipmitool_sol import IpmitoolSolTransport

        IpmitoolSolTransport(target)  # validate now (interface lanplus), so a bad entry fails before anything starts
        return lambda: IpmitoolSolTransport(target, steal=steal)
    from consolebot.transport.pyghmi_sol import PyghmiSolTransport

    PyghmiSolTransport(target)
    return lambda: PyghmiSolTransport(target, steal=steal)


def take_notes(obj: object) -> list[str]:
    """What a transport or power backend asks its caller to record (a cipher suite fallback, --steal), once."""
    take = getattr(obj, "take_notes", None)
    return list(take()) if callable(take) else []


def find_script(name: str, inventory_folder: Path | None = None) -> Path:
    """Find a connect script: next to the inventory, in ./expect_scripts, then the shipped copy."""
    import importlib.resources

    candidates = []
    if inventory_folder is not None:
        candidates.append(inventory_folder.parent / "expect_scripts" / name)
    candidates.append(Path("expect_scripts") / name)
    candidates.append(Path(str(importlib.resources.files("consolebot.data.expect_scripts"))) / name)
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"connect script {name!r} not found in {', '.join(str(c.parent) for c in candidates)}")


def candidate_source(store: Any, host: Host, redactor: Redactor) -> Callable[[str], list[Secret]]:
    """``user -> candidates`` for ``host`` from ``store`` (its ``login.secret_host``), each registered with
    ``redactor`` as it is read, so that it can never reach a transcript or an output."""

    def candidates(user: str) -> list[Secret]:
        found = list(store.candidates(host.login.secret_host or host.name, user))
        for secret in found:
            redactor.add(secret.reveal())
        return found

    return candidates


def known_secrets(host: Host, redactor: Redactor, warn: Callable[[str], None]) -> int:
    """Register every secret the keyring holds for ``host`` with ``redactor``; return how many.

    Without a usable keyring, warn once and go on (the caller redacts what it does know).
    """
    from consolebot.secrets.store import open_store

    try:
        store = open_store()
        n = 0
        for user in host.login.users:
            for secret in store.candidates(host.login.secret_host or host.name, user):
                redactor.add(secret.reveal())
                n += 1
        for ref in host.secret_refs():
            try:
                redactor.add(store.resolve_ref(ref).reveal())
                n += 1
            except SecretUnavailable:
                pass
        return n
    except SecretUnavailable as exc:
        warn(f"{host.name}: {exc}; redacting only the secrets consolebot sends itself")
        return 0


def host_rules(host: Host, extra: str | None = None) -> tuple[list[Rule], dict[str, str]]:
    """The built-in rules plus the site's (``--rules``) and the host's (``rules`` in its inventory entry)."""
    from consolebot.recognise.rules import builtin_rules, load_site_rules

    rules: list[Rule] = []
    severities: dict[str, str] = {}
    for name in (extra, host.rules):
        if name:
            path = Path(name)
            if not path.is_absolute() and not path.exists():
                path = Path(host.source).parent / name
            more, sev = load_site_rules(path)
            rules += more
            severities.update(sev)
    return rules + builtin_rules(), severities


def power_backend(host: Host) -> PowerBackend | None:
    """The host's power backend, or None when the inventory names no BMC."""
    if host.bmc is None:
        return None
    kind = host.bmc.power_backend
    if kind == "lab":
        from consolebot.power.lab_bmc import LabBmc

        return LabBmc(host.bmc.address, host.bmc.port)
    if kind in ("pyghmi", "ipmitool"):
        from consolebot.power.ipmi_common import bmc_target

        target = bmc_target(host.bmc, "power", _bmc_resolver(), where=f"{host.source}: bmc")
        if kind == "ipmitool":
            from consolebot.power.ipmitool_power import IpmitoolPower

            return IpmitoolPower(target)
        from consolebot.power.pyghmi_power import PyghmiPower

        return PyghmiPower(target)
    raise ConfigError(
        f"{host.source}: bmc.power_backend: {kind} is not available in this version of consolebot yet"
    )


class AttachedConsole:
    """A writer's console: the lock, the transport (after its connect script), session, transcript, recogniser."""

    def __init__(self, host: Host, command: str, redactor: Redactor, folder: Path,
                 inventory_folder: Path | None = None, yield_timeout_s: float = 15.0, steal: bool = False) -> None:
        self.host = host
        self.steal = steal
        self.command = command
        self.redactor = redactor
        self.folder = folder
        self.inventory_folder = inventory_folder
        self.yield_timeout_s = yield_timeout_s
        self.console: Console | None = None

    def __enter__(self) -> Console:
        from consolebot.actions.console import Console
        from consolebot.locks import ConsoleWriter
        from consolebot.session.session import Session
        from consolebot.session.transcript import Transcript

        make = console_factory(self.host, steal=self.steal)
        rules, severities = host_rules(self.host)
        self.writer = ConsoleWriter(self.host.name, self.command, self.yield_timeout_s)
        self.writer.acquire()
        try:
            transport = make()
            transport.open()
            transcript = Transcript(self.folder, self.host.name, self.redactor)
            session = Session(transport, transcript, self.redactor)
            session.note(f"{self.command}: attached to {transport.describe()}")
            for note in take_notes(transport):
                session.note(f"{self.command}: {note}", what="transport.note")
            from consolebot.recognise.classifier import Classifier

            self.console = Console(session, Classifier(rules, severities), self.host.name)
            if self.host.console.connect_script:
                from consolebot.secrets.store import open_store
                from consolebot.session.chat import ChatScript

                script = ChatScript.load(find_script(self.host.console.connect_script, self.inventory_folder))
                script.run(session, lambda ref: open_store().resolve_ref(ref), self.host.console.script_vars)
        except BaseException:
            if self.console is not None:
                self.console.session.close()
            self.writer.release()
            raise
        return self.console

    def __exit__(self, *exc: object) -> None:
        try:
            if self.console is not None:
                self.console.session.note(f"{self.command}: detached")
                self.console.session.close()
        finally:
            self.writer.release()
