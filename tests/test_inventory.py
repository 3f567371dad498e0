from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from consolebot.errors import ConfigError
from consolebot.inventory.load import load_inventory, shipped_folder
from tests.conftest import cb_env, consolebot_cmd

GOOD = """
console_hostnames = ["deleuze"]
[console]
transport = "telnet"
address = "telnet://127.0.0.1:7101"
[bmc]
address = "192.0.2.1"
sol_user = "admin"
sol_secret = "keyring:deleuze-bmc/admin"
power_user = "operator"
power_secret = "keyring:deleuze-bmc/operator"
[[service]]
name = "courier-authdaemon"
method = "sv"
process = "authdaemond"
"""


def write(tmp: Path, text: str, name: str = "deleuze") -> Path:
    inv = tmp / "inv"
    inv.mkdir(exist_ok=True)
    (inv / f"{name}.toml").write_text(text)
    return inv


def test_good_file_loads(tmp_path: Path) -> None:
    inv = load_inventory(str(write(tmp_path, GOOD)))
    h = inv.get("deleuze")
    assert h.bmc is not None and h.bmc.cipher_suite == 17 and h.bmc.cipher_fallback == 3
    assert h.services[0].process == "authdaemond" and h.services[0].method == "sv"


def test_shipped_inventory_is_valid_and_has_the_site() -> None:
    inv = load_inventory(str(shipped_folder()))
    assert {"deleuze", "mire", "outpost", "lab-deleuze", "lab-mire", "lab-outpost"} <= set(inv.hosts)
    names = [s.name for s in inv.get("deleuze").services]
    assert names == ["nscd", "mysql", "postgres", "apache2", "domtool-server", "cron", "spamassassin",
                     "courier-authdaemon", "openbsd-inetd"]
    assert all(inv.get(h).simulated for h in ("lab-deleuze", "lab-mire", "lab-outpost"))
    # the outage's other machines, and what each needs afterwards
    assert inv.get("deleuze").others == ("mire", "outpost")
    assert inv.get("lab-deleuze").others == ("lab-mire", "lab-outpost")
    for name in ("mire", "lab-mire"):
        after = inv.get(name).after_outage
        assert after is not None and after.restart == ("apache2", "domtool-slave")
    for name in ("outpost", "lab-outpost"):
        after = inv.get(name).after_outage
        assert after is not None and after.fixes == {"dns": ("bind9", "domtool-slave")}
    ssh = inv.get("lab-mire").ssh
    assert ssh is not None and ssh.exec is not None and ssh.exec.startswith("consolebot lab serve")


def test_recover_names_an_unknown_other_host(tmp_path: Path) -> None:
    inv = write(tmp_path, "others = ['nowhere']\n" + GOOD)
    proc = subprocess.run(consolebot_cmd("recover", "deleuze", "--dry-run", "--inventory", str(inv)),
                          capture_output=True, text=True, env=cb_env(tmp_path), timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "others: no host nowhere" in lines[0] and "known: deleuze" in lines[0]


BAD = [
    ("missing key", "[console]\ntransport = 'telnet'\n", "console.address", "missing"),
    ("wrong type", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[bmc]\naddress = 'x'\nport = '623'\n",
     "bmc.port", "must be an integer"),
    ("literal secret", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[bmc]\naddress = 'x'\n"
     "sol_secret = 'hunter2'\n", "bmc.sol_secret", "literal secret"),
    ("unknown transport", "[console]\ntransport = 'carrier-pigeon'\naddress = 'x'\n", "console.transport",
     "unknown transport"),
    ("unknown key", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\ncolour = 'red'\n", "console.colour",
     "unknown key"),
    ("syntax", "[console\n", "TOML syntax error", ""),
    ("address mismatch", "[console]\ntransport = 'ssh'\naddress = 'telnet://h:1'\n", "console.address",
     "does not match"),
    ("same BMC user", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[bmc]\naddress = 'x'\n"
     "sol_user = 'admin'\npower_user = 'admin'\n", "bmc.power_user", "must differ"),
    ("bad service method", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[[service]]\nname = 'x'\n"
     "method = 'upstart'\n", "service[0].method", "unknown method"),
    ("ssh address and exec", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[ssh]\naddress = 'h'\n"
     "exec = 'ssh -J j h'\n", "ssh.address", "either address"),
    ("ssh exec unparsable", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[ssh]\nexec = 'ssh \"h'\n",
     "ssh.exec", "not a usable command line"),
    ("others names itself", "others = ['deleuze']\n[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n",
     "others", "names the host itself"),
    ("restart of no service", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[[service]]\nname = 'x'\n"
     "method = 'init.d'\n[after_outage]\nrestart = ['apache2']\n", "after_outage.restart", "'apache2' is not"),
    ("fix for no check", "[console]\ntransport = 'telnet'\naddress = 'telnet://h:1'\n[[service]]\nname = 'x'\n"
     "method = 'init.d'\n[after_outage.fixes]\ndns = ['x']\n", "after_outage.fixes.dns", "no check named"),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_every_error_names_file_and_key_and_exits_2(tmp_path: Path, case: tuple[str, str, str, str]) -> None:
    _, text, key, what = case
    inv = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_inventory(str(inv))
    msg = str(exc.value)
    assert "deleuze.toml" in msg and key in msg and what in msg
    assert "hunter2" not in msg
    proc = subprocess.run(consolebot_cmd("hosts", "--inventory", str(inv)), capture_output=True, text=True,
                          env=cb_env(tmp_path), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "deleuze.toml" in lines[0] and "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def test_unknown_host_exits_2_naming_known_hosts(tmp_path: Path) -> None:
    inv = write(tmp_path, GOOD)
    proc = subprocess.run(consolebot_cmd("capture", "nosuch", "--for", "1", "--json"), capture_output=True,
                          text=True, env=cb_env(tmp_path, inv), timeout=60)
    assert proc.returncode == 2
    assert "unknown host 'nosuch'" in proc.stderr and "deleuze" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False


def test_inventory_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_inv = write(tmp_path, GOOD, "from-env")
    monkeypatch.setenv("CONSOLEBOT_INVENTORY", str(env_inv))
    assert "from-env" in load_inventory().hosts
    other = tmp_path / "other"
    other.mkdir()
    (other / "explicit.toml").write_text(GOOD)
    assert "explicit" in load_inventory(str(other)).hosts
    monkeypatch.delenv("CONSOLEBOT_INVENTORY")
    monkeypatch.chdir(tmp_path)  # no ./hardware here: the shipped copy
    assert "lab-deleuze" in load_inventory().hosts


def test_hosts_lists_and_checks(tmp_path: Path) -> None:
    inv = write(tmp_path, GOOD)
    proc = subprocess.run(consolebot_cmd("hosts", "--check", "--json"), capture_output=True, text=True,
                          env=cb_env(tmp_path, inv), timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["hosts"][0]["host"] == "deleuze"


def test_connect_script_secrets_are_known_for_redaction(tmp_path: Path) -> None:
    text = GOOD.replace('address = "telnet://127.0.0.1:7101"\n', 'address = "telnet://127.0.0.1:7101"\n'
                        'connect_script = "kvm-menu.chat"\n'
                        'script_vars = { kvm_user = "admin", kvm_password = "keyring:kvm/admin" }\n')
    h = load_inventory(str(write(tmp_path, text))).get("deleuze")
    assert "keyring:kvm/admin" in h.secret_refs() and "admin" not in h.secret_refs()
