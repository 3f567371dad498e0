"""The simulated site's configuration: hosts, scenarios, faults, candidate passwords.

Hosts and their ports, console hostnames and BMC GUIDs come from the shipped ``lab-*``
inventory (``consolebot/data/hardware/lab-NAME.toml``), so the simulator and consolebot
agree on them. The raw TCP port of a host is its telnet port + 1 (the inventory has no key
for it); the BMC control port is the inventory's ``[bmc] port``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from consolebot.errors import UsageError

HOSTS = ("deleuze", "mire", "outpost")
SSHD_MODES = ("accepts", "refuses", "hangs")  # how a host's sshd answers a new login

SCENARIOS = ("clean", "salvage-old-init", "salvage-wait", "hung", "sysrq-off", "panic")
# what a crash reboots into (for hung, sysrq-off, panic and any later crash)
REBOOT_KINDS = ("clean", "salvage-old-init", "salvage-wait")

# scenario -> platform of Deleuze (the transcript each one reproduces)
DELEUZE_PLATFORM = {
    "clean": "bookworm",
    "salvage-old-init": "squeeze",
    "salvage-wait": "squeeze",
    "hung": "stretch",
    "sysrq-off": "bookworm",
    "panic": "bullseye",
}

PASSWORD_ENV = "CONSOLEBOT_LAB_PASSWORD"
PASSWORDS_ENV = "CONSOLEBOT_LAB_PASSWORDS"
KVM_PASSWORD_ENV = "CONSOLEBOT_LAB_KVM_PASSWORD"
DEFAULT_PASSWORD = "labpass"


@dataclass
class SimOptions:
    """Everything ``consolebot lab serve`` was told (one object for the whole site)."""

    scenario: str = "clean"
    reboots_into: str = "salvage-old-init"
    salvage_seconds: float = 120.0
    sysrq_mask: int | None = None  # None: the scenario's (0 for sysrq-off, else 1)
    postgres_failed_starts: int | None = 1  # None: never starts (after a crash)
    courier_survives_stop: str = ""  # "", "once", "always"
    stuck_service: str = ""
    accepted_password_index: int = 1
    passwords: tuple[str, ...] = (DEFAULT_PASSWORD,)
    console_hostname: str | None = None  # the primary host's, overriding the inventory's
    bare_login: bool = False
    quiet: bool = False
    kmsg_during_commands: bool = False
    line_delay_s: float = 0.004
    login_fail_delay_s: float = 1.0
    time_scale: float = 1.0
    wait_for_client: bool = True
    sp_cli: bool = False
    kvm_menu: bool = False
    kvm_user: str = "admin"
    kvm_password: str = "kvmpass"
    send_log: str | None = None
    act_log: str | None = None
    sshd: dict[str, str] = field(default_factory=dict)  # host -> accepts | refuses | hangs (new SSH logins)

    @property
    def accepted_password(self) -> str:
        return self.passwords[self.accepted_password_index - 1]

    def mask_for(self, scenario: str) -> int:
        if self.sysrq_mask is not None:
            return self.sysrq_mask
        return 0 if scenario == "sysrq-off" else 1

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale


def candidate_passwords(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """The root password candidates: ``$CONSOLEBOT_LAB_PASSWORDS`` (one per line), else the single
    ``$CONSOLEBOT_LAB_PASSWORD`` (default 'labpass'). Never from argv."""
    env = dict(os.environ) if env is None else env
    many = env.get(PASSWORDS_ENV)
    if many:
        items = tuple(p for p in many.split("\n") if p)
        if items:
            return items
    return (env.get(PASSWORD_ENV) or DEFAULT_PASSWORD,)


@dataclass
class HostProfile:
    """One simulated host: identity, ports, platform and services."""

    name: str
    console_hostname: str
    guid: str
    telnet_port: int
    raw_port: int
    bmc_port: int
    tty: str = "ttyS1"
    platform: str = "bookworm"
    services: tuple[str, ...] = ()
    fileserver: bool = False
    sp: bool = False  # a service processor CLI in front of the console (with --sp-cli)
    aliases: tuple[str, ...] = field(default_factory=tuple)


SERVICES = {
    "deleuze": ("ssh", "nscd", "mysql", "postgres", "apache2", "domtool-server", "cron", "spamassassin",
                "courier-authdaemon", "openbsd-inetd"),
    "mire": ("ssh", "nscd", "apache2", "domtool-slave", "cron"),
    "outpost": ("ssh", "nscd", "bind9", "domtool-slave", "cron"),
}
_DEFAULT_PORTS = {"deleuze": 7101, "mire": 7111, "outpost": 7121}


def load_profile(name: str) -> HostProfile:
    """Given deleuze, mire or outpost, return its profile from the shipped ``lab-NAME`` inventory entry."""
    if name not in HOSTS:
        raise UsageError(f"unknown simulated host {name!r}; use one of {', '.join(HOSTS)}")
    from consolebot.inventory.load import load_host_file, shipped_folder

    host = load_host_file(shipped_folder() / f"lab-{name}.toml")
    address = host.console.address
    try:
        telnet = int(address.rsplit(":", 1)[1].strip("/"))
    except (IndexError, ValueError):
        telnet = _DEFAULT_PORTS[name]
    bmc_port = host.bmc.port if host.bmc is not None else telnet + 2
    guid = host.bmc.guid if host.bmc is not None else ""
    hostname = host.console_hostnames[0] if host.console_hostnames else f"{name}-sim"
    return HostProfile(
        name=name,
        console_hostname=hostname,
        guid=guid,
        telnet_port=telnet,
        raw_port=telnet + 1,
        bmc_port=bmc_port,
        tty="ttyS1" if name == "deleuze" else "ttyS0",
        platform="bookworm" if name == "deleuze" else "bookworm-systemd",
        services=SERVICES[name],
        fileserver=name == "deleuze",
        sp=name == "mire",
        aliases=(name, f"{name}.example.org", f"{name}.hcoop.net"),
    )


def check_options(opts: SimOptions, hosts: list[str]) -> None:
    """Raise ``UsageError`` for combinations that cannot work."""
    if opts.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {opts.scenario!r}; use one of {', '.join(SCENARIOS)}")
    if opts.reboots_into not in REBOOT_KINDS:
        raise UsageError(f"--reboots-into wants one of {', '.join(REBOOT_KINDS)}")
    if opts.scenario.startswith("salvage") and "deleuze" not in hosts:
        raise UsageError(f"scenario {opts.scenario} is about Deleuze's fileserver; serve deleuze (or --site)")
    if not 1 <= opts.accepted_password_index <= len(opts.passwords):
        raise UsageError(
            f"--accepted-password-index {opts.accepted_password_index}: there are {len(opts.passwords)} candidate "
            f"password(s); put them one per line in ${PASSWORDS_ENV}"
        )
    if opts.salvage_seconds < 0 or opts.time_scale <= 0:
        raise UsageError("--salvage-seconds must be >= 0 and --time-scale > 0")
    for host, mode in opts.sshd.items():
        if host not in HOSTS or mode not in SSHD_MODES:
            raise UsageError(f"--sshd {host}={mode}: write HOST=MODE with HOST one of {', '.join(HOSTS)} "
                             f"and MODE one of {', '.join(SSHD_MODES)}")
    if opts.stuck_service:
        known = {s for h in hosts for s in SERVICES[h]}
        if opts.stuck_service not in known:
            raise UsageError(f"--stuck-service {opts.stuck_service}: no such service; known: {', '.join(sorted(known))}")
