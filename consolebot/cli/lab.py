"""``consolebot lab serve``: the built-in simulated site (Deleuze, Mire, Outpost) on loopback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import UsageError

SCENARIO_HELP = (
    "clean: a clean reboot; salvage-old-init: after a crash the salvager runs and the old init script starts "
    "the services without AFS (they fail or start improperly); salvage-wait: the init script waits for the "
    "salvage; hung: silent, only SysRq answers; sysrq-off: wedged with kernel.sysrq=0 (logins hang, the key "
    "reaches the tty); panic: kernel panic during boot"
)


def _mask(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sysrq-mask wants a number such as 0, 1, 16 or 438, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("--sysrq-mask cannot be negative")
    return value


def _failed_starts(text: str) -> int | None:
    if text == "never":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--postgres-failed-starts wants a number or 'never', not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("--postgres-failed-starts cannot be negative")
    return value


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--accepted-password-index wants a number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--accepted-password-index is 1-based")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from consolebot.lab.config import HOSTS, REBOOT_KINDS, SCENARIOS

    lab = sub.add_parser("lab", help="the built-in simulated site")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    serve = lab_sub.add_parser(
        "serve",
        parents=[common],
        help="serve simulated consoles (telnet, raw TCP, stdio) and BMCs on loopback",
        description="Serve the simulated site on 127.0.0.1: Deleuze (and with --site Mire and Outpost) on the "
        "ports of the shipped lab-* inventory. The consoles boot in the real formats of kernel, sysvinit and "
        "OpenAFS, answer BREAK + key as the kernel does, and offer a login (user root). Root's candidate "
        "passwords come from $CONSOLEBOT_LAB_PASSWORDS (one per line; --accepted-password-index picks the one "
        "that works), else $CONSOLEBOT_LAB_PASSWORD (default 'labpass'): never from the command line.",
    )
    where = serve.add_argument_group("what to serve")
    where.add_argument("--site", action="store_true", help="serve deleuze, mire and outpost together")
    where.add_argument("--host", choices=HOSTS, default=None, help="serve this host alone (default deleuze)")
    where.add_argument("--scenario", choices=SCENARIOS, default="clean", help=SCENARIO_HELP)
    where.add_argument("--reboots-into", choices=REBOOT_KINDS, default="salvage-old-init",
                       help="what a crash (SysRq b, a BMC reset, a panic) reboots into (default salvage-old-init)")
    ports = serve.add_argument_group("ports (loopback only; default: the lab-* inventory's)")
    ports.add_argument("--port", type=int, default=None, help="telnet port of the (first) host; 0: a free one")
    ports.add_argument("--raw-port", type=int, default=None, help="raw TCP port for socket:// (0: a free one)")
    ports.add_argument("--bmc-port", type=int, default=None,
                       help="BMC control port of the (first) host (0: a free one); with --shell: the running "
                       "simulator's port to reach")
    ports.add_argument("--no-telnet", action="store_true", help="serve no telnet port")
    ports.add_argument("--stdio", action="store_true", help="serve the console on stdin/stdout")
    ports.add_argument("--ready-file", default=None, help="write the chosen ports as JSON here when listening")
    faults = serve.add_argument_group("faults and parameters")
    faults.add_argument("--salvage-seconds", type=float, default=120.0,
                        help="how long a salvage takes (the real one: about 20 minutes; default 120)")
    faults.add_argument("--sysrq-mask", type=_mask, default=None,
                        help="kernel.sysrq: 0 off, 1 all, else a bit mask such as 16 or 438 (default 1; 0 for sysrq-off)")
    faults.add_argument("--postgres-failed-starts", type=_failed_starts, default=1, metavar="N|never",
                        help="after a crash, the first N starts of PostgreSQL by hand fail (default 1)")
    faults.add_argument("--courier-survives-stop", choices=("once", "always"), default="",
                        help="authdaemond ignores SIGTERM: at the first stop only, or always (then only KILL ends it)")
    faults.add_argument("--stuck-service", default="", metavar="NAME", help="this service never stops (D state)")
    faults.add_argument("--accepted-password-index", type=_index, default=1, metavar="K",
                        help="the 1-based candidate in $CONSOLEBOT_LAB_PASSWORDS that is root's password")
    faults.add_argument("--console-hostname", default=None, help="the (first) host's console hostname")
    faults.add_argument("--bare-login", action="store_true", help="a bare 'login: ' prompt (agetty --nohostname)")
    faults.add_argument("--quiet", action="store_true", help="boot with 'quiet' (no kernel banner or messages)")
    faults.add_argument("--kmsg-during-commands", action="store_true",
                        help="a kernel message lands in the middle of every command's output")
    faults.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply the simulated durations (sv's 7 s wait, init scripts, systemd's stop timeout, "
                        "a power cycle's off time); not the salvage (--salvage-seconds)")
    faults.add_argument("--line-delay-ms", type=float, default=4.0, help="pause between boot lines")
    faults.add_argument("--login-fail-delay-s", type=float, default=1.0, help="pause after a wrong password")
    faults.add_argument("--no-wait", action="store_true", help="boot at once instead of at the first connection")
    front = serve.add_argument_group("front ends and the SSH path")
    front.add_argument("--kvm-menu", action="store_true",
                       help="put an IP-KVM-like port menu in front of the telnet consoles (user admin; password "
                       "from $CONSOLEBOT_LAB_KVM_PASSWORD, default 'kvmpass')")
    front.add_argument("--sp-cli", action="store_true",
                       help="put an ILOM-like service processor CLI ('->', 'start /SP/console') in front of Mire's console")
    front.add_argument("--break-sequence", default=None, help="an in-band byte sequence taken as a BREAK (C escapes)")
    front.add_argument("--shell", action="store_true",
                       help="with --stdio --host NAME: the host's SSH path, a shell with no console "
                       "($SSH_ORIGINAL_COMMAND, -c, or lines on stdin)")
    front.add_argument("-c", dest="shell_command", default=None, metavar="COMMAND", help="with --shell: run this")
    front.add_argument("--ssh-refuses", action="store_true", help="with --shell: fail as a refused SSH login (255)")
    front.add_argument("--ssh-hangs", action="store_true", help="with --shell: accept, then hang")
    front.add_argument("--sshd", action="append", default=[], metavar="HOST=MODE",
                       help="how HOST's sshd answers new logins: accepts (default), refuses or hangs (NSS stuck on a "
                       "dead AFS server); the control channel's 'sshd MODE' changes it while serving")
    front.add_argument("remote_command", nargs="*", metavar="COMMAND",
                       help="with --shell: the command to run (as 'ssh HOST COMMAND' passes it)")
    logs = serve.add_argument_group("recording")
    logs.add_argument("--send-log", default=None,
                      help="JSON lines of every byte sent, with times ({host} in the name, or one file per host)")
    logs.add_argument("--act-log", default=None, help="JSON lines of every input line, BREAK, login and power act")
    serve.set_defaults(handler=serve_cmd)
    lab.set_defaults(handler=lambda a, o: _lab_help(lab))


def _lab_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _sshd_pair(text: str) -> tuple[str, str]:
    host, sep, mode = text.partition("=")
    if not sep:
        raise UsageError(f"--sshd {text}: write HOST=MODE, for example mire=refuses")
    return host.strip(), mode.strip()


def build_options(args: argparse.Namespace, env: dict[str, str] | None = None) -> tuple[Any, list[Any]]:
    """Given parsed ``lab serve`` arguments, return (SimOptions, host profiles); raise ``UsageError``."""
    from consolebot.lab.config import (
        HOSTS,
        KVM_PASSWORD_ENV,
        SimOptions,
        candidate_passwords,
        check_options,
        load_profile,
    )

    env = dict(os.environ) if env is None else env
    if args.site and args.host:
        raise UsageError("give --site or --host, not both")
    if args.site and (args.stdio or args.shell):
        raise UsageError("--stdio and --shell serve one host: use --host NAME")
    if (args.ssh_refuses or args.ssh_hangs or args.shell_command is not None or args.remote_command) \
            and not args.shell:
        raise UsageError("--ssh-refuses, --ssh-hangs, -c and a COMMAND belong to --shell"
                         + (f" (got {' '.join(args.remote_command)!r})" if args.remote_command else ""))
    if args.shell and not args.stdio:
        raise UsageError("--shell works on stdin/stdout: add --stdio")
    names = list(HOSTS) if args.site else [args.host or "deleuze"]
    opts = SimOptions(
        scenario=args.scenario,
        reboots_into=args.reboots_into,
        salvage_seconds=args.salvage_seconds,
        sysrq_mask=args.sysrq_mask,
        postgres_failed_starts=args.postgres_failed_starts,
        courier_survives_stop=args.courier_survives_stop,
        stuck_service=args.stuck_service,
        accepted_password_index=args.accepted_password_index,
        passwords=candidate_passwords(env),
        console_hostname=args.console_hostname,
        bare_login=args.bare_login,
        quiet=args.quiet,
        kmsg_during_commands=args.kmsg_during_commands,
        line_delay_s=args.line_delay_ms / 1000.0,
        login_fail_delay_s=args.login_fail_delay_s,
        time_scale=args.time_scale,
        wait_for_client=not args.no_wait,
        sp_cli=args.sp_cli,
        kvm_menu=args.kvm_menu,
        kvm_password=env.get(KVM_PASSWORD_ENV, "kvmpass"),
        send_log=args.send_log,
        act_log=args.act_log,
        sshd=dict(_sshd_pair(x) for x in args.sshd),
    )
    check_options(opts, names)
    profiles = [load_profile(n) for n in names]
    if args.console_hostname:
        profiles[0].console_hostname = args.console_hostname
    return opts, profiles


def build_server(args: argparse.Namespace, env: dict[str, str] | None = None) -> Any:
    """Given parsed ``lab serve`` arguments (not --shell), return the SiteServer to run."""
    from consolebot.escapes import decode_escapes
    from consolebot.lab.server import SiteServer

    opts, profiles = build_options(args, env)
    ports = plan_ports(args, profiles)
    if not any(p.telnet is not None or p.raw is not None or p.bmc is not None for p in ports.values()) and not args.stdio:
        raise UsageError("nothing to serve: give --port, --raw-port, --bmc-port or --stdio")
    break_seq = decode_escapes(args.break_sequence) if args.break_sequence else None
    return SiteServer(opts, profiles, ports, break_seq, stdio=args.stdio)


def serve_cmd(args: argparse.Namespace, out: Output) -> int:
    t0 = time.monotonic()
    if args.shell:
        from consolebot.lab.sshshell import run_shell_mode

        opts, profiles = build_options(args)
        command = args.shell_command if args.shell_command is not None else (
            " ".join(args.remote_command) if args.remote_command else None)
        return run_shell_mode(profiles[0], opts, args.bmc_port, args.ssh_refuses, args.ssh_hangs, command)
    server = build_server(args)
    info = sys.stderr if args.stdio else sys.stdout

    def ready(desc: dict[str, Any]) -> None:
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(desc, f)
            os.replace(tmp, args.ready_file)
        for name, host in desc["hosts"].items():
            served = ", ".join(f"{k} 127.0.0.1:{v}" for k, v in host.items() if k in ("telnet", "raw", "bmc"))
            if served:
                print(f"consolebot lab: {name} ({host['console_hostname']}): {served}", file=info, flush=True)
        print(f"consolebot lab: scenario {server.opts.scenario}; ready in {time.monotonic() - t0:.2f} s",
              file=info, flush=True)

    try:
        import asyncio  # here, not at the top: consolebot --help must stay fast

        asyncio.run(server.run(ready))
    except OSError as exc:
        raise UsageError(f"cannot listen: {exc.strerror}; choose other ports (--port 0 picks free ones)") from None
    print("consolebot lab: stopped", file=info, flush=True)
    out.result(True, stopped=True)
    return 0


def plan_ports(args: argparse.Namespace, profiles: list[Any]) -> dict[str, Any]:
    """Which ports each host listens on.

    Without --port/--raw-port/--bmc-port every host uses its inventory ports (telnet, raw = telnet + 1,
    BMC). Once any is given, the first host uses what was given (telnet: --port, else a free port; raw:
    only with --raw-port; BMC: --bmc-port, else a free port) and the other hosts free ports. ``--stdio``
    listens on nothing unless asked; ``--no-telnet`` drops the telnet ports.
    """
    from consolebot.lab.server import Ports

    explicit = args.port is not None or args.raw_port is not None or args.bmc_port is not None
    plan: dict[str, Ports] = {}
    for i, prof in enumerate(profiles):
        first = i == 0
        if not explicit:
            p = Ports(prof.telnet_port, prof.raw_port, prof.bmc_port)
            if args.stdio and first:
                p = Ports()
        elif first:
            telnet = args.port if args.port is not None else (None if args.stdio else 0)
            bmc = args.bmc_port if args.bmc_port is not None else (None if args.stdio else 0)
            p = Ports(telnet, args.raw_port, bmc)
        else:
            p = Ports(0, 0 if args.raw_port is not None else None, 0)
        if args.no_telnet:
            p.telnet = None
        plan[prof.name] = p
    return plan
