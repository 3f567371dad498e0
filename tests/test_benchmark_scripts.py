"""The benchmark scripts run and print their figures (small sizes here; CI runs the full size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_watch_prints_every_figure() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench-watch"), "--mb", "0.5", "--pexpect-mb", "0.1",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("watch_mb_s", "classifier_mb_s", "ceiling_mb_s", "pexpect_mb_s", "watch_vs_ceiling"):
        assert r[key] > 0, key
    assert r["mb"] >= 0.5 and r["events"] == r["classifier_events"] > 0


def test_one_console_dropped_the_others_lose_nothing_and_it_reconnects() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench-capture"), "--consoles", "8", "--seconds", "4",
                           "--kill-one-at-s", "1.5", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["capture_exit"] == 0, r.get("capture_error")
    assert r["bytes_lost"] == 0  # byte for byte, every console but the dropped one
    assert r["dropped_console_gap_marked"] and r["dropped_console_reconnected"]
    assert r["events"] > 0


def test_bench_capture_stages_prints_every_stage() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench-capture-stages"), "--consoles", "5",
                           "--rounds", "20", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    stages = ("us_transcript", "us_classify", "us_timeline", "us_jsonl", "us_flush")
    assert all(r[k] > 0 for k in stages), r
    assert r["events_per_read"] > 0 and r["lines_per_read"] > 1 and r["bytes_per_read"] > 500
    # the stages are parts of the whole: together about what one read costs (timers add a little)
    assert sum(r[k] for k in stages) < 3 * r["us_per_read"] + 50
    assert r["cores_at_target"] > 0
