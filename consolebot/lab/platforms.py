"""What differs between the Debian releases the simulator boots: kernel, SysRq wording, init-script style.

Each platform is the one of a transcript in ``tests/fixtures/transcripts`` (see ``SOURCES.md`` there):
squeeze (crash_boot_salvage_*), stretch (hung_then_sysrq), bullseye (panic_during_boot) and
bookworm (clean_boot, sysrq_disabled). Boot text lives in ``consolebot/data/boots/*.boot`` templates.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from functools import cache

# lsb-base "fancy" left info blocks (wheezy..bullseye, TERM=linux), bytes as tput draws them
_FANCY_PRE = "\x1b[?25l\x1b[?1c\x1b7\x1b[1G["
_FANCY_POST = "\x1b[39;49m\x1b8\x1b[?25h\x1b[?0c"
FANCY_OK = f"{_FANCY_PRE}\x1b[32m ok {_FANCY_POST}"
FANCY_FAIL = f"{_FANCY_PRE}\x1b[31mFAIL{_FANCY_POST} \x1b[31mfailed!\x1b[39;49m"
FANCY_WARN = f"{_FANCY_PRE}\x1b[33mwarn{_FANCY_POST} \x1b[33m(warning).\x1b[39;49m"


@dataclass(frozen=True)
class Lsb:
    """How /lib/lsb/init-functions writes log_daemon_msg / log_end_msg on this terminal."""

    kind: str  # "plain", "fancy", "systemd"
    fail: str  # text after the message on failure (leading space included)
    warn: str
    fancy: bool = False

    def begin(self, text: str) -> str:
        return f"[....] {text}" if self.fancy else text

    def end(self, ok: bool) -> str:
        if self.fancy:
            return (FANCY_OK + ".") if ok else FANCY_FAIL
        return "." if ok else self.fail

    def end_warn(self) -> str:
        return FANCY_WARN if self.fancy else self.warn

    def info(self, text: str) -> str:
        return f"[\x1b[36minfo\x1b[39;49m] {text}." if self.fancy else f"{text}."


LSB_PLAIN = Lsb("plain", " failed!", " (warning).")
LSB_SQUEEZE_LINUX = Lsb("plain", " \x1b[31mfailed!\x1b[39;49m", " \x1b[33m(warning).\x1b[39;49m")  # TERM=linux
LSB_BOOKWORM = Lsb("plain", " \x1b[31mfailed!\x1b[0m", " \x1b[33m(warning).\x1b[0m")  # colours on any tty
LSB_FANCY = Lsb("fancy", "", "", fancy=True)


@dataclass(frozen=True)
class Platform:
    name: str
    release: str  # /etc/issue: "Debian GNU/Linux <release> \n \l"
    kernel: str
    uname_v: str
    boot_file: str
    sysrq_prefix: str  # before the action: "SysRq : ", "sysrq: SysRq : ", "sysrq: "
    boot_lsb: Lsb  # at boot (TERM=linux)
    shell_lsb: Lsb  # in a root shell on the serial line (TERM=vt102)
    shell_lsb_linux: Lsb  # in a root shell after 'export TERM=linux'
    afs_twice: bool  # OpenAFS 1.4 on Linux prints client warnings twice
    afs_code: bool  # OpenAFS >= 1.6 adds " (code %d)"
    pg: str
    mysql: tuple[str, str, str]  # description, name, progress dots at start
    apache_desc: str
    apache_configtest: bool  # Debian >= 8 runs a configtest and prints its output after the failure
    courier_verbose: bool  # False: init-d-script with VERBOSE=no (start has no end, stop prints nothing)
    nmi_power_saving_line: bool  # "Do you have a strange power saving mode enabled?" (< 5.15)
    procps_pid_width: int
    init_version: str
    last_login: str
    afs_kmsgs: tuple[tuple[str, str], ...]  # (timestamp, text) printed while the openafs module loads
    lost_contact_ts: tuple[str, ...]
    hung_file: str = ""
    systemd: bool = False


_AFS_TAINT = "openafs: module license 'http://www.openafs.org/dl/license10.html' taints kernel."
_LOCKDEP = "Disabling lock debugging due to kernel taint"

PLATFORMS: dict[str, Platform] = {
    "squeeze": Platform(
        name="squeeze", release="6.0", kernel="2.6.32-5-amd64", uname_v="#1 SMP Tue May 13 16:34:35 UTC 2014",
        boot_file="squeeze.boot", sysrq_prefix="SysRq : ",
        boot_lsb=LSB_SQUEEZE_LINUX, shell_lsb=LSB_PLAIN, shell_lsb_linux=LSB_SQUEEZE_LINUX,
        afs_twice=True, afs_code=False, pg="8.4", mysql=("MySQL database server", "mysqld", ""),
        apache_desc="web server", apache_configtest=False, courier_verbose=True, nmi_power_saving_line=True,
        procps_pid_width=5, init_version="2.88", last_login="Mon May 12 17:41:09 EDT 2014",
        afs_kmsgs=(("14.902251", _AFS_TAINT), ("14.902259", _LOCKDEP)), lost_contact_ts=("19.337120", "19.337133"),
    ),
    "stretch": Platform(
        name="stretch", release="9", kernel="4.9.0-8-amd64", uname_v="#1 SMP Debian 4.9.144-3.1 (2019-02-19)",
        boot_file="stretch.boot", sysrq_prefix="sysrq: SysRq : ",
        boot_lsb=LSB_FANCY, shell_lsb=LSB_PLAIN, shell_lsb_linux=LSB_FANCY,
        afs_twice=False, afs_code=True, pg="9.6", mysql=("MariaDB database server", "mysqld", " . ."),
        apache_desc="Apache httpd web server", apache_configtest=True, courier_verbose=True,
        nmi_power_saving_line=True, procps_pid_width=5, init_version="2.88",
        last_login="Tue May 14 08:31:02 EDT 2019",
        afs_kmsgs=(("13.071559", "openafs: loading out-of-tree module taints kernel."), ("13.071600", _AFS_TAINT),
                   ("13.071602", _LOCKDEP)),
        lost_contact_ts=("18.524066",), hung_file="stretch.hung",
    ),
    "bullseye": Platform(
        name="bullseye", release="11", kernel="5.10.0-28-amd64", uname_v="#1 SMP Debian 5.10.209-2 (2024-01-31)",
        boot_file="bullseye.boot", sysrq_prefix="sysrq: ",
        boot_lsb=LSB_FANCY, shell_lsb=LSB_PLAIN, shell_lsb_linux=LSB_FANCY,
        afs_twice=False, afs_code=True, pg="13", mysql=("MariaDB database server", "mariadbd", " . ."),
        apache_desc="Apache httpd web server", apache_configtest=True, courier_verbose=False,
        nmi_power_saving_line=True, procps_pid_width=7, init_version="2.96",
        last_login="Tue May 14 08:31:02 EDT 2024",
        afs_kmsgs=(("12.811040", "openafs: loading out-of-tree module taints kernel."), ("12.811077", _AFS_TAINT),
                   ("12.811080", _LOCKDEP)),
        lost_contact_ts=("18.105512",),
    ),
    "bookworm": Platform(
        name="bookworm", release="12", kernel="6.1.0-18-amd64", uname_v="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
        boot_file="bookworm.boot", sysrq_prefix="sysrq: ",
        boot_lsb=LSB_BOOKWORM, shell_lsb=LSB_BOOKWORM, shell_lsb_linux=LSB_BOOKWORM,
        afs_twice=False, afs_code=True, pg="15", mysql=("MariaDB database server", "mariadbd", " . ."),
        apache_desc="Apache httpd web server", apache_configtest=True, courier_verbose=False,
        nmi_power_saving_line=False, procps_pid_width=7, init_version="3.06",
        last_login="Tue May 14 08:31:02 EDT 2024",
        afs_kmsgs=(("11.204883", "openafs: loading out-of-tree module taints kernel."), ("11.204901", _AFS_TAINT),
                   ("11.204905", _LOCKDEP),
                   ("11.205277", "openafs: module verification failed: signature and/or required key missing - "
                                 "tainting kernel")),
        lost_contact_ts=("18.301274",), hung_file="bookworm.hung",
    ),
    "bookworm-systemd": Platform(
        name="bookworm-systemd", release="12", kernel="6.1.0-18-amd64",
        uname_v="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
        boot_file="bookworm-systemd.boot", sysrq_prefix="sysrq: ",
        boot_lsb=LSB_BOOKWORM, shell_lsb=LSB_BOOKWORM, shell_lsb_linux=LSB_BOOKWORM,
        afs_twice=False, afs_code=True, pg="15", mysql=("MariaDB database server", "mariadbd", " . ."),
        apache_desc="Apache httpd web server", apache_configtest=True, courier_verbose=False,
        nmi_power_saving_line=False, procps_pid_width=7, init_version="",
        last_login="Tue May 14 08:31:02 EDT 2024", afs_kmsgs=(), lost_contact_ts=("9.804412",),
        hung_file="bookworm.hung", systemd=True,
    ),
}

_KERNEL_LINE = re.compile(rb"^\r?\[\s*\d+\.\d+\] ")


@cache
def load_data(name: str) -> bytes:
    """Given a file name in ``consolebot.data.boots``, return its bytes."""
    return importlib.resources.files("consolebot.data.boots").joinpath(name).read_bytes()


def template_lines(name: str, conditions: frozenset[str]) -> list[bytes]:
    """Given a boot template and the conditions that hold, return its lines (directives kept as ``@@name``).

    A line ``@@cond:rest`` is kept (as ``rest``) only when ``cond`` holds; ``@@not-cond`` never
    appears: each template names the conditions it uses (crash, verbose, panic, nopanic).
    ``@@# ...`` lines are comments. Lines end in LF only after their CR, so ``\\rINIT: ...`` stays whole.
    """
    out: list[bytes] = []
    for raw in load_data(name).split(b"\n"):
        if not raw:
            continue
        line = raw + b"\n"
        keep = True
        while line.startswith(b"@@") and b":" in line[:24] and not line.startswith(b"@@#"):
            cond, _, rest = line[2:].partition(b":")
            if cond.decode() not in conditions:
                keep = False
                break
            line = rest
        if not keep or line.startswith(b"@@#"):
            continue
        out.append(line)
    return out


def is_kernel_line(line: bytes) -> bool:
    return bool(_KERNEL_LINE.match(line))


def kernel_ts(line: bytes) -> float | None:
    m = re.match(rb"^\r?\[\s*(\d+\.\d+)\] ", line)
    return float(m.group(1)) if m else None
