"""The simulator's shell: the language (lists, quoting, $?, pipes, redirections, builtins) and the prompt,
both on its own and on the console's tty (echo, PS1/PS2, Ctrl-C, stty, dmesg -n)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consolebot.lab.commands import MachineSystem, bre_to_python, comm_of
from consolebot.lab.config import SimOptions, load_profile
from consolebot.lab.machine import Machine
from consolebot.lab.shell import Shell, printf_format
from consolebot.lab.site import Site
from tests.lab_sim_helpers import LabSim, login, prompt_of, run

H = "deleuze-sim"


def shell_for(host: str = "deleuze", **opts: object) -> Shell:
    m = Machine(load_profile(host), SimOptions(**opts), Site(), lambda _d: None, primary=True)  # type: ignore[arg-type]
    m.assume_running()
    return Shell(MachineSystem(m, console=False), interactive=False, name="bash")


def sh_run(sh: Shell, line: str) -> tuple[int, str]:
    out: list[str] = []
    status = asyncio.run(sh.run_line(line, out.append))
    return status, "".join(out)


@pytest.mark.parametrize(("line", "status", "output"), [
    ("true; echo $?", 0, "0\n"),
    ("false; echo $?", 0, "1\n"),
    ("false && echo no || echo yes $?", 0, "yes 1\n"),
    ("true && echo a && false || echo b", 0, "a\nb\n"),
    ("echo 'CBSab''cd1'; true; echo 'CBE''x':$?", 0, "CBSabcd1\nCBEx:0\n"),  # consolebot's command framing
    ('echo "a  b" c\\ d \'$HOME\' "$HOME"', 0, "a  b c d $HOME /root\n"),
    ("echo -n x; echo -e 'y\\tz'", 0, "xy\tz\n"),
    ("printf '%s=%d\\n' a 1 b 2", 0, "a=1\nb=2\n"),
    ("printf '%5s|%-3s|%%\\n' ab c", 0, "   ab|c  |%\n"),
    ("export X=1; echo $X ${X}; unset X; echo \"[$X]\"", 0, "1 1\n[]\n"),
    ("Y=2; echo $Y", 0, "2\n"),
    ("nosuch; echo $?", 0, "bash: nosuch: command not found\n127\n"),
    ("nosuch 2>/dev/null; echo $?", 0, "127\n"),
    ("echo hi > /tmp/f; cat /tmp/f; echo more >> /tmp/f; wc -l < /tmp/f", 0, "hi\n2\n"),
    ("echo a; echo b | grep -v a | wc -l", 0, "a\n1\n"),
    ("ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'", 0, ""),
    ("hostname", 0, "deleuze-sim\n"),
    ("uname -r", 0, "6.1.0-18-amd64\n"),
    ("echo a;; echo b", 2, "bash: syntax error near unexpected token `;;'\n"),
    ("| echo", 2, "bash: syntax error near unexpected token `|'\n"),
    ("[ 3 -gt 2 ] && echo big", 0, "big\n"),
    ("dmesg -n 1; cat /proc/sys/kernel/printk", 0, "1\t4\t1\t7\n"),
    ("dmesg -n emerg; cat /proc/sys/kernel/printk; dmesg -n 9", 1, "1\t4\t1\t7\ndmesg: unknown level '9'\n"),
    ("sysctl kernel.sysrq; sysctl -w kernel.sysrq=438", 0, "kernel.sysrq = 1\nkernel.sysrq = 438\n"),
    ("stty -echo", 1, "stty: 'standard input': Inappropriate ioctl for device\n"),  # no tty over SSH
    ("sv status spamd; echo $?", 0, "fail: spamd: unable to change to service directory: file does not exist\n1\n"),
    ("/etc/init.d/nosuch start", 127, "bash: /etc/init.d/nosuch: No such file or directory\n"),
    ("service nosuch start", 1, "nosuch: unrecognized service\n"),
    ("bos status fs99 -localauth", 1, "bos: can't find address for host 'fs99'\n"),
    ("pgrep -x cron >/dev/null && echo found", 0, "found\n"),
    ("killall nosuchd; echo $?", 0, "nosuchd: no process found\n1\n"),
])
def test_language_and_commands(line: str, status: int, output: str) -> None:
    sh = shell_for()
    got = sh_run(sh, line)
    assert got == (status, output)


def test_exit_ends_the_shell() -> None:
    from consolebot.lab.shell import ExitShell

    with pytest.raises(ExitShell):
        asyncio.run(shell_for().run_line("echo a; exit", lambda _t: None))


def test_bos_status_variants() -> None:
    sh = shell_for(scenario="salvage-old-init", salvage_seconds=60.0)
    assert sh_run(sh, "bos status deleuze -localauth") == (
        0, "Instance fs, currently running normally.\n    Auxiliary status is: salvaging file system.\n")
    long = sh_run(sh, "bos status localhost -localauth -long")[1].splitlines()
    assert long[:2] == ["Instance fs, (type is fs) currently running normally.",
                        "    Auxiliary status is: salvaging file system."]
    assert long[-1] == "    Command 3 is '/usr/lib/openafs/salvager'"
    assert sh_run(sh, "/etc/init.d/openafs-fileserver stop; bos status deleuze -localauth") == (
        1, "bos: failed to contact host's bosserver (server or network not responding).\n")  # 1.4: stdout
    assert sh_run(sh, "/etc/init.d/openafs-fileserver start; bos status deleuze -localauth")[1].endswith(
        "salvaging file system.\n")  # an interrupted salvage starts again


def test_systemctl_formats_on_a_systemd_host() -> None:
    sh = shell_for("mire")
    assert sh_run(sh, "systemctl is-active apache2 cron") == (0, "active\nactive\n")
    assert sh_run(sh, "systemctl stop cron; systemctl is-active cron") == (3, "inactive\n")
    status, out = sh_run(sh, "systemctl status cron")
    assert status == 3 and out.startswith("○ cron.service - Regular background program processing daemon\n")
    assert sh_run(sh, "systemctl status nosuch") == (4, "Unit nosuch.service could not be found.\n")
    assert sh_run(sh, "systemctl start nosuch")[0] == 5


def test_helpers() -> None:
    assert comm_of("/bin/sh /usr/bin/mysqld_safe") == "mysqld_safe"
    assert comm_of("postgres: writer process") == "postgres"
    assert comm_of("-bash") == "bash"
    assert bre_to_python("a\\(b\\)c(d)") == "a(b)c\\(d\\)"
    assert printf_format("%s\\n", []) == ("\n", True)


def test_console_tty_prompt_echo_and_interrupt(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        s = sim.console()
        login(s, H)
        # consolebot's preparation line: a unique prompt from split quotes, no PS2, TERM=dumb
        s.sendline("PS1='cbf00''ba4# '; PS2=''; unset HISTFILE; export TERM=dumb")
        s.expect([b"\r\ncbf00ba4# "], 5)
        s.sendline("echo 'open")  # an open quote: bash asks for more with PS2 (empty now)
        s.sendline("close'")
        s.expect([b"open\r\nclose\r\ncbf00ba4# "], 5)
        s.sendline("PS1='\\u@\\h:\\w\\$ '; cd /var/log")
        s.expect([b"root@deleuze-sim:/var/log# "], 5)
        s.sendline("stty -echo")
        s.expect([b"root@deleuze-sim:/var/log# "], 5)
        s.sendline("echo secret-typed")
        r = s.expect([b"root@deleuze-sim:/var/log# "], 5)
        assert r.before == b"secret-typed\r\n"  # no echo of the typed line
        s.sendline("stty echo; cd")
        s.expect([prompt_of(H)], 5)
        s.sendline("sleep 30")
        s.expect([b"sleep 30\r\n"], 5)
        s.send(b"\x03")  # Ctrl-C interrupts the command
        s.expect([b"^C\r\n" + prompt_of(H)], 5)
        assert run(s, H, "echo $?") == "130\n"  # 128 + SIGINT
        s.send(b"\x04")  # Ctrl-D at an empty prompt logs out
        s.expect([b"logout\r\n"], 5)
        s.expect([f"{H} login: ".encode()], 5)
        acts = sim.acts()
    lines = [a["text"] for a in acts if a["act"] == "line" and a["state"] == "shell"]
    assert lines[:3] == ["PS1='cbf00''ba4# '; PS2=''; unset HISTFILE; export TERM=dumb", "echo 'open", "close'"]
    assert "^C" in lines and "^D" in lines


def test_maximum_login_tries(tmp_path: Path) -> None:
    with LabSim(tmp_path) as sim:
        s = sim.console()
        s.expect([f"{H} login: ".encode()], 10)
        for _ in range(5):
            s.sendline("root")
            s.expect([b"Password: "], 5)
            s.sendline("bad")
            s.expect([b"Login incorrect\r\n"], 5)
        s.expect([b"Maximum number of tries exceeded (5)\r\n\r\nDebian GNU/Linux 12 deleuze-sim ttyS1\r\n\r\n"], 5)
        s.sendline("root")
        s.expect([b"Password: "], 5)
        s.send(b"\x03")  # Ctrl-C at the password prompt: login dies, getty comes back, no attempt spent
        s.expect([b"\r\nDebian GNU/Linux 12 deleuze-sim ttyS1\r\n\r\ndeleuze-sim login: "], 5)
        attempts = [a for a in sim.acts() if a["act"] == "password"]
    assert len(attempts) == 5 and not any(a["accepted"] for a in attempts)
