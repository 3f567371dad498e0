"""The README's first command: ``consolebot demo`` recovers the simulated site end to end."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import cb_env, consolebot_cmd


def test_demo_recovers_deleuze_then_the_others(tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = subprocess.run(consolebot_cmd("demo", "--json", "--dir", str(tmp_path / "t"),
                                         "--report", str(tmp_path / "report.md")),
                          capture_output=True, text=True, env=cb_env(tmp_path), timeout=600, stdin=subprocess.DEVNULL)
    wall_s = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["outcome"] == "recovered" and res["logged_out"] is True
    steps = {s["name"]: s["outcome"] for s in res["steps"]}
    assert all(v == "ok" for v in steps.values()), steps
    assert {n: o["outcome"] for n, o in res["others"].items()} == {"lab-mire": "ok", "lab-outpost": "ok"}
    assert res["others"]["lab-outpost"]["checks"] == {"dns": "pass"}
    assert res["others"]["lab-mire"]["checks"] == {"web": "pass"}
    assert "## Other hosts" in (tmp_path / "report.md").read_text()
    assert sorted(p.name for p in (tmp_path / "t").glob("*.raw")) == [
        "lab-deleuze.raw", "lab-mire.ssh.raw", "lab-outpost.ssh.raw"]
    print(f"consolebot demo: {wall_s:.1f} s wall")
