"""consolebot recover against the simulated Deleuze: every scenario and fault, asserted from the
simulator's own act log (what consolebot really did), with the outcome and the exit code."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import assert_no_secret, cb_env, consolebot_cmd, typed_commands

WRONG, RIGHT = "Wrong-cand-1x", "Right-cand-2y"
FAST = ["--salvage-seconds", "3", "--time-scale", "0.2", "--line-delay-ms", "1", "--login-fail-delay-s", "0.2"]


class Site:
    def __init__(self, tmp: Path, *flags: str, candidates: tuple[str, ...] = (WRONG, RIGHT), accepted: int = 2) -> None:
        from consolebot.cli.demo import start_simulator

        self.tmp = tmp
        self.proc, self.served = start_simulator(
            tmp, [*FAST, "--accepted-password-index", str(accepted), *flags],
            {"CONSOLEBOT_LAB_PASSWORDS": "\n".join((WRONG, RIGHT))})
        from consolebot.cli.demo import write_inventory

        inv = write_inventory(tmp / "inv", self.served)
        self.env = cb_env(tmp, inv)
        for pw in candidates:
            subprocess.run(consolebot_cmd("passwords", "add", "lab-deleuze", "root"), input=pw + "\n", text=True,
                           env=self.env, check=True, capture_output=True, timeout=60)

    def acts(self) -> list[dict[str, object]]:
        path = self.tmp / "sim-act.jsonl"
        if not path.exists():
            path = self.tmp / "sim-act.deleuze.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def lines(self) -> list[str]:
        """The commands typed at the shell, unwrapped from consolebot's markers."""
        return typed_commands(self.acts())

    def recover(self, *args: str, timeout_s: float = 300) -> tuple[int, dict[str, object], str]:
        proc = subprocess.run(consolebot_cmd("recover", "--json", "lab-deleuze", "--salvage-poll-s", "1", *args),
                              capture_output=True, text=True, env=self.env, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
        lines = proc.stdout.strip().splitlines()
        return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    sites: list[Site] = []

    def make(*flags: str, **kw: object) -> Site:
        s = Site(tmp_path, *flags, **kw)  # type: ignore[arg-type]
        sites.append(s)
        return s

    yield make
    for s in sites:
        s.close()


def outcomes(res: dict[str, object]) -> dict[str, str]:
    return {s["name"]: s["outcome"] for s in res["steps"]}  # type: ignore[index,union-attr]


def test_hung_salvage_old_init_recovers(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "hung", "--postgres-failed-starts", "2", "--courier-survives-stop", "once")
    code, res, err = site.recover("--yes")
    assert code == 0, err
    assert res["outcome"] == "recovered" and res["logged_out"] is True and res["lock_released"] is True
    assert all(v == "ok" for k, v in outcomes(res).items() if k not in ("prepare", "others")), outcomes(res)
    assert outcomes(res)["prepare"] == outcomes(res)["others"] == "skipped"  # Deleuze served alone: no others
    acts = site.acts()
    assert [a.get("key") for a in acts if a["act"] == "sysrq"] == ["s", "u", "b"]
    assert [a["accepted"] for a in acts if a["act"] == "password"] == [False, True]
    lines = site.lines()
    assert "sv stop courier-authdaemon" in lines and "killall authdaemond" in lines
    assert lines.count("/etc/init.d/postgresql restart") == 2  # Postgres needed two restarts, as set
    assert lines[-1] == "exit"
    assert_no_secret(RIGHT, err, folder=site.tmp / "state")
    assert_no_secret(WRONG, err, folder=site.tmp / "state")


def test_alive_without_clean_reboots_nothing(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "clean")
    code, res, err = site.recover("--yes")
    assert code == 0, err
    assert outcomes(res)["boot"] == "skipped" and outcomes(res)["salvage"] == "skipped"
    assert not [a for a in site.acts() if a["act"] in ("break", "sysrq")]


def test_alive_with_clean_stops_services_and_reboots(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "clean")
    code, res, err = site.recover("--yes", "--clean")
    assert code == 0, err
    lines = site.lines()
    assert "reboot" in lines and lines.index("/etc/init.d/nscd stop") < lines.index("reboot")
    assert [a["count"] for a in site.acts() if a["act"] == "boot"][-1] == 2


def test_salvage_wait_scenario(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "hung", "--reboots-into", "salvage-wait")
    code, res, err = site.recover("--yes")
    assert code == 0, err
    assert outcomes(res)["salvage"] in ("ok", "skipped")


@pytest.mark.parametrize("power", [False, True], ids=["no-power", "allow-power"])
def test_sysrq_off(make_site, power: bool) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "hung", "--sysrq-mask", "0")
    code, res, err = site.recover("--yes", *(["--allow-power"] if power else []))
    acts = site.acts()
    power_acts = [a for a in acts if a["act"] in ("power", "bmc") and a.get("cmd") not in ("status", "guid", "info")]
    if power:
        assert code == 0, err
        assert power_acts and any("reset" in json.dumps(a) for a in power_acts)
    else:
        assert code == 6 and res["outcome"] == "failed"
        assert not power_acts
        assert "power" in err


def test_panic_ends_with_a_report(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "panic")
    code, res, err = site.recover("--yes", "--allow-power", "--boot-timeout-s", "30")
    assert code == 6, err
    failed = [s for s in res["steps"] if s["outcome"] == "failed"]  # type: ignore[union-attr,index]
    assert failed and ("panic" in str(failed[0]["detail"]) or "not rebooted" in str(failed[0]["detail"]))


def test_all_passwords_wrong(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "clean", candidates=("nope-1-aaaa", "nope-2-bbbb"))
    code, res, err = site.recover("--yes")
    assert code == 6 and outcomes(res)["login"] == "failed"
    assert [a["accepted"] for a in site.acts() if a["act"] == "password"] == [False, False]


def test_stuck_service_fails_verification(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "salvage-old-init", "--stuck-service", "cron")
    code, res, err = site.recover("--yes")
    assert code == 7, err
    assert outcomes(res)["fileserver"] == "failed" and "cron" in err
    assert res["logged_out"] is True


def test_postgres_never_starts(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "salvage-old-init", "--postgres-failed-starts", "never")
    code, res, err = site.recover("--yes", "--postgres-max-restarts", "2")
    assert code == 7, err
    assert outcomes(res)["postgres"] == "failed"
    assert site.lines().count("/etc/init.d/postgresql restart") == 2


def test_dry_run_sends_nothing_and_prints_the_plan(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site("--scenario", "hung")
    code, res, err = site.recover("--dry-run")
    assert code == 0, err
    assert res["outcome"] == "planned" and any("SysRq" in p for p in res["plan"])  # type: ignore[union-attr]
    assert not [a for a in site.acts() if a["act"] in ("line", "break", "sysrq", "password")]


def test_sigterm_during_salvage_then_resume(make_site) -> None:  # type: ignore[no-untyped-def]
    # a salvage long enough to be interrupted after three polls, short enough for the resumed run to see it end
    site = make_site("--scenario", "salvage-old-init", "--salvage-seconds", "25")
    proc = subprocess.Popen(consolebot_cmd("recover", "--json", "lab-deleuze", "--yes", "--salvage-poll-s", "1"),
                            env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while site.lines().count("bos status deleuze-sim -localauth") < 3:  # the salvage step polls
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.2)  # the simulator's act log is another process's file
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    res = json.loads(out.strip().splitlines()[-1])
    assert res["outcome"] == "interrupted" and res["logged_out"] is True and res["lock_released"] is True
    assert outcomes(res)["salvage"] == "interrupted"
    assert site.lines()[-1] == "exit"
    code, res2, err2 = site.recover("--from", "salvage", "--salvage-deadline-s", "120", timeout_s=300)
    assert code == 0, err2
    assert outcomes(res2)["fileserver"] == "skipped" and outcomes(res2)["salvage"] == "ok"


def test_capture_yields_to_recover_and_resumes(make_site) -> None:  # type: ignore[no-untyped-def]
    from tests.test_capture import wait_for_text

    site = make_site("--scenario", "salvage-old-init")
    cap = site.tmp / "cap"
    capture = subprocess.Popen(consolebot_cmd("capture", "lab-deleuze", "--dir", str(cap)), env=site.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_text(cap / "lab-deleuze.log", "login: ")
        code, res, err = site.recover("--yes")
        assert code == 0, err
        wait_for_text(cap / "lab-deleuze.log", "gap ended: reconnected")
    finally:
        capture.send_signal(signal.SIGINT)
        capture.communicate(timeout=60)
    acts = [a for a in site.acts() if a["act"] in ("connect", "disconnect")]
    assert [a["act"] for a in acts[:5]] == ["connect", "disconnect", "connect", "disconnect", "connect"]
    sent = [json.loads(x) for x in (site.tmp / "sim-send.jsonl").read_text().splitlines()]

    def between(t0: float, t1: float) -> bytes:
        return b"".join(o["text"].encode("latin-1") for o in sent if t0 <= o["t"] <= t1)

    t0, t1, t4 = (float(acts[i]["t"]) for i in (0, 1, 4))  # type: ignore[arg-type]
    t5 = float(acts[5]["t"]) if len(acts) > 5 else time.time()  # type: ignore[arg-type]
    raw = (cap / "lab-deleuze.raw").read_bytes()
    assert raw == between(t0, t1) + between(t4, t5)  # nothing the simulator sent while capture held it is lost
    log = (cap / "lab-deleuze.log").read_text()
    assert log.index("gap: yielded") < log.index("gap ended: reconnected")
