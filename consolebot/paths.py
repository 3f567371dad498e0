"""Where consolebot keeps state and transcripts (XDG defaults), and the network-filesystem guard.

A transcript folder on AFS or another network filesystem hangs exactly when the
fileserver is down, which is when consolebot runs; such folders are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from consolebot.errors import ConfigError

NETWORK_FS = {
    "afs", "openafs", "nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "ceph", "fuse.ceph",
    "glusterfs", "fuse.glusterfs", "lustre", "9p", "davfs", "fuse.davfs2", "gpfs", "ocfs2", "gfs2", "fuse.s3fs",
}


def state_dir() -> Path:
    """``$CONSOLEBOT_STATE_DIR``, else ``$XDG_STATE_HOME/consolebot``, else ``~/.local/state/consolebot``."""
    env = os.environ.get("CONSOLEBOT_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "consolebot"


def transcript_dir() -> Path:
    """``$CONSOLEBOT_TRANSCRIPT_DIR``, else ``STATE_DIR/transcripts``."""
    env = os.environ.get("CONSOLEBOT_TRANSCRIPT_DIR")
    return Path(env) if env else state_dir() / "transcripts"


def _mounts() -> list[tuple[str, str]]:
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            rows = [line.split() for line in f]
    except OSError:
        return []
    return [(r[1].replace("\\040", " "), r[2]) for r in rows if len(r) >= 3]


def filesystem_type(path: Path) -> str:
    """Given a path, return the type of the filesystem holding it ('' if unknown)."""
    target = str(path.resolve())
    best, fstype = "", ""
    for mount, kind in _mounts():
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
            best, fstype = mount, kind
    return fstype


def ensure_local_dir(path: Path, what: str = "transcript folder") -> Path:
    """Given a folder, create it and return it; raise ``ConfigError`` if it is on a network filesystem."""
    resolved = path.expanduser()
    probe = resolved
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if str(resolved.resolve()).startswith("/afs/") or str(resolved.resolve()) == "/afs":
        raise ConfigError(
            f"{what} {resolved} is under /afs: it would hang while the fileserver is down; choose a local folder"
        )
    kind = filesystem_type(probe)
    if kind in NETWORK_FS:
        raise ConfigError(
            f"{what} {resolved} is on a network filesystem ({kind}): it would hang while the server is down; "
            "choose a local folder"
        )
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {resolved}: cannot create it ({exc.strerror})") from None
    return resolved
