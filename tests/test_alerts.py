"""capture raises alerts as events happen: one stderr line each, and a command hook with the event."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import cb_env, consolebot_cmd


def serve_once(lines: list[bytes]) -> tuple[int, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def run() -> None:
        conn, _ = srv.accept()
        for line in lines:
            conn.sendall(line)
        time.sleep(3)  # keep the console open while the capture runs (the peer's own pacing)
        conn.close()
        srv.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return port, th


def test_capture_alerts_on_stderr_and_through_the_hook(tmp_path: Path) -> None:
    port, th = serve_once([b"[    1.0] Linux version 6.1.0 (x)\r\n",
                           b"[    5.1] INFO: task nscd:1893 blocked for more than 120 seconds.\r\n",
                           b"[    9.9] Kernel panic - not syncing: Attempted to kill init!\r\n"])
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "box.toml").write_text(f'[console]\ntransport = "socket"\naddress = "socket://127.0.0.1:{port}"\n')
    hook_out = tmp_path / "hook.txt"
    hook = f"sh -c 'echo \"$CONSOLEBOT_HOST $CONSOLEBOT_SEVERITY $CONSOLEBOT_KIND $CONSOLEBOT_LINE\" >> {hook_out}'"
    proc = subprocess.run(consolebot_cmd("capture", "box", "--for", "2", "--dir", str(tmp_path / "c"),
                                         "--alert-command", hook), capture_output=True, text=True,
                          env=cb_env(tmp_path, inv), timeout=60)
    th.join(10)
    assert proc.returncode == 0, proc.stderr
    alerts = [x for x in proc.stderr.splitlines() if "alert:" in x]
    assert len(alerts) == 2  # warning and critical; the info banner is no alert
    assert "kernel.hung_task line 2" in alerts[0] and "critical kernel.panic line 3" in alerts[1]
    # the hooks run concurrently (up to max_running): they start in order, but which one appends first is the OS's
    assert sorted(hook_out.read_text().splitlines()) == ["box critical kernel.panic 3", "box warning kernel.hung_task 2"]
