"""recover's preparation and 'others' step against the simulated site (seed sections 1 and 4.1).

Mire's and Outpost's SSH path is the simulator's shell mode (the lab inventory's ``[ssh] exec``);
what consolebot did is read from each simulated host's own act log.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_no_secret, cb_env, consolebot_cmd, typed_commands

WRONG, RIGHT = "Wrong-cand-1x", "Right-cand-2y"
FAST = ["--salvage-seconds", "3", "--time-scale", "0.2", "--line-delay-ms", "1", "--login-fail-delay-s", "0.2"]


class Site:
    def __init__(self, tmp: Path, *flags: str) -> None:
        from consolebot.cli.demo import start_simulator, write_inventory

        self.tmp = tmp
        self.proc, self.served = start_simulator(tmp, ["--site", *FAST, "--accepted-password-index", "2", *flags],
                                                 {"CONSOLEBOT_LAB_PASSWORDS": "\n".join((WRONG, RIGHT))})
        self.inv = write_inventory(tmp / "inv", self.served)
        self.env = cb_env(tmp, self.inv)
        for pw in (WRONG, RIGHT):
            subprocess.run(consolebot_cmd("passwords", "add", "lab-deleuze", "root"), input=pw + "\n", text=True,
                           env=self.env, check=True, capture_output=True, timeout=60)

    def acts(self, host: str) -> list[dict[str, Any]]:
        path = self.tmp / f"sim-act.{host}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def console_lines(self, host: str) -> list[str]:
        return typed_commands(self.acts(host))

    def ssh_lines(self, host: str) -> list[str]:
        return typed_commands(self.acts(host), "ssh")

    def control(self, host: str, request: str) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.served["hosts"][host]["bmc"]), timeout=10) as s:
            f = s.makefile("rwb")
            f.write(request.encode() + b"\n")
            f.flush()
            reply: dict[str, Any] = json.loads(f.readline())
            return reply

    def recover_argv(self, *args: str) -> list[str]:
        return consolebot_cmd("recover", "--json", "lab-deleuze", "--salvage-poll-s", "1", "--yes",
                              "--report", str(self.tmp / "report.md"), *args)

    def recover(self, *args: str, timeout_s: float = 300) -> tuple[int, dict[str, Any], str]:
        proc = subprocess.run(self.recover_argv(*args), capture_output=True, text=True, env=self.env,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        lines = proc.stdout.strip().splitlines()
        return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr

    def new_ssh_login(self, host: str) -> int:
        """What a new SSH login to ``host`` gets now (its inventory's exec, as consolebot runs it)."""
        argv = [sys.executable, "-m", "consolebot", "lab", "serve", "--stdio", "--host", host, "--shell",
                "--bmc-port", str(self.served["hosts"][host]["bmc"]), "true"]
        return subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL).returncode

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Any]:
    sites: list[Site] = []

    def make(*flags: str) -> Site:
        s = Site(tmp_path, *flags)
        sites.append(s)
        return s

    yield make
    for s in sites:
        s.close()


def steps(res: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["outcome"] for s in res["steps"]}


def test_outage_with_mire_refusing_ssh_uses_its_console(make_site: Any) -> None:
    # Mire's console is behind its service processor, as the real one is: the shipped sp-console.chat
    site = make_site("--scenario", "hung", "--sshd", "mire=refuses", "--sp-cli")
    mire_toml = site.inv / "lab-mire.toml"
    text = mire_toml.read_text()
    mire_toml.write_text(re.sub(r'(address = "telnet://127\.0\.0\.1:\d+"\n)', r'\1connect_script = "sp-console.chat"\n',
                                text, count=1))
    assert 'connect_script = "sp-console.chat"' in mire_toml.read_text()
    code, res, err = site.recover()
    assert code == 0, err
    assert res["outcome"] == "recovered" and all(v == "ok" for v in steps(res).values()), steps(res)
    mire, outpost = res["others"]["lab-mire"], res["others"]["lab-outpost"]
    # preparation: Mire refused SSH, so its console shell was held; Outpost's SSH shell was held
    assert mire["via"] == "console (held since preparation)" and outpost["via"] == "ssh (held since preparation)"
    assert any("refused" in e and "Permission denied" in e for e in mire["evidence"]), mire["evidence"]
    assert [a["outcome"] for a in site.acts("mire") if a["act"] == "ssh-login"] == ["refused"]
    assert [a["text"] for a in site.acts("mire") if a["act"] == "sp"][:2] == ["start /SP/console", "y"]
    # Mire: its web server and domtool slave restarted on the console, the web check passes
    lines = site.console_lines("mire")
    assert "/etc/init.d/apache2 restart" in lines and "/etc/init.d/domtool-slave restart" in lines
    assert lines.index("/etc/init.d/apache2 restart") < lines.index("wget -q -O /dev/null http://localhost/")
    assert mire["checks"] == {"web": "pass"} and mire["restarted"] == ["apache2", "domtool-slave"]
    # Outpost: the slave's restart left DNS stale; bind9's restart fixed it, the check ran again
    o = site.ssh_lines("outpost")
    assert o.count("domtool-dnscheck") == 2
    assert o.index("/etc/init.d/domtool-slave restart") < o.index("domtool-dnscheck") < \
        o.index("/etc/init.d/bind9 restart")
    assert outpost["checks"] == {"dns": "pass"} and "bind9" in outpost["restarted"]
    assert any("check dns failed" in e for e in outpost["evidence"])
    # both held shells were closed: Mire's console is back at its login prompt
    assert lines[-1] == "exit" and site.console_lines("outpost") == []
    report = (site.tmp / "report.md").read_text()
    assert "## Other hosts" in report and "| lab-mire | ok | console (held since preparation) | web: pass |" in report
    assert "| lab-outpost | ok | ssh (held since preparation) | dns: pass |" in report
    assert "domtool-dnscheck -> exit 1" in report and "domtool-dnscheck -> exit 0" in report
    for secret in (WRONG, RIGHT):
        assert_no_secret(secret, err, report, folder=site.tmp / "state")
        assert_no_secret(secret, folder=site.tmp / "inv")


def test_mire_ssh_refusing_after_recover_began_the_held_shell_does_the_work(make_site: Any) -> None:
    site = make_site("--scenario", "hung")
    proc = subprocess.Popen(site.recover_argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=site.env, stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # progress goes to stderr with --json
        seen.append(line)
        if line.startswith("[assess]"):
            assert site.control("mire", "sshd refuses")["sshd"] == "refuses"
            break
    else:
        raise AssertionError("no [assess] step: " + "".join(seen[-5:]))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    mire = res["others"]["lab-mire"]
    assert mire["via"] == "ssh (held since preparation)" and mire["outcome"] == "ok", mire
    assert mire["checks"] == {"web": "pass"}
    # the refusal came before any of the others step's commands reached Mire over the held shell
    acts = site.acts("mire")
    refused_at = next(i for i, a in enumerate(acts) if a["act"] == "sshd" and a["mode"] == "refuses")
    restart_at = next(i for i, a in enumerate(acts) if a["act"] == "ssh" and "apache2 restart" in str(a["text"]))
    assert refused_at < restart_at
    assert [a["outcome"] for a in acts if a["act"] == "ssh-login"] == ["accepted"]  # only the held one
    assert site.new_ssh_login("mire") == 255  # and a new login now fails
    assert site.console_lines("mire") == []  # Mire's console was never needed


def test_only_others_leaves_the_main_console_alone(make_site: Any) -> None:
    site = make_site("--scenario", "clean")
    code, res, err = site.recover("--only", "others")
    assert code == 0, err
    st = steps(res)
    assert st["others"] == "ok" and st["report"] == "ok"
    assert all(v == "skipped" for k, v in st.items() if k not in ("others", "report")), st
    assert not [a for a in site.acts("deleuze") if a["act"] in ("line", "break", "sysrq", "password")]
    for name in ("lab-mire", "lab-outpost"):
        assert res["others"][name]["outcome"] == "ok" and res["others"][name]["via"] == "ssh"
    assert "restarted, running" in " ".join(res["others"]["lab-outpost"]["evidence"])
    # 'consolebot run' takes the same [ssh] exec path
    run = subprocess.run(consolebot_cmd("run", "lab-mire", "--json", "--", "hostname"), capture_output=True,
                         text=True, env=site.env, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["path"] == "ssh" and out["output"].strip() == "mire-sim"


def test_only_others_without_others_is_a_usage_error(tmp_path: Path) -> None:
    from consolebot.cli.demo import write_inventory

    inv = write_inventory(tmp_path / "inv", {"hosts": {"deleuze": {"telnet": 9, "bmc": 9}}})
    proc = subprocess.run(consolebot_cmd("recover", "lab-deleuze", "--only", "others", "--yes"), capture_output=True,
                          text=True, env=cb_env(tmp_path, inv), timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "names no 'others' hosts" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_prepare_holds_nothing_before_the_main_host(make_site: Any) -> None:
    site = make_site("--scenario", "clean")
    code, res, err = site.recover("--no-prepare")
    assert code == 0, err
    assert steps(res)["prepare"] == "skipped"
    prepare = next(s for s in res["steps"] if s["name"] == "prepare")
    assert prepare["detail"] == "--no-prepare" and prepare["evidence"] == []
    assert res["others"]["lab-mire"]["via"] == "ssh"  # opened by the others step itself


def test_dry_run_plans_the_others(make_site: Any) -> None:
    site = make_site("--scenario", "clean")
    code, res, err = site.recover("--dry-run")
    assert code == 0, err
    plan = "\n".join(res["plan"])
    assert "lab-mire: shell over SSH, else its console; restart apache2, domtool-slave; checks web" in plan
    assert "lab-outpost: shell over SSH, else its console; restart domtool-slave; checks dns; when dns fails" in plan
    code, res, err = site.recover("--dry-run", "--only", "others")
    assert code == 0, err
    assert [s["name"] for s in res["steps"] if s["outcome"] == "planned"] == ["others"]
    assert any(p.startswith("lab-outpost: shell over SSH") for p in res["plan"])
    for host in ("deleuze", "mire", "outpost"):  # a dry run sends nothing anywhere
        assert not [a for a in site.acts(host) if a["act"] in ("ssh-login", "ssh", "line", "break")], host


def test_a_restart_that_cannot_be_done_reboots_the_host(make_site: Any) -> None:
    site = make_site("--scenario", "clean", "--stuck-service", "domtool-slave")
    t0 = time.monotonic()
    code, res, err = site.recover("--only", "others")
    assert code == 0, err
    for name, host in (("lab-mire", "mire"), ("lab-outpost", "outpost")):
        o = res["others"][name]
        assert o["rebooted"] is True and o["outcome"] == "ok", o
        assert any("restart failed: domtool-slave" in e for e in o["evidence"])
        boots = [a for a in site.acts(host) if a["act"] == "boot"]
        assert boots, f"{host} did not boot again"
        assert "reboot" in site.console_lines(host)
    print(f"two reboots through the consoles: {time.monotonic() - t0:.1f} s")
