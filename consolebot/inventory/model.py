"""Inventory data objects: what a host is and how to reach it. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsoleSpec:
    transport: str  # telnet socket rfc2217 serial exec ssh conserver ipmitool-sol pyghmi-sol
    address: str  # a console address (see transport.registry); empty for IPMI SOL (from [bmc])
    break_sequence: str | None = None
    connect_script: str | None = None
    script_vars: dict[str, str] = field(default_factory=dict)
    escape: str = "~"


@dataclass(frozen=True)
class BmcSpec:
    address: str
    port: int = 623
    interface: str = "lanplus"
    cipher_suite: int = 17
    cipher_fallback: int | None = 3
    sol_user: str = ""
    sol_secret: str = ""  # keyring reference
    power_user: str = ""
    power_secret: str = ""  # keyring reference
    power_backend: str = "pyghmi"  # pyghmi | ipmitool | lab
    guid: str = ""


@dataclass(frozen=True)
class LoginSpec:
    users: tuple[str, ...] = ("root",)
    secret_host: str = ""  # keyring host whose candidates are tried (default: the host's name)
    max_attempts: int = 3


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    method: str  # init.d | sv | systemctl
    script: str  # init script, runit service or systemd unit
    process: str  # process name for killall/pgrep (authdaemond, postgres, postmaster)
    needs_afs: bool = True


@dataclass(frozen=True)
class SshSpec:
    address: str = ""
    port: int = 22
    user: str = "root"
    key: str | None = None
    connect_timeout_s: float = 10.0  # connect, log in and answer a first command within this, else "hung"
    known_hosts: str | None = None  # a known_hosts file (default: the user's own)
    exec: str | None = None  # a command line used instead of ssh (the remote command is appended, as ssh does)

    def describe(self) -> str:
        return f"exec {self.exec}" if self.exec else f"ssh {self.user}@{self.address}" + (
            f" -p {self.port}" if self.port != 22 else "")


@dataclass(frozen=True)
class AfterOutageSpec:
    """What this host needs after the main server's outage (``recover``'s ``others`` step)."""

    restart: tuple[str, ...] = ()  # services ([[service]] names) restarted, in order
    fixes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # check -> services restarted when it fails


@dataclass(frozen=True)
class Host:
    name: str
    source: str  # the file it came from
    console: ConsoleSpec
    console_hostnames: tuple[str, ...] = ()
    bmc: BmcSpec | None = None
    login: LoginSpec = LoginSpec()
    services: tuple[ServiceSpec, ...] = ()
    checks: dict[str, str] = field(default_factory=dict)
    ssh: SshSpec | None = None
    rules: str | None = None
    description: str = ""
    simulated: bool = False
    others: tuple[str, ...] = ()  # the hosts that depend on this one (recovered after it: 'recover' step others)
    after_outage: AfterOutageSpec | None = None

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    def secret_refs(self) -> list[str]:
        """Every keyring reference this host names (for preflight and redaction)."""
        refs = []
        if self.bmc is not None:
            refs += [r for r in (self.bmc.sol_secret, self.bmc.power_secret) if r]
        # a connect script's secrets (a KVM or service processor password) are keyring references too
        refs += [v for v in self.console.script_vars.values() if v.startswith("keyring:")]
        return refs
