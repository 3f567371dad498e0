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
