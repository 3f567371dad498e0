"""Deleuze's OpenAFS fileserver: bosserver, the salvager after a crash, ``bos status`` and the SalvageLog.

Formats: OpenAFS src/bozo/bos.c (status lines), src/comerr/error_msg.c (rx errors), src/vol/vol-salvage.c
(1.4 SalvageLog), src/afs/*.c (client kernel messages); see ``tests/fixtures/transcripts/SOURCES.md``
section 5. A salvage takes ``--salvage-seconds`` of wall time (about 20 minutes on the real Deleuze).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

CELL = "example.org"
FILESERVER_IP = "192.0.2.10"
# (volume id, name, files, blocks), salvaged in this order
VOLUMES = (
    (536870912, "root.afs", 9, 14),
    (536870915, "root.cell", 112, 640),
    (536870930, "user.alice", 48211, 3911206),
    (536870936, "web.www", 20933, 1266310),
)
SALVAGER = "/usr/lib/openafs/salvager"
NOT_RESPONDING = "bos: failed to contact host's bosserver (server or network not responding)."


@dataclass
class Fileserver:
    """State of bosserver and the fs instance."""

    bosserver: bool = False
    state: str = "down"  # down, salvaging, running, shutdown
    salvage_s: float = 120.0
    salvage_started: float = 0.0
    salvage_wall: float = field(default_factory=time.time)
    proc_starts: int = 0
    needs_salvage: bool = False  # SALVAGE.fs left behind (a crash, or a salvage interrupted)

    def start(self, crashed: bool, salvage_s: float) -> None:
        """bosserver starts ``fs``; after a crash (SALVAGE.fs left behind) the salvager runs first."""
        self.bosserver = True
        self.needs_salvage = False
        self.proc_starts += 1
        self.salvage_s = salvage_s
        if crashed and salvage_s > 0:
            self.state = "salvaging"
            self.salvage_started = time.monotonic()
            self.salvage_wall = time.time()
        else:
            self.state = "running"

    def salvage_done(self) -> None:
        if self.state == "salvaging":
            self.state = "running"

    def stop(self) -> None:
        self.needs_salvage = self.needs_salvage or self.state == "salvaging"
        self.bosserver = False
        self.state = "shutdown"

    def crash(self) -> None:
        self.needs_salvage = self.needs_salvage or self.state in ("salvaging", "running")
        self.bosserver = False
        self.state = "down"

    def available(self) -> bool:
        return self.bosserver and self.state == "running"

    def progress(self) -> float:
        if self.state != "salvaging" or self.salvage_s <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.salvage_started) / self.salvage_s)

    # -- bos status --------------------------------------------------------------------
    def bos_status(self, long: bool = False) -> tuple[str, int]:
        """Return (output, exit status) of ``bos status HOST -localauth [-long]`` on this server."""
        if not self.bosserver:
            return NOT_RESPONDING + "\n", 1
        if self.state == "salvaging":
            aux = "salvaging file system"
        elif self.state == "running":
            aux = "file server running"
        else:
            aux = "file server shut down"
        if self.state == "shutdown":
            head = "Instance fs, temporarily disabled, currently shutdown."
        else:
            head = "Instance fs, (type is fs) currently running normally." if long else \
                "Instance fs, currently running normally."
        out = f"{head}\n    Auxiliary status is: {aux}.\n"
        if long:
            started = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(self.salvage_wall))
            out += (f"    Process last started at {started} ({self.proc_starts + 1} proc starts)\n"
                    "    Command 1 is '/usr/lib/openafs/fileserver -p 123 -busyat 600 -rxpck 400 -s 1200 -l 1200 "
                    "-cb 100000 -b 240 -vc 1200'\n"
                    "    Command 2 is '/usr/lib/openafs/volserver'\n"
                    f"    Command 3 is '{SALVAGER}'\n")
        return out, 0

    # -- SalvageLog (OpenAFS 1.4: "%m/%d/%Y %H:%M:%S " timestamps) --------------------------
    def _stamp(self, fraction: float) -> str:
        t = self.salvage_wall + fraction * max(self.salvage_s, 1.0) * 10.0  # the log's own (real) pace
        return time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(t))

    def salvage_log(self, partition_log: bool) -> list[str]:
        """Lines of ``SalvageLog`` (False) or ``SalvageLog.0`` (True) at this moment."""
        if self.proc_starts == 0 or (self.state != "salvaging" and self.salvage_s <= 0):
            return []
        done = self.progress()
        head = ["@(#) OpenAFS 1.4.12.1 built  2010-11-23 ",
                f"{self._stamp(0)} STARTING AFS SALVAGER 2.4 ({SALVAGER})",
                f"{self._stamp(0)} Starting salvage of file system partition /vicepa"]
        part = [f"{self._stamp(0)} SALVAGING FILE SYSTEM PARTITION /vicepa (device=/vicepa)"]
        n = len(VOLUMES)
        for i, (vid, name, files, blocks) in enumerate(VOLUMES):
            f = (i + 1) / (n + 1)
            if done < f:
                break
            part += [f"{self._stamp(f)} SALVAGING VOLUME {vid}.",
                     f"{self._stamp(f)} {name} ({vid}) updated {self._stamp(f * 0.5)[:-3]}",
                     f"{self._stamp(f)} Salvaged {name} ({vid}): {files} files, {blocks} blocks"]
        if done >= 1.0:
            part.append(f"{self._stamp(1.0)} SALVAGING OF PARTITION /vicepa COMPLETED")
            # 1.4 parallel salvage: the partition log is appended to SalvageLog at the end
            return part if partition_log else head + part
        return part if partition_log else head


def lost_contact(code: bool) -> str:
    return f"afs: Lost contact with file server {FILESERVER_IP} in cell {CELL}" + (" (code -1)" if code else "")


def back_up(code: bool) -> str:
    return f"afs: file server {FILESERVER_IP} in cell {CELL} is back up" + (" (code 0)" if code else "")


def busy_volume(vid: int, name: str) -> str:
    return f"afs: Waiting for busy volume {vid} ({name}) in cell {CELL}"
