"""The shipped unit and wrappers: the unit passes systemd-analyze verify (or a documented check without it)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "scripts" / "consolebot-capture.service"


def test_unit_verifies(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert "ExecStart=/opt/consolebot/.venv/bin/consolebot capture --wait" in text
    # point ExecStart at this checkout's consolebot, as an installation would have it
    exe = Path(sys.executable).parent / "consolebot"
    unit = tmp_path / "consolebot-capture.service"
    unit.write_text(text.replace("/opt/consolebot/.venv/bin/consolebot", str(exe)))
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        problems = [x for x in proc.stderr.splitlines() if "consolebot-capture.service" in x]
        assert proc.returncode == 0 and not problems, proc.stderr
    else:  # the documented check where systemd is not installed (README "Unattended capture")
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]
        cp.read_string(unit.read_text())
        assert {"Unit", "Service", "Install"} <= set(cp.sections())
        assert cp["Service"]["Type"] == "simple" and cp["Install"]["WantedBy"] == "multi-user.target"
        assert Path(cp["Service"]["ExecStart"].split()[0]).exists()


def test_wrappers_are_thin_calls_of_the_cli() -> None:
    for name in ("recover-deleuze", "recover-others", "capture-site"):
        text = (ROOT / "scripts" / name).read_text()
        assert text.startswith("#!/bin/sh") and "exec consolebot " in text
        assert (ROOT / "scripts" / name).stat().st_mode & 0o111
