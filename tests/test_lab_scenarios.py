"""Each scenario of the simulated Deleuze, driven with plain expect/send over telnet through the
runbook's manual steps; what the console shows is checked against the real-format transcripts
(``tests/fixtures/transcripts/*.expected``: every server-side event, in order, byte for byte)."""

from __future__ import annotations

from pathlib import Path

from tests.lab_sim_helpers import (
    LabSim,
    assert_in_order,
    expected_events,
    login,
    prompt_of,
    run,
    typed_commands,
    wait_until,
)

H = "deleuze-sim"
RUNBOOK_SERVICES = ("nscd", "mysql", "postgresql", "apache2", "domtool-server", "cron", "spamassassin",
                    "openbsd-inetd")  # courier-authdaemon is a runit service (sv)


def test_clean_reboot_has_the_clean_boot_transcript_formats(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        s = sim.console()
        login(s, H)
        assert run(s, H, "bos status deleuze -localauth") == (
            "Instance fs, currently running normally.\n    Auxiliary status is: file server running.\n")
        s.sendline("exit")
        s.expect([b"logout\r\n"], 5)
        s.expect([f"{H} login: ".encode()], 5)
        # the reboot comes from an SSH session, as in the transcript: the getty is on the console
        reply = sim.bmc().request("ssh reboot")
        assert reply["ok"] and reply["exit"] == 0
        s.expect([b"reboot: Restarting system"], 10)
        s.expect([f"{H} login: ".encode()], 10)
        sent = sim.sent()
    assert_in_order(sent, expected_events("clean_boot", H))
    # the boot part is byte for byte the transcript's (the firmware screen up to the login prompt)
    want = (Path(__file__).parent / "fixtures/transcripts/clean_boot.log").read_bytes().replace(b"fs01", H.encode())
    first = want.index(b"\x1b[0m\x1b[2J")
    assert want[first:] in sent
    boots = [a for a in sim.acts() if a["act"] == "boot"]
    assert [b["kind"] for b in boots] == ["clean", "clean"]  # an orderly reboot: no salvage


def test_salvage_old_init_runbook_by_hand(tmp_path: Path) -> None:
    """The runbook after a crash: services started without AFS; stop them, wait for the salvage,
    start them, restart Postgres until it runs, restart domtool-server, test domtool."""
    with LabSim(tmp_path, "--scenario", "salvage-old-init", "--salvage-seconds", "2.5") as sim:
        s = sim.console()
        login(s, H)
        for cmd in typed_commands("crash_boot_salvage_nowait")[:2]:  # bos status; tail SalvageLog
            run(s, H, cmd)
        assert "salvaging file system" in run(s, H, "bos status deleuze -localauth")
        # services that started without AFS are stuck on it: state D in ps
        ps = run(s, H, "ps aux")
        assert ps.startswith("USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n")
        assert any(" D " in line and "/usr/sbin/nscd" in line for line in ps.splitlines())
        assert "/usr/lib/openafs/salvager" in ps and "apache2" not in ps  # apache2 failed at boot
        # a start while AFS is down fails as it would without AFS
        out = run(s, H, "/etc/init.d/apache2 start; echo rc=$?")
        assert out.startswith("Starting web server: apache2Syntax error on line 12 of") and "rc=1" in out
        # shut down what started after AFS: init.d, then sv for the runit service, then killall
        for name in RUNBOOK_SERVICES:
            out = run(s, H, f"/etc/init.d/{name} stop")
            assert out.startswith("Stopping ") and out.endswith(".\n"), out
        assert run(s, H, "sv stop courier-authdaemon") == "ok: down: courier-authdaemon: 0s, normally up\n"
        assert run(s, H, "killall courier-authdaemon") == "courier-authdaemon: no process found\n"  # psmisc: comm
        run(s, H, "killall nscd mysqld postmaster apache2 domtool-server cron spamd inetd authdaemond")
        left = run(s, H, "ps aux | egrep 'nscd|mysqld|postmaste()r|domtool|spamd|authdaemond|inetd'; echo rc=$?")
        assert left == "rc=1\n", left
        # the salvager finishes: the AFS client says so on the console
        cat = wait_until(s, H, "cat /var/log/openafs/SalvageLog.0", lambda o: "Salvaged root.afs" in o)
        assert "SALVAGING FILE SYSTEM PARTITION /vicepa (device=/vicepa)" in cat
        s.expect([b"afs: file server 192.0.2.10 in cell example.org is back up\r\n"], 10)
        s.expect([b"afs: Waiting for busy volume 536870930 (user.alice) in cell example.org\r\n"], 10)
        for cmd in typed_commands("crash_boot_salvage_nowait")[5:]:  # tail SalvageLog; bos status
            run(s, H, cmd)
        # start them again, watching for errors
        for name in RUNBOOK_SERVICES:
            out = run(s, H, f"/etc/init.d/{name} start; echo rc=$?")
            if name == "postgresql":  # the first start after a crash fails (B3 of sv_and_initd_outputs.txt)
                assert out.startswith("Starting PostgreSQL 8.4 database server: mainThe PostgreSQL server failed "
                                      "to start. Please check the log output:\n")
                assert "redo starts at 3/65A42760 ... failed!\n failed!\nrc=1" in out
            else:
                assert out.endswith(".\nrc=0\n"), out
        assert run(s, H, "sv start courier-authdaemon").startswith("ok: run: courier-authdaemon: (pid ")
        # double-check Postgres: not running; domtool cannot reach its database
        assert run(s, H, "ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'") == \
            "Postgres not running!\n"
        assert "could not connect to server" in run(s, H, "domtool -tc example.org")
        assert run(s, H, "/etc/init.d/postgresql start") == "Starting PostgreSQL 8.4 database server: main.\n"
        assert run(s, H, "ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'") == ""
        # domtool-server still holds its dead connection: after Postgres, restart domtool-server
        assert "server closed the connection unexpectedly" in run(s, H, "domtool -tc example.org")
        assert run(s, H, "/etc/init.d/domtool-server restart") == "Restarting Domtool server: domtool-server.\n"
        assert run(s, H, "domtool -tc example.org; echo rc=$?") == "Typechecking succeeded.\nrc=0\n"
        assert "file server running" in run(s, H, "bos status deleuze -localauth")
        sent = sim.sent()
        acts = sim.acts()
    assert_in_order(sent, expected_events("crash_boot_salvage_nowait", H))
    boot_t = next(a["t"] for a in acts if a["act"] == "boot")
    done_t = next(a["t"] for a in acts if a["act"] == "salvage-done")
    assert done_t - boot_t >= 2.5  # --salvage-seconds


def test_salvage_wait_blocks_until_the_salvage_is_done(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--scenario", "salvage-wait", "--salvage-seconds", "0.6") as sim:
        s = sim.console()
        s.expect([b" salvage in progress."], 10)
        s.expect([b" finished.\r\n"], 10)
        s.expect([b"/usr/sbin/mysqld: ready for connections."], 10)  # mysqld's stderr is the console
        s.sendline("")  # Enter: the getty shows its prompt again
        s.expect([b"\r\n\r\nDebian GNU/Linux 6.0 deleuze-sim ttyS1\r\n\r\ndeleuze-sim login: "], 5)
        s.sendline("root")
        s.expect([b"Password: "], 5)
        s.sendline("labpass")
        s.expect([prompt_of(H)], 5)
        # everything started after AFS: Postgres runs, domtool works at once
        assert "file server running" in run(s, H, "bos status localhost -localauth")
        assert run(s, H, "domtool -tc example.org") == "Typechecking succeeded.\n"
        sent = sim.sent()
    assert_in_order(sent, expected_events("crash_boot_salvage_wait", H))


def test_hung_answers_only_sysrq_and_reboots_into_a_salvage(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--scenario", "hung", "--salvage-seconds", "1") as sim:
        s = sim.console()
        s.expect([b"INFO: task apache2:24411 blocked for more than 120 seconds."], 10)
        s.sendline("root")
        assert s.settle(0.3, 3) and b"root" not in s.read_for(0.1)  # no echo, no getty: wedged
        for key, done in (("s", b"Emergency Sync complete"), ("u", b"Emergency Remount complete"),
                          ("b", b"sysrq: SysRq : Resetting")):
            s.send_break()
            s.send(key)
            s.expect([done], 5)
        s.expect([f"{H} login: ".encode()], 20)
        sent = sim.sent()
        acts = sim.acts()
    assert_in_order(sent, expected_events("hung_then_sysrq", H))
    assert [a.get("key") for a in acts if a["act"] == "sysrq"] == ["s", "u", "b"]
    assert [a["kind"] for a in acts if a["act"] == "boot"] == ["salvage-old-init"]  # --reboots-into's default


def test_sysrq_off_no_answer_the_key_reaches_the_tty(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--scenario", "sysrq-off") as sim:
        s = sim.console()
        s.expect([b"INFO: task bos:30112 blocked for more than 120 seconds."], 10)
        s.settle(0.2, 3)
        s.send_break()
        s.send("b")
        r = s.expect([b"b"], 3)  # echoed by the tty: the kernel said nothing
        assert b"sysrq" not in r.before
        s.send(b"\x15")  # Ctrl-U, as consolebot does
        s.sendline("")
        s.expect([f"{H} login: ".encode()], 5)
        s.sendline("root")
        assert s.settle(0.3, 3)  # login hangs in NSS lookups: no Password: prompt
        assert b"Password" not in bytes(sim.sent()[-200:])
        # the way out is the BMC: a power cycle, into a salvage as after any crash
        assert sim.bmc().act("cycle").evidence == "console-boot"
        s.expect([b"] Linux version 6.1.0-18-amd64 "], 10)
        login(s, H)
        assert "salvaging file system" in run(s, H, "bos status deleuze -localauth")
        acts = sim.acts()
    assert {"act": "sysrq", "key": "b", "result": "ignored-disabled"}.items() <= next(
        a for a in acts if a["act"] == "sysrq").items()
    assert [a["kind"] for a in acts if a["act"] == "boot"] == ["salvage-old-init"]


def test_sysrq_mask_16_syncs_and_refuses_the_rest(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--scenario", "sysrq-off", "--sysrq-mask", "16") as sim:
        s = sim.console()
        s.expect([b"INFO: task bos:30112 blocked"], 10)
        s.settle(0.2, 3)
        for key, answer in (("s", b"Emergency Sync complete"), ("u", b"This sysrq operation is disabled."),
                            ("b", b"This sysrq operation is disabled."), ("h", b"sysrq: HELP : loglevel(0-9)")):
            s.send_break()
            s.send(key)
            s.expect([answer], 5)
        sent = sim.sent()
    assert_in_order(sent, expected_events("sysrq_disabled", H))


def test_panic_during_boot_until_a_bmc_reset(tmp_path: Path) -> None:
    with LabSim(tmp_path, "--scenario", "panic", "--salvage-seconds", "1") as sim:
        s = sim.console()
        s.expect([b"---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---"], 10)
        s.send_break()
        s.send("b")  # a panicked kernel answers nothing
        assert s.settle(0.3, 3)
        assert sim.bmc().act("reset").state == "on"
        s.expect([b"Loading Linux 5.10.0-28-amd64 ..."], 5)
        s.expect([f"{H} login: ".encode()], 20)
        sent = sim.sent()
        acts = sim.acts()
    assert_in_order(sent, expected_events("panic_during_boot", H))
    assert [a["kind"] for a in acts if a["act"] == "boot"] == ["panic", "salvage-old-init"]


def test_login_retry_with_candidate_passwords(tmp_path: Path) -> None:
    env = {"CONSOLEBOT_LAB_PASSWORDS": "Old-pw-1\nLab-right-2\nSpare-3"}
    with LabSim(tmp_path, "--accepted-password-index", "2", env=env) as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        s.sendline("root")
        s.expect([b"Password: "], 5)
        s.sendline("Old-pw-1")
        s.expect([b"\r\n\r\nLogin incorrect\r\n" + f"{H} login: ".encode()], 5)
        login(s, H, "Lab-right-2", at_prompt=True)
        for cmd in typed_commands("login_retry"):
            run(s, H, cmd)
        sent = sim.sent()
        acts = sim.acts()
    assert_in_order(sent, expected_events("login_retry", H))
    assert [(a["user"], a["accepted"]) for a in acts if a["act"] == "password"] == [("root", False), ("root", True)]
    lines = [a["text"] for a in acts if a["act"] == "line" and a["state"] == "password"]
    assert lines == ["<password>", "<password>"]  # never the secret
    assert b"Lab-right-2" not in sent and b"Old-pw-1" not in sent
