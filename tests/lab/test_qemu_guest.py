"""The real lab (issue 6): a Debian cloud kernel, busybox's getty and login, and Deleuze's services
under QEMU, reached over the guest's telnet serial console.

1. The transport contract of ``tests/test_transport_contract.py``, over the guest: the whole boot from
   ``Linux version`` to the login prompt, a login as a person's, BREAK + ``b`` and a new boot.
2. Each ``kernel.sysrq`` mode: 1 (s, u, b acknowledged), 438 (a key outside the mask refused), 0
   (nothing printed, the key reaches the tty); and ``quiet``.
3. Hung, then SysRq s, u, b, then a crash boot that salvages, shown by ``bos status`` until it ends;
   a power reset gives a crash boot too.
4. The recogniser's view: the exact lines of those boots, in order, read back through a session.
5. Deleuze's services over the console: init.d and runit's ``sv``, real process names, PostgreSQL
   failing its first starts after a crash, courier-authdaemon surviving its first stop, domtool, and
   busybox's ``login[N]: invalid password`` line per failed login.

Timings are printed (and summarised at the end of the run), never asserted beyond a loose smoke bound.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consolebot.errors import ConsoleClosed, PromptTimeout
from consolebot.lab.guest import DiskState, GuestConfig, GuestConsole, LabBuildError, LabKit, read_disk_state
from consolebot.lab.guest.builder import newest_kernel_package
from consolebot.lab.guest.console import INVALID_PASSWORD, clean_output
from consolebot.secrets.secret import Secret
from consolebot.session.session import Session
from consolebot.transport.base import Ability
from tests.conftest import LAB_PASSWORD, assert_no_secret
from tests.lab.conftest import GuestFactory, LabGuest, ReplayTransport, record_timing

pytestmark = pytest.mark.lab

HOST = "deleuze-lab"
BOOT_TIMEOUT_S = 90.0  # a boot takes about 5 s here; this only catches a guest that never boots
SMOKE_BOUND_S = 60.0  # loose: about 10x a boot on this machine
SALVAGE_S = 8.0  # Deleuze's fileserver script does not wait: bos status shows the salvage after login
SALVAGE_WAIT_S = 3.0  # with the runbook's waiting script the login prompt comes after the salvage
BOS = f"bos status {HOST} -localauth"
SALVAGING = "Instance fs, currently running normally.\n    Auxiliary status is: salvaging file system."
FS_RUNNING = "Instance fs, currently running normally.\n    Auxiliary status is: file server running."
AFS_LOST = rb"afs: Lost contact with file server 192\.0\.2\.10 in cell example\.org \(code -1\)\r\n"
AFS_BACK = rb"afs: file server 192\.0\.2\.10 in cell example\.org is back up \(code 0\)\r\n"
AFS_BUSY = rb"afs: Waiting for busy volume 536870930 \(user\.alice\) in cell example\.org\r\n"
POSTGRES_CHECK = "ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'"
PG_FAILED = (
    "Starting PostgreSQL 8.4 database server: mainThe PostgreSQL server failed to start. "
    "Please check the log output:"
)


def banner(kit: LabKit) -> re.Pattern[bytes]:
    """The kernel's first line: ``[    0.000000] Linux version <release> (...``."""
    return re.compile(rb"\[ +0\.000000\] " + re.escape(kit.kernel.banner.encode()) + rb" \(")


def to_login_prompt(con: GuestConsole, timeout_s: float = BOOT_TIMEOUT_S) -> None:
    """Poke until a prompt shows; log out of a shell left behind by an earlier test."""
    r = con.session.poke([con.login_prompt, con.shell_prompt], tries=max(1, int(timeout_s // 2)), interval_s=2.0)
    if r.index == 1:
        con.logout()


def kernel_line(pattern: bytes) -> re.Pattern[bytes]:
    """A kernel console line: ``[ seconds.micros] `` then ``pattern``."""
    return re.compile(rb"\[ *\d+\.\d{6}\] " + pattern)


KERNEL_LINE = re.compile(r"\[ *\d+\.\d{6}\] [^\n]*\n")


def without_kernel_lines(text: str) -> str:
    """Command output without the kernel lines the console mixed into it (anywhere, even mid-line)."""
    return KERNEL_LINE.sub("", text)


# -- guests shared by the tests of this module --------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_guest(module_guest_factory: GuestFactory) -> Iterator[LabGuest]:
    """A guest booted cleanly to its login prompt (kernel.sysrq = 1). No test resets it; the last one
    reboots it cleanly."""
    guest = module_guest_factory(GuestConfig(), "clean")
    with guest.console("boot") as con:
        con.wait_login_prompt(BOOT_TIMEOUT_S)
    yield guest


@pytest.fixture(scope="module")
def sysrq1_guest(module_guest_factory: GuestFactory) -> LabGuest:
    """kernel.sysrq = 1; the tests using it reset it with SysRq b."""
    return module_guest_factory(GuestConfig(sysrq=1), "sysrq1")


@pytest.fixture(scope="module")
def quiet_438_guest(module_guest_factory: GuestFactory) -> LabGuest:
    """Debian's default kernel.sysrq (438), booted with 'quiet'."""
    return module_guest_factory(GuestConfig(sysrq=None, quiet=True), "quiet438")


# == 1. the transport contract over the guest's telnet serial ========================================
def test_whole_boot_to_login_prompt_is_read(guest_factory: GuestFactory, lab_kit: LabKit) -> None:
    guest = guest_factory(GuestConfig(), "contract-boot")  # wait=on: the boot starts when we connect
    with guest.console("console") as con:
        s = con.session
        t0 = time.monotonic()
        s.expect([banner(lab_kit)], BOOT_TIMEOUT_S)
        s.expect([b"Run /init as init process"], BOOT_TIMEOUT_S)
        s.expect([b"INIT: version 3.06 booting"], 30)
        s.expect([b"INIT: Entering runlevel: 2"], 30)
        s.expect([b"Starting OpenAFS BOS server: bosserver.\r\n"], 30)
        s.expect([b"Starting internet superserver: inetd.\r\n"], 30)
        r = s.expect([con.login_prompt], 30)
        boot_s = time.monotonic() - t0
        assert b"Debian GNU/Linux 12 deleuze-lab /dev/ttyS0" in r.before
    record_timing("boot: connect (QEMU starts the guest) -> login prompt", boot_s)
    assert boot_s < SMOKE_BOUND_S
    # faithful: the raw transcript holds exactly what the guest sent, from its first byte
    raw = (guest.folder / "console.raw").read_bytes()
    sent = guest.qemu.serial_output()
    assert raw.startswith(b"[    0.000000] Linux version ")
    assert sent.startswith(raw)
    assert guest.qemu.disk_state() == DiskState(boots=1, clean=False)  # running: not shut down


def test_login_and_command(clean_guest: LabGuest) -> None:
    with clean_guest.console("contract-login") as con:
        s = con.session
        to_login_prompt(con)
        s.sendline("root")
        s.expect([b"Password: "], 10)
        s.send_secret(Secret(LAB_PASSWORD, "lab/root#1"))
        r = s.expect([con.shell_prompt], 10)
        assert r.text() == "root@deleuze-lab:~# "
        s.sendline("echo contract-ok")
        r = s.expect([re.compile(rb"\ncontract-ok\r\n")], 10)
        assert b"echo contract-ok" in r.before
        s.expect([con.shell_prompt], 10)
        s.sendline("exit")
        con.wait_login_prompt(10)
    assert_no_secret(LAB_PASSWORD, folder=clean_guest.folder)


def test_break_then_sysrq_b_reboots(sysrq1_guest: LabGuest, lab_kit: LabKit) -> None:
    with sysrq1_guest.console("contract-break") as con:
        s = con.session
        to_login_prompt(con)
        assert Ability.BREAK in s.transport.abilities
        boots = sysrq1_guest.qemu.disk_state().boots
        t0 = time.monotonic()
        s.send_break()
        s.send("b")
        s.expect([b"sysrq: Resetting"], 10)
        t_ack = time.monotonic() - t0
        s.expect([banner(lab_kit)], BOOT_TIMEOUT_S)
        t_banner = time.monotonic() - t0
        con.wait_login_prompt(BOOT_TIMEOUT_S)
        t_login = time.monotonic() - t0
    record_timing("BREAK+b -> 'sysrq: Resetting'", t_ack)
    record_timing("BREAK+b -> 'Linux version' of the new boot", t_banner)
    record_timing("BREAK+b -> login prompt", t_login)
    assert t_login < SMOKE_BOUND_S
    assert sysrq1_guest.qemu.disk_state() == DiskState(boots=boots + 1, clean=False)


def test_idle_read_times_out_quietly_and_close_is_idempotent(clean_guest: LabGuest) -> None:
    con = clean_guest.open_console("contract-idle")
    try:
        to_login_prompt(con)
        assert con.session.settle(0.3, 5)
        assert con.session.transport.read(1024, 0.2) == b""
        con.session.transport.close()
        con.session.transport.close()
        assert con.session.transport.closed
    finally:
        con.session.close()


# == 2. each kernel.sysrq mode ==========================================================================
def test_sysrq_1_acknowledges_s_u_b(sysrq1_guest: LabGuest, lab_kit: LabKit) -> None:
    with sysrq1_guest.console("sysrq1") as con:
        s = con.session
        to_login_prompt(con)
        con.login()
        assert con.run("cat /proc/sys/kernel/sysrq") == "1"
        con.sysrq("s")
        s.expect([kernel_line(b"sysrq: Emergency Sync\r\n")], 10)
        s.expect([kernel_line(b"Emergency Sync complete\r\n")], 10)
        con.sysrq("u")
        s.expect([kernel_line(b"sysrq: Emergency Remount R/O\r\n")], 10)
        s.expect([kernel_line(b"Emergency Remount complete\r\n")], 10)
        con.sysrq("b")
        s.expect([kernel_line(b"sysrq: Resetting\r\n")], 10)
        s.expect([banner(lab_kit)], BOOT_TIMEOUT_S)


def test_sysrq_438_refuses_a_key_outside_the_mask(quiet_438_guest: LabGuest) -> None:
    with quiet_438_guest.console("sysrq438") as con:
        s = con.session
        to_login_prompt(con)
        con.login()
        assert con.run("cat /proc/sys/kernel/sysrq") == "438"
        con.sysrq("t")  # show-task-states: SYSRQ_ENABLE_DUMP (8) is not in 438
        r = s.expect([kernel_line(b"sysrq: This sysrq operation is disabled.\r\n")], 10)
        assert b"Show State" not in r.before
        con.sysrq("s")  # sync: 16 is in 438
        s.expect([kernel_line(b"sysrq: Emergency Sync\r\n")], 10)
        # the acknowledgement shows at any console level, the completion (a plain pr_info from a worker)
        # does not with 'quiet': it is in the kernel's log only
        con.session.sendline()
        s.expect([con.shell_prompt], 10)
        assert con.run("dmesg | grep -c 'Emergency Sync complete'") == "1"
    assert not kernel_line(b"Emergency Sync complete").search(quiet_438_guest.qemu.serial_output())


def test_quiet_hides_the_kernel_but_emergency_lines_show(quiet_438_guest: LabGuest) -> None:
    with quiet_438_guest.console("quiet") as con:
        to_login_prompt(con)
        con.login()
        # a kernel line at emergency level while a command runs (lab-kmsg -a: from the background)
        con.session.sendline("lab-kmsg -a 0.3 'consolebot-lab: emergency line'; sleep 1; echo slept")
        r = con.session.expect([kernel_line(b"consolebot-lab: emergency line\r\n")], 10)
        assert b"\nslept\r\n" not in r.before
        con.session.expect([b"slept\r\n"], 10)
        con.session.expect([con.shell_prompt], 10)
        # a warning (AFS's level) is below quiet's console level: dmesg has it, the console not
        con.session.sendline("lab-kmsg -l 4 'consolebot-lab: warning line'; dmesg | grep -c 'consolebot-lab: warning'")
        r = con.session.expect([con.shell_prompt], 10)
        assert clean_output(r.before).strip().splitlines()[-1] == "1"
        assert not kernel_line(b"consolebot-lab: warning line").search(r.before)
        con.logout()
    sent = quiet_438_guest.qemu.serial_output()
    assert b"Linux version" not in sent
    assert b"deleuze-lab login: " in sent


def test_sysrq_0_prints_nothing_and_the_key_reaches_the_tty(guest_factory: GuestFactory) -> None:
    guest = guest_factory(GuestConfig(sysrq=0), "sysrq0")
    with guest.console("sysrq0") as con:
        s = con.session
        con.wait_login_prompt(BOOT_TIMEOUT_S)
        con.login()
        assert con.run("cat /proc/sys/kernel/sysrq") == "0"
        con.sysrq("b")  # would reboot at once with SysRq on
        s.sendline("echo typed")  # the shell reads "becho typed"
        r = s.expect([b"-sh: becho: not found"], 10)
        assert b"sysrq" not in r.before.lower()
        s.expect([con.shell_prompt], 10)
        assert con.run("echo still-up") == "still-up"
    assert guest.qemu.disk_state().boots == 1


# == 3. hung, then SysRq, then a crash boot that salvages ========================================================
@dataclass
class HungCrash:
    """What the hung-then-crash run saw."""

    guest: LabGuest
    enter_reply: bytes = b""
    first_boot: bytes = b""
    crash_boot: bytes = b""
    lab_state: str = ""
    statuses: list[tuple[float, str]] = field(default_factory=list)  # (s after the crash boot's banner, bos)
    timings: dict[str, float] = field(default_factory=dict)
    serial: bytes = b""


@pytest.fixture(scope="module")
def hung_crash(module_guest_factory: GuestFactory, lab_kit: LabKit) -> HungCrash:
    """Boot 1 hangs after its services; SysRq s, u, b; boot 2 salvages; ``bos status`` until it ends."""
    guest = module_guest_factory(GuestConfig(hang_boots=1, salvage_s=SALVAGE_S), "hung-crash")
    rec = HungCrash(guest)
    with guest.console("hung-crash") as con:
        s = con.session
        t0 = time.monotonic()
        r = s.expect([b"Starting internet superserver: inetd.\r\n"], BOOT_TIMEOUT_S)
        rec.timings["hung boot: connect -> last service started"] = time.monotonic() - t0
        rec.first_boot = r.before
        s.expect([re.compile(rb"INFO: task apache2:\d+ blocked for more than 120 seconds\.")], 30)
        con.wait_quiet(1.0, 30)  # the rest of the hung-task report
        s.sendline()
        rec.enter_reply = s.read_for(2.0)
        s.sendline("root")
        rec.enter_reply += s.read_for(2.0)
        for key, acks in (("s", (b"sysrq: Emergency Sync", b"Emergency Sync complete")),
                          ("u", (b"sysrq: Emergency Remount R/O", b"Emergency Remount complete")),
                          ("b", (b"sysrq: Resetting",))):
            con.sysrq(key)
            for ack in acks:
                s.expect([kernel_line(ack + b"\r\n")], 10)
        t_reset = time.monotonic()
        s.expect([banner(lab_kit)], BOOT_TIMEOUT_S)
        t_banner = time.monotonic()
        rec.timings["SysRq b -> 'Linux version' (crash boot)"] = t_banner - t_reset
        r = con.wait_login_prompt(BOOT_TIMEOUT_S)
        rec.crash_boot = r.before
        rec.timings["SysRq b -> login prompt (crash boot)"] = time.monotonic() - t_reset
        con.login()
        rec.lab_state = con.run("lab-state | head -n 1")
        back_up = kernel_line(AFS_BACK)
        while time.monotonic() - t_banner < SALVAGE_S + 60:
            out = con.run(BOS)
            ended = bool(back_up.search(out.encode()))
            out = without_kernel_lines(out)
            rec.statuses.append((time.monotonic() - t_banner, out))
            if "file server running" in out:
                break
            if ended:
                continue  # the salvage ended while bos ran: ask again
            try:
                s.expect([back_up], 1.0)  # the AFS client reports the file server back when it ends
            except PromptTimeout:
                pass
        rec.timings["crash boot 'Linux version' -> bos status shows the salvage ended"] = rec.statuses[-1][0]
        con.logout()
    rec.serial = guest.qemu.serial_output()
    return rec


def test_hung_guest_answers_no_enter(hung_crash: HungCrash) -> None:
    assert hung_crash.enter_reply == b""  # neither Enter nor a user name got an echo or a prompt
    assert b"Starting Courier authentication services: authdaemond." in hung_crash.first_boot
    first_boot = hung_crash.serial[: hung_crash.serial.index(b"sysrq: Emergency Sync")]
    assert b"login: " not in first_boot
    for what, seconds in hung_crash.timings.items():
        if what.startswith("hung boot"):
            record_timing(what, seconds)


def test_sysrq_s_u_b_reset_the_hung_guest_into_a_crash_boot(hung_crash: HungCrash) -> None:
    assert hung_crash.lab_state == "boot=2 crash=1 hung=0"
    assert hung_crash.guest.qemu.disk_state() == DiskState(boots=2, clean=False)
    boot = clean_output(hung_crash.crash_boot)
    assert "Starting OpenAFS BOS server: bosserver.\n" in boot
    assert PG_FAILED in boot
    assert "Starting web server: apache2Syntax error on line 12" in boot
    for what, seconds in hung_crash.timings.items():
        if what.startswith("SysRq"):
            record_timing(what, seconds)
            assert seconds < SMOKE_BOUND_S


def test_bos_status_shows_the_salvage_until_it_ends(hung_crash: HungCrash) -> None:
    statuses = [out for _, out in hung_crash.statuses]
    assert statuses[0] == SALVAGING
    assert statuses[-1].endswith(FS_RUNNING)
    for out in statuses[:-1]:
        assert out.endswith(SALVAGING), out
    end_s = hung_crash.statuses[-1][0]
    record_timing("crash boot 'Linux version' -> bos status shows the salvage ended", end_s)
    assert SALVAGE_S < end_s < SALVAGE_S + SMOKE_BOUND_S
    print(f"bos status asked {len(statuses)} times: {[round(t, 1) for t, _ in hung_crash.statuses]}")


@dataclass
class PowerReset:
    guest: LabGuest
    crash_boot: bytes
    bos_first: str
    reset_to_login_s: float


@pytest.fixture(scope="module")
def crashed_guest(module_guest_factory: GuestFactory, lab_kit: LabKit) -> PowerReset:
    """A clean boot, then the reset button (QMP system_reset): a crash boot whose fileserver script
    waits for the salvager (the runbook's local fix), so AFS is up at the login prompt."""
    config = GuestConfig(salvage_s=SALVAGE_WAIT_S, salvage_wait=True, pg_fail_starts=2)
    guest = module_guest_factory(config, "power-reset")
    with guest.console("power-reset") as con:
        con.wait_login_prompt(BOOT_TIMEOUT_S)
        t0 = time.monotonic()
        guest.qemu.power_reset()
        con.session.expect([banner(lab_kit)], BOOT_TIMEOUT_S)
        r = con.wait_login_prompt(BOOT_TIMEOUT_S)
        reset_to_login_s = time.monotonic() - t0
        con.login()
        bos_first = con.run(BOS)
    return PowerReset(guest, r.before, bos_first, reset_to_login_s)


def test_a_power_reset_gives_a_crash_boot_that_waits_for_the_salvage(crashed_guest: PowerReset) -> None:
    record_timing(f"power reset -> login prompt (crash boot, waits for a {SALVAGE_WAIT_S:g} s salvage)",
                  crashed_guest.reset_to_login_s)
    assert crashed_guest.guest.qemu.disk_state() == DiskState(boots=2, clean=False)
    boot = clean_output(crashed_guest.crash_boot)
    assert re.search(
        r"Starting OpenAFS BOS server: bosserver\.\n"
        r"Waiting for OpenAFS salvager to finish:"
        r"bos: failed to contact host's bosserver \(server or network not responding\)\.\n"
        r" salvage in progress\.+ finished\.\n"
        r"Starting AFS services: openafs afsd\.\n", boot), boot
    assert "afs: Lost contact" not in boot  # the client starts after the salvage
    assert crashed_guest.bos_first == FS_RUNNING


# == 4. what a recogniser reads in these boots ==============================================================
def read_in_order(data: bytes, steps: list[bytes | re.Pattern[bytes]]) -> list[bytes]:
    """Replay ``data`` through a session and expect each step in turn; return the matches."""
    session = Session(ReplayTransport(data))
    matches = []
    for i, step in enumerate(steps):
        try:
            matches.append(session.expect([step], 5).match)
        except ConsoleClosed:
            pytest.fail(f"step {i} not found after step {i - 1}: {step!r}")
    return matches


def test_recogniser_lines_of_hung_then_crash_boots(hung_crash: HungCrash, lab_kit: LabKit) -> None:
    matches = read_in_order(hung_crash.serial, [
        banner(lab_kit),                                                   # boot start
        b"INIT: Entering runlevel: 2\r\n",
        b"Starting OpenAFS BOS server: bosserver.\r\n",
        b"Starting AFS services: openafs afsd.\r\n",
        b"afsd: All AFS daemons started.\r\n",
        b"Starting internet superserver: inetd.\r\n",
        kernel_line(rb"INFO: task nscd:\d+ blocked for more than 120 seconds\.\r\n"),  # hung task
        kernel_line(b"sysrq: Emergency Sync\r\n"),                         # SysRq acknowledgements
        kernel_line(b"Emergency Sync complete\r\n"),
        kernel_line(b"sysrq: Emergency Remount R/O\r\n"),
        kernel_line(b"Emergency Remount complete\r\n"),
        kernel_line(b"sysrq: Resetting\r\n"),
        banner(lab_kit),                                                   # the crash boot
        kernel_line(AFS_LOST),                                             # AFS: server lost (salvaging)
        b"InnoDB: Database was not shut down normally!\r\n",
        b"InnoDB: Crash recovery may have failed for some .ibd files!\r\n",
        b"InnoDB: Crash recovery may have failed for some .ibd files!\r\n",
        b"/usr/sbin/mysqld: ready for connections.\r\n",
        PG_FAILED.encode(),
        b"Action 'start' failed.\r\n",
        b"domtool-server: Unable to read /afs/example.org/common/etc/domtool/domtool.cfg: Connection timed out",
        b"deleuze-lab login: ",                                        # login prompt
        b"    Auxiliary status is: salvaging file system.\r\n",
        kernel_line(AFS_BACK),                                             # AFS: the salvage ended
        kernel_line(AFS_BUSY),
        b"    Auxiliary status is: file server running.\r\n",
    ])
    assert matches[0].startswith(b"[    0.000000] Linux version ")


def test_recogniser_lines_of_a_clean_boot(clean_guest: LabGuest, lab_kit: LabKit) -> None:
    services = [
        "OpenBSD Secure Shell server: sshd", "OpenAFS BOS server: bosserver", "AFS services: openafs afsd",
        "Name Service Cache Daemon: nscd", "MySQL database server: mysqld", "PostgreSQL 8.4 database server: main",
        "web server: apache2", "Domtool server: domtool-server", "periodic command scheduler: cron",
        "SpamAssassin Mail Filter Daemon: spamd", "Courier authentication services: authdaemond",
        "internet superserver: inetd",
    ]
    data = clean_guest.qemu.serial_output()
    read_in_order(data, [banner(lab_kit), b"INIT: version 3.06 booting\r\n",
                         *[f"Starting {s}.\r\n".encode() for s in services],
                         b"\r\nDebian GNU/Linux 12 deleuze-lab /dev/ttyS0\r\n", b"deleuze-lab login: "])
    first_boot = data[: data.index(b"deleuze-lab login: ")]
    for bad in (b"failed!", b"afs: Lost contact", b"InnoDB:", b"sysrq:"):
        assert bad not in first_boot


# == 5. Deleuze's services over the console =====================================================================
DAEMONS = ["sshd", "bosserver", "fileserver", "volserver", "afsd", "nscd", "mysqld", "postmaster", "apache2",
           "domtool-server", "cron", "spamd", "authdaemond", "inetd"]


def test_ps_aux_shows_the_real_process_names(clean_guest: LabGuest) -> None:
    with clean_guest.console("ps") as con:
        con.ensure_shell()
        out = con.run("ps aux")
        for name in DAEMONS:
            assert re.search(r"^\s*\d+ root\s+\{" + re.escape(name) + r"\} /bin/sh /\S*/" + re.escape(name) + r"\b",
                             out, re.M), f"{name} not in ps aux:\n{out}"
        for line in ("/usr/bin/runsvdir -P /etc/service", "runsv mysql", "runsv courier-authdaemon"):
            assert line in out
        assert con.run(POSTGRES_CHECK) == ""
        assert re.fullmatch(r"\d+", con.run("pidof authdaemond"))


def test_initd_scripts_stop_and_start(clean_guest: LabGuest) -> None:
    cases = [
        ("nscd", "nscd", "Stopping Name Service Cache Daemon: nscd.", "Starting Name Service Cache Daemon: nscd."),
        ("apache2", "apache2", "Stopping web server: apache2.", "Starting web server: apache2."),
        ("postgresql", "postmaster", "Stopping PostgreSQL 8.4 database server: main.",
         "Starting PostgreSQL 8.4 database server: main."),
    ]
    with clean_guest.console("initd") as con:
        con.ensure_shell()
        for script, process, stopped, started in cases:
            before = con.run(f"pidof {process}")
            assert re.fullmatch(r"\d+", before)
            assert con.run(f"/etc/init.d/{script} stop") == stopped
            assert con.run(f"pidof {process}") == ""
            assert con.run(f"/etc/init.d/{script} start") == started
            after = con.run(f"pidof {process}")
            assert re.fullmatch(r"\d+", after) and after != before
        assert con.run("/etc/init.d/postgresql status") == "8.4/main (port 5432): online"
        assert con.run("/etc/init.d/nscd status") == "nscd is running."


def test_sv_stops_and_starts_runit_services(clean_guest: LabGuest) -> None:
    with clean_guest.console("sv") as con:
        con.ensure_shell()
        assert re.fullmatch(r"ok: down: mysql: \d+s, normally up", con.run("sv stop mysql"))
        assert con.run("pidof mysqld") == ""
        out = con.run("sv start mysql")
        m = re.fullmatch(r"ok: run: mysql: \(pid (\d+)\) \d+s", out)
        assert m, out
        assert con.run("pidof mysqld") == m.group(1)
        # runit's LSB mode: /etc/init.d/mysql is a link to sv
        assert re.fullmatch(r"ok: run: mysql: \(pid \d+\) \d+s", con.run("/etc/init.d/mysql restart"))
        status = con.run("sv status mysql courier-authdaemon").splitlines()
        assert re.fullmatch(r"run: mysql: \(pid \d+\) \d+s", status[0])
        assert re.fullmatch(r"run: courier-authdaemon: \(pid \d+\) \d+s", status[1])
        assert con.run("sv status spamd") == "fail: spamd: unable to change to service directory: file does not exist"


def test_courier_authdaemon_survives_its_first_stop(clean_guest: LabGuest) -> None:
    with clean_guest.console("courier") as con:
        con.ensure_shell()
        pid = con.run("pidof authdaemond")
        assert re.fullmatch(r"\d+", pid)
        out = con.run("sv -w 2 stop courier-authdaemon")
        assert re.fullmatch(rf"timeout: run: courier-authdaemon: \(pid {pid}\) \d+s, want down, got TERM", out), out
        assert con.run("pidof authdaemond") == pid  # still there
        # the runbook: killall to be sure it is down, then start it again
        con.run("killall authdaemond")
        assert re.fullmatch(r"ok: down: courier-authdaemon: \d+s, normally up", con.run("sv -w 5 stop courier-authdaemon"))
        assert con.run("pidof authdaemond") == ""
        out = con.run("sv start courier-authdaemon")
        m = re.fullmatch(r"ok: run: courier-authdaemon: \(pid (\d+)\) \d+s", out)
        assert m and m.group(1) != pid, out


def test_each_failed_login_leaves_busybox_invalid_password_line(clean_guest: LabGuest) -> None:
    with clean_guest.console("failed-logins") as con:
        s = con.session
        to_login_prompt(con)
        seen = []
        for attempt in (1, 2):
            s.sendline("root")
            s.expect([b"Password: "], 10)
            s.send_secret(Secret(f"not-the-password-{attempt}", f"wrong#{attempt}"))
            r = s.expect([INVALID_PASSWORD], 15)  # busybox login waits 3 s after a failure
            assert b"Login incorrect" in r.before
            seen.append(r.groups)
            con.wait_login_prompt(10)
        assert [g[1:] for g in seen] == [(b"root", b"ttyS0")] * 2
        assert seen[0][0] == seen[1][0]  # the same login process asked again
        con.login()
        con.logout()
    log = b"".join(p.read_bytes() for p in clean_guest.folder.glob("failed-logins.raw"))
    assert len(INVALID_PASSWORD.findall(log)) == 2
    assert_no_secret("not-the-password-1", folder=clean_guest.folder)


def test_postgres_fails_its_first_starts_after_a_crash(crashed_guest: PowerReset) -> None:
    assert PG_FAILED in clean_output(crashed_guest.crash_boot)  # the boot's start was the first
    with crashed_guest.guest.console("postgres") as con:
        con.ensure_shell()
        assert con.run(POSTGRES_CHECK) == "Postgres not running!"
        out = con.run("/etc/init.d/postgresql start")
        assert out.startswith(PG_FAILED) and out.endswith("redo starts at 3/65A42760 ... failed!\n failed!"), out
        assert con.run(POSTGRES_CHECK) == "Postgres not running!"
        assert con.run("/etc/init.d/postgresql start") == "Starting PostgreSQL 8.4 database server: main."
        assert con.run(POSTGRES_CHECK) == ""
        assert con.run("/etc/init.d/postgresql status") == "8.4/main (port 5432): online"


def test_domtool_after_postgres_the_runbook_way(crashed_guest: PowerReset) -> None:
    test_file = "~/.domtool/test.example.org"
    assert "Starting Domtool server: domtool-server.\n" in clean_output(crashed_guest.crash_boot)
    with crashed_guest.guest.console("domtool") as con:
        con.ensure_shell()
        assert con.run(BOS) == FS_RUNNING
        assert con.run("domtool-admin ping") == "deleuze-lab: domtool-server is alive."
        for _ in range(3):  # PostgreSQL may need more than one start after the crash
            if con.run("/etc/init.d/postgresql start").endswith("main."):
                break
        # domtool-server started while PostgreSQL was down: every request fails until it restarts
        assert con.run(f"domtool {test_file}") == \
            "domtool: Database error: could not connect to server: Connection refused"
        # after PostgreSQL, restart domtool-server (it uses PostgreSQL), then test a domain
        assert con.run("/etc/init.d/domtool-server restart") == "Starting Domtool server: domtool-server."
        assert con.run(f"domtool {test_file}") == "test.example.org: configuration accepted."
        con.run("/etc/init.d/domtool-server stop")
        assert con.run(f"domtool {test_file}") == \
            "domtool: Unable to contact domtool-server on deleuze-lab: Connection refused"
        assert con.run("domtool-admin ping") == \
            "domtool-admin: Unable to contact domtool-server on deleuze-lab: Connection refused"


def test_a_clean_reboot_marks_the_shutdown_clean_and_does_not_salvage(clean_guest: LabGuest, lab_kit: LabKit) -> None:
    boots = clean_guest.qemu.disk_state().boots
    with clean_guest.console("reboot") as con:
        s = con.session
        con.ensure_shell()
        t0 = time.monotonic()
        s.sendline("reboot")
        s.expect([b"Stopping OpenAFS BOS server: bosserver.\r\n"], 60)
        s.expect([b"The system is going down NOW!"], 30)
        s.expect([kernel_line(b"reboot: Restarting system\r\n")], 60)
        s.expect([banner(lab_kit)], BOOT_TIMEOUT_S)
        r = con.wait_login_prompt(BOOT_TIMEOUT_S)
        record_timing("'reboot' (clean shutdown) -> login prompt", time.monotonic() - t0)
        boot = clean_output(r.before)
        assert "failed!" not in boot and "afs: Lost contact" not in boot and "InnoDB" not in boot
        con.login()
        assert con.run("lab-state | head -n 1") == f"boot={boots + 1} crash=0 hung=0"
        assert con.run(BOS) == FS_RUNNING
    assert clean_guest.qemu.disk_state() == DiskState(boots=boots + 1, clean=False)


# == the builder's and the runner's small parts (no QEMU) =========================================================
def test_the_newest_cloud_kernel_is_chosen_by_number_never_a_pinned_abi() -> None:
    names = ["linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64", "linux-image-6.1.0-47-cloud-amd64",
             "linux-image-6.1.0-56-cloud-amd64-unsigned", "linux-image-cloud-amd64"]
    assert newest_kernel_package(names) == "linux-image-6.1.0-56-cloud-amd64"
    assert newest_kernel_package([*names, "linux-image-6.12.9-1-cloud-amd64"]) == "linux-image-6.12.9-1-cloud-amd64"
    with pytest.raises(LabBuildError):
        newest_kernel_package(["linux-image-cloud-amd64"])


def test_guest_options_reach_the_kernel_command_line_and_the_state_disk_reads_back(tmp_path: Path) -> None:
    cmdline = GuestConfig(sysrq=None, quiet=True, hang_boots=1, salvage_s=2.5).kernel_cmdline()
    assert cmdline.startswith("console=ttyS0,115200 ")
    for word in ("quiet", "lab.sysrq=default", "lab.hang=1", "lab.salvage_s=2.5", "lab.host=deleuze-lab"):
        assert word in cmdline.split()
    with pytest.raises(ValueError):
        GuestConfig(hostname="bad host").kernel_cmdline()
    disk = tmp_path / "state.img"
    assert read_disk_state(disk) == DiskState(0, True)
    disk.write_bytes(b"CBLAB1 boots=7 clean=0\n".ljust(512, b"\0"))
    assert read_disk_state(disk) == DiskState(7, False)
