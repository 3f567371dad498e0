"""Load and validate ``hardware/*.toml``: errors name the file, the key and what is wrong.

Where the inventory is found: ``--inventory DIR``, else ``$CONSOLEBOT_INVENTORY``,
else ``./hardware``, else the copy shipped with consolebot.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolebot.errors import ConfigError
from consolebot.inventory.model import (
    AfterOutageSpec,
    BmcSpec,
    ConsoleSpec,
    Host,
    LoginSpec,
    ServiceSpec,
    SshSpec,
)

TRANSPORTS = {"telnet", "socket", "rfc2217", "serial", "loop", "exec", "ssh", "conserver", "ipmitool-sol", "pyghmi-sol"}
METHODS = {"init.d", "sv", "systemctl"}
POWER_BACKENDS = {"pyghmi", "ipmitool", "lab"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SECRET_KEY = re.compile(r"(secret|password|passwd|pass)$")

# key -> (type, required); a nested dict is a table
SCHEMA: dict[str, Any] = {
    "description": (str, False),
    "simulated": (bool, False),
    "console_hostnames": (list, False),
    "rules": (str, False),
    "console": {
        "transport": (str, True),
        "address": (str, False),
        "break_sequence": (str, False),
        "connect_script": (str, False),
        "script_vars": (dict, False),
        "escape": (str, False),
    },
    "bmc": {
        "address": (str, True),
        "port": (int, False),
        "interface": (str, False),
        "cipher_suite": (int, False),
        "cipher_fallback": (int, False),
        "sol_user": (str, False),
        "sol_secret": (str, False),
        "power_user": (str, False),
        "power_secret": (str, False),
        "power_backend": (str, False),
        "guid": (str, False),
    },
    "login": {
        "users": (list, False),
        "secret_host": (str, False),
        "max_attempts": (int, False),
    },
    "others": (list, False),
    "after_outage": {
        "restart": (list, False),
        "fixes": (dict, False),
    },
    "ssh": {
        "address": (str, False),
        "exec": (str, False),
        "port": (int, False),
        "user": (str, False),
        "key": (str, False),
        "connect_timeout_s": ((int, float), False),
        "known_hosts": (str, False),
    },
    "checks": (dict, False),
    "service": (list, False),
}
SERVICE_SCHEMA: dict[str, tuple[Any, bool]] = {
    "name": (str, True),
    "method": (str, True),
    "script": (str, False),
    "process": (str, False),
    "needs_afs": (bool, False),
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}


def _type_name(t: Any) -> str:
    if isinstance(t, tuple):
        return "a number"
    return _TYPE_NAMES.get(t, t.__name__)


@dataclass
class _Ctx:
    path: Path

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {what}")


def _check_table(ctx: _Ctx, table: dict[str, Any], schema: dict[str, Any], prefix: str) -> None:
    for key, value in table.items():
        full = f"{prefix}{key}"
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ctx.fail(full, f"unknown key; known keys here: {known}")
        spec = schema[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ctx.fail(full, f"must be a table ([{full}])")
            _check_table(ctx, value, spec, full + ".")
            continue
        typ, _req = spec
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if not ok:
            raise ctx.fail(full, f"must be {_type_name(typ)}, not {type(value).__name__} {value!r}")
    for key, spec in schema.items():
        if isinstance(spec, tuple) and spec[1] and key not in table:
            raise ctx.fail(f"{prefix}{key}", "missing (required)")


def _check_secrets(ctx: _Ctx, table: dict[str, Any], prefix: str = "") -> None:
    """A key that names a secret must hold a keyring reference, never the secret."""
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            _check_secrets(ctx, value, full + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _check_secrets(ctx, item, f"{full}[{i}].")
        elif _SECRET_KEY.search(key.lower()) and isinstance(value, str) and value:
            if not value.startswith("keyring:"):
                raise ConfigError(
                    f"{ctx.path}: {full}: looks like a literal secret; store it with "
                    f"'consolebot passwords add HOST USER' and write keyring:HOST/USER here"
                )


def _str_list(ctx: _Ctx, key: str, value: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise ctx.fail(key, "must be a list of strings")
    return tuple(value)


def parse_host(path: Path, data: dict[str, Any], name: str | None = None) -> Host:
    """Given a host file's parsed TOML, return the Host; raise ``ConfigError`` naming file and key."""
    ctx = _Ctx(path)
    name = name or path.stem
    if not _NAME.match(name):
        raise ctx.fail("(file name)", f"{name!r} is not a usable host name (letters, digits, . _ -)")
    _check_secrets(ctx, data)
    _check_table(ctx, data, SCHEMA, "")
    if "console" not in data:
        raise ctx.fail("console", "missing (required): every host needs [console] with transport and address")
    c = data["console"]
    if c["transport"] not in TRANSPORTS:
        raise ctx.fail("console.transport", f"unknown transport {c['transport']!r}; use one of {', '.join(sorted(TRANSPORTS))}")
    is_ipmi = c["transport"] in ("ipmitool-sol", "pyghmi-sol")
    if not is_ipmi and not c.get("address"):
        raise ctx.fail("console.address", f"missing (required for transport {c['transport']})")
    if is_ipmi and "bmc" not in data:
        raise ctx.fail("bmc", f"missing: console transport {c['transport']} needs a [bmc] table")
    if c.get("address") and not is_ipmi:
        scheme = c["address"].split(":", 1)[0]
        want = {"serial": ("serial",), "loop": ("loop",)}.get(c["transport"], (c["transport"],))
        if scheme not in want and not (c["transport"] == "serial" and c["address"].startswith("/dev/")):
            raise ctx.fail("console.address", f"{c['address']!r} does not match transport {c['transport']!r}")
    script_vars = c.get("script_vars", {})
    for k, v in script_vars.items():
        if not isinstance(v, str):
            raise ctx.fail(f"console.script_vars.{k}", "must be a string")
    console = ConsoleSpec(
        transport=c["transport"],
        address=c.get("address", ""),
        break_sequence=c.get("break_sequence"),
        connect_script=c.get("connect_script"),
        script_vars=dict(script_vars),
        escape=c.get("escape", "~"),
    )
    bmc = None
    if "bmc" in data:
        b = data["bmc"]
        backend = b.get("power_backend", "pyghmi")
        if backend not in POWER_BACKENDS:
            raise ctx.fail("bmc.power_backend", f"unknown backend {backend!r}; use one of {', '.join(sorted(POWER_BACKENDS))}")
        if b.get("sol_user") and b.get("power_user") and b["sol_user"] == b["power_user"] and backend == "pyghmi":
            raise ctx.fail(
                "bmc.power_user",
                "must differ from bmc.sol_user: pyghmi shares one IPMI session between power and SOL with the "
                "same credentials and then hangs",
            )
        bmc = BmcSpec(
            address=b["address"],
            port=b.get("port", 623),
            interface=b.get("interface", "lanplus"),
            cipher_suite=b.get("cipher_suite", 17),
            cipher_fallback=b.get("cipher_fallback", 3),
            sol_user=b.get("sol_user", ""),
            sol_secret=b.get("sol_secret", ""),
            power_user=b.get("power_user", ""),
            power_secret=b.get("power_secret", ""),
            power_backend=backend,
            guid=b.get("guid", "").lower().replace("-", ""),
        )
    login = LoginSpec()
    if "login" in data:
        lg = data["login"]
        users = _str_list(ctx, "login.users", lg.get("users", ["root"]))
        if not users:
            raise ctx.fail("login.users", "must name at least one user")
        if lg.get("max_attempts", 3) < 1:
            raise ctx.fail("login.max_attempts", "must be at least 1")
        login = LoginSpec(users=users, secret_host=lg.get("secret_host", ""), max_attempts=lg.get("max_attempts", 3))
    services = []
    for i, svc in enumerate(data.get("service", [])):
        key = f"service[{i}]"
        if not isinstance(svc, dict):
            raise ctx.fail(key, "must be a table ([[service]])")
        _check_table(ctx, svc, SERVICE_SCHEMA, key + ".")
        if svc["method"] not in METHODS:
            raise ctx.fail(f"{key}.method", f"unknown method {svc['method']!r}; use one of {', '.join(sorted(METHODS))}")
        services.append(
            ServiceSpec(
                name=svc["name"],
                method=svc["method"],
                script=str(svc.get("script", svc["name"])),
                process=str(svc.get("process", svc["name"])),
                needs_afs=svc.get("needs_afs", True),
            )
        )
    checks = data.get("checks", {})
    for k, v in checks.items():
        if not isinstance(v, str):
            raise ctx.fail(f"checks.{k}", "must be a string (a shell command)")
    ssh = None
    if "ssh" in data:
        s = data["ssh"]
        if bool(s.get("address")) == bool(s.get("exec")):
            raise ctx.fail("ssh.address", "give either address (ssh to it) or exec (a command used instead of ssh)")
        if s.get("exec"):
            import shlex

            try:
                if not shlex.split(s["exec"]):
                    raise ValueError("empty")
            except ValueError as exc:
                raise ctx.fail("ssh.exec", f"not a usable command line: {exc}") from None
        if float(s.get("connect_timeout_s", 10.0)) <= 0:
            raise ctx.fail("ssh.connect_timeout_s", "must be more than 0")
        ssh = SshSpec(address=s.get("address", ""), port=s.get("port", 22), user=s.get("user", "root"),
                      key=s.get("key"), connect_timeout_s=float(s.get("connect_timeout_s", 10.0)),
                      known_hosts=s.get("known_hosts"), exec=s.get("exec"))
    others = _str_list(ctx, "others", data.get("others", []))
    for o in others:
        if o == name:
            raise ctx.fail("others", f"names the host itself ({name})")
    after = None
    if "after_outage" in data:
        a = data["after_outage"]
        names = {svc.name for svc in services}
        restart = _str_list(ctx, "after_outage.restart", a.get("restart", []))
        for r in restart:
            if r not in names:
                raise ctx.fail("after_outage.restart", f"{r!r} is not a [[service]] name here; known: "
                               f"{', '.join(sorted(names)) or 'none'}")
        fixes: dict[str, tuple[str, ...]] = {}
        for check, svcs in a.get("fixes", {}).items():
            key = f"after_outage.fixes.{check}"
            if check not in checks:
                raise ctx.fail(key, f"no check named {check!r} in [checks]")
            if not isinstance(svcs, list):
                raise ctx.fail(key, "must be a list of [[service]] names")
            fixes[check] = _str_list(ctx, key, svcs)
            for r in fixes[check]:
                if r not in names:
                    raise ctx.fail(key, f"{r!r} is not a [[service]] name here")
        after = AfterOutageSpec(restart=restart, fixes=fixes)
    return Host(
        name=name,
        source=str(path),
        console=console,
        console_hostnames=_str_list(ctx, "console_hostnames", data.get("console_hostnames", [])),
        bmc=bmc,
        login=login,
        services=tuple(services),
        checks=dict(checks),
        ssh=ssh,
        rules=data.get("rules"),
        description=data.get("description", ""),
        simulated=bool(data.get("simulated", False)),
        others=others,
        after_outage=after,
    )


def load_host_file(path: Path) -> Host:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return parse_host(path, data)


@dataclass
class Inventory:
    folder: Path
    origin: str  # how the folder was chosen
    hosts: dict[str, Host]

    def get(self, name: str) -> Host:
        """Given a host name, return it; raise ``ConfigError`` naming the known hosts."""
        if name not in self.hosts:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise ConfigError(f"unknown host {name!r} in inventory {self.folder} ({self.origin}); known: {known}")
        return self.hosts[name]


def shipped_folder() -> Path:
    return Path(str(importlib.resources.files("consolebot.data.hardware")))


def find_folder(explicit: str | None = None) -> tuple[Path, str]:
    """Return the inventory folder and how it was chosen (see module docstring)."""
    if explicit:
        return Path(explicit), "--inventory"
    env = os.environ.get("CONSOLEBOT_INVENTORY")
    if env:
        return Path(env), "$CONSOLEBOT_INVENTORY"
    local = Path("hardware")
    if local.is_dir() and any(local.glob("*.toml")):
        return local, "./hardware"
    return shipped_folder(), "shipped with consolebot"


def load_inventory(explicit: str | None = None) -> Inventory:
    """Load every ``*.toml`` of the inventory folder; raise ``ConfigError`` on the first bad file."""
    folder, origin = find_folder(explicit)
    if not folder.is_dir():
        raise ConfigError(f"inventory folder {folder} ({origin}) does not exist or is not a folder")
    hosts: dict[str, Host] = {}
    for path in sorted(folder.glob("*.toml")):
        host = load_host_file(path)
        hosts[host.name] = host
    if not hosts:
        raise ConfigError(f"inventory folder {folder} ({origin}) holds no HOST.toml file")
    return Inventory(folder, origin, hosts)
