from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from consolebot.secrets.redact import Redactor
from consolebot.session.transcript import Transcript
from tests.conftest import consolebot_cmd

FIX = Path(__file__).parent / "fixtures" / "transcripts"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(consolebot_cmd("watch", *args), input=stdin.decode("latin-1") if stdin else None,
                          capture_output=True, text=True, timeout=60)


def objects(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_json_events_then_summary_ok_means_read_not_healthy() -> None:
    proc = run(str(FIX / "panic_during_boot.log"), "--json")
    assert proc.returncode == 0, proc.stderr
    objs = objects(proc)
    summary = objs[-1]
    assert summary["ok"] is True and summary["worst_severity"] == "critical"
    kinds = [o["event"]["kind"] for o in objs[:-1]]  # type: ignore[index]
    assert "kernel.panic" in kinds
    boots = summary["boots"]
    assert boots[0]["phase"] == "panicked" and boots[0]["healthy"] is False  # type: ignore[index]


def test_stdin_and_human_timeline() -> None:
    proc = run("-", stdin=(FIX / "hung_then_sysrq.log").read_bytes())
    assert proc.returncode == 0
    assert "sysrq.ack" in proc.stdout and "boot 2:" in proc.stdout and "login-ready" in proc.stdout


def test_reads_its_own_text_log_and_reuses_timestamps(tmp_path: Path) -> None:
    tr = Transcript(tmp_path, "c", Redactor())
    raw = (FIX / "crash_boot_salvage_wait.log").read_bytes()
    tr.rx(raw[:3000], now=1_700_000_000.0)
    tr.rx(raw[3000:], now=1_700_000_100.0)
    tr.note("a note that is not console output")
    tr.close()
    from_log = objects(run(str(tmp_path / "c.log"), "--json"))
    from_raw = objects(run(str(tmp_path / "c.raw"), "--json"))
    assert from_log[-1]["format"] == "text-log" and from_raw[-1]["format"] == "raw"
    strip = [{k: v for k, v in o["event"].items() if k != "time"} for o in from_log[:-1]]  # type: ignore[union-attr]
    assert strip == [{k: v for k, v in o["event"].items() if k != "time"} for o in from_raw[:-1]]  # type: ignore[union-attr]
    times = {o["event"]["time"][:16] for o in from_log[:-1]}  # type: ignore[index]
    assert times <= {"2023-11-14T22:13", "2023-11-14T22:15"} and len(times) == 2


@pytest.mark.parametrize("target", ["/nonexistent/file.log", "/tmp"])
def test_missing_file_or_folder_exits_2(target: str) -> None:
    proc = run(target)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_site_rules_add_kinds_change_severity_and_mark_benign(tmp_path: Path) -> None:
    rules = tmp_path / "site.toml"
    rules.write_text(
        '[[rule]]\nkind = "site.domtool_unreadable"\nliteral = "Unable to read"\nseverity = "critical"\n\n'
        '[[benign]]\nliteral = "Action \'start\' failed"\nreason = "known apache noise"\n\n'
        '[severity]\n"afs.busy_volume" = "info"\n'
    )
    objs = objects(run(str(FIX / "crash_boot_salvage_nowait.log"), "--json", "--rules", str(rules)))
    events = [o["event"] for o in objs[:-1]]
    assert any(e["kind"] == "site.domtool_unreadable" and e["severity"] == "critical" for e in events)  # type: ignore[index]
    assert all(e["severity"] == "info" for e in events if e["kind"] == "afs.busy_volume")  # type: ignore[index]
    line71 = [e["kind"] for e in events if e["line"] == 71]  # type: ignore[index]
    assert line71 == ["benign"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nkind = "x"\n')
    proc = run(str(FIX / "clean_boot.log"), "--rules", str(bad))
    assert proc.returncode == 2 and "literal" in proc.stderr


def test_follow_reads_a_growing_file(tmp_path: Path) -> None:
    f = tmp_path / "grow.raw"
    f.write_bytes(b"booting\r\n")
    proc = subprocess.Popen(consolebot_cmd("watch", str(f), "--follow", "--json"), stdout=subprocess.PIPE, text=True)
    try:
        with open(f, "ab") as out:
            out.write(b"[ 1.0] Kernel panic - not syncing: Attempted to kill init!\r\n")
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the follower saw the appended line
        assert json.loads(line)["event"]["kind"] == "kernel.panic"
    finally:
        proc.terminate()
        proc.wait(10)

