"""The real lab: a Debian cloud kernel and busybox under QEMU, standing in for Deleuze.

* ``builder``: fetch the newest Debian cloud kernel and runit with apt into a cache, build the
  busybox initramfs (``rootfs/``: init, init scripts, ``bos``, ``domtool``, stand-in daemons).
* ``qemu``: run a guest under TCG with its serial console on a telnet port, reset and power it.
* ``console``: log in and run commands over a consolebot session, as a person would.

``python -m consolebot.lab.guest`` (``scripts/lab-build``) builds or refreshes the cache.
"""

from consolebot.lab.guest.builder import KernelInfo, LabBuilder, LabBuildError, LabKit, default_cache_dir
from consolebot.lab.guest.console import GuestConsole, clean_output
from consolebot.lab.guest.qemu import DiskState, GuestConfig, LabStartError, QemuGuest, read_disk_state

__all__ = [
    "DiskState",
    "GuestConfig",
    "GuestConsole",
    "KernelInfo",
    "LabBuildError",
    "LabBuilder",
    "LabKit",
    "LabStartError",
    "QemuGuest",
    "clean_output",
    "default_cache_dir",
    "read_disk_state",
]
