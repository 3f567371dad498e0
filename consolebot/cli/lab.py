"""``consolebot lab serve``: the built-in simulated console."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import UsageError

DEFAULT_TELNET_PORT = 7101
DEFAULT_RAW_PORT = 7102


def _mask(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sysrq-mask wants a number such as 0, 1, 16 or 438, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("--sysrq-mask cannot be negative")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    lab = sub.add_parser("lab", help="the built-in simulated server")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    serve = lab_sub.add_parser(
        "serve",
        parents=[common],
        help="serve a simulated console (telnet, raw TCP, stdio) on loopback",
        description="Serve a simulated Debian server's console on 127.0.0.1. It boots in the real formats "
        "of kernel, sysvinit and OpenAFS, answers BREAK + key as the kernel does, and offers a login "
        "(user root; password from $CONSOLEBOT_LAB_PASSWORD, default 'labpass').",
    )
    serve.add_argument("--port", type=int, default=DEFAULT_TELNET_PORT, help="telnet port (0: pick a free one)")
    serve.add_argument("--raw-port", type=int, default=None, help="raw TCP port for socket:// (0: pick a free one)")
    serve.add_argument("--no-telnet", action="store_true", help="serve no telnet port")
    serve.add_argument("--stdio", action="store_true", help="serve the console on stdin/stdout")
    serve.add_argument("--break-sequence", default=None, help="an in-band byte sequence taken as a BREAK (C escapes)")
    serve.add_argument("--sysrq-mask", type=_mask, default=1, help="kernel.sysrq: 0 off, 1 all, else a bit mask")
    serve.add_argument("--console-hostname", default="deleuze-sim")
    serve.add_argument("--no-wait", action="store_true", help="boot at once instead of at the first connection")
    serve.add_argument("--line-delay-ms", type=float, default=4.0, help="pause between boot lines")
    serve.add_argument("--login-fail-delay-s", type=float, default=1.0)
    serve.add_argument("--send-log", default=None, help="JSON lines of every byte sent, with times")
    serve.add_argument("--act-log", default=None, help="JSON lines of every input line, BREAK and login")
    serve.add_argument(
        "--kvm-menu",
        action="store_true",
        help="put an IP-KVM-like port menu in front of the telnet console (user admin; password from "
        "$CONSOLEBOT_LAB_KVM_PASSWORD, default 'kvmpass')",
    )
    serve.add_argument("--ready-file", default=None, help="write the chosen ports as JSON here when listening")
    serve.set_defaults(handler=serve_cmd)
    lab.set_defaults(handler=lambda a, o: _lab_help(lab))


def _lab_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def serve_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.escapes import decode_escapes
    from consolebot.lab.machine import MachineConfig
    from consolebot.lab.server import run_servers

    config = MachineConfig(
        console_hostname=args.console_hostname,
        password=os.environ.get("CONSOLEBOT_LAB_PASSWORD", "labpass"),
        sysrq_mask=args.sysrq_mask,
        line_delay_s=args.line_delay_ms / 1000.0,
        login_fail_delay_s=args.login_fail_delay_s,
        wait_for_client=not args.no_wait,
        send_log=args.send_log,
        act_log=args.act_log,
    )
    telnet_port = None if (args.no_telnet or args.stdio) and args.port == DEFAULT_TELNET_PORT else args.port
    if args.no_telnet:
        telnet_port = None
    if telnet_port is None and args.raw_port is None and not args.stdio:
        raise UsageError("nothing to serve: give --port, --raw-port or --stdio")
    break_seq = decode_escapes(args.break_sequence) if args.break_sequence else None
    info = sys.stderr if args.stdio else sys.stdout

    def ready(ports: dict[str, int]) -> None:
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(ports, f)
            os.replace(tmp, args.ready_file)
        if ports:
            desc = " ".join(f"{k} 127.0.0.1:{v}" for k, v in ports.items())
            print(f"consolebot lab: serving {desc}", file=info, flush=True)

    try:
        kvm = (
            {"user": "admin", "password": os.environ.get("CONSOLEBOT_LAB_KVM_PASSWORD", "kvmpass")}
            if args.kvm_menu
            else None
        )
        asyncio.run(run_servers(config, telnet_port, args.raw_port, args.stdio, break_seq, ready, kvm))
    except OSError as exc:
        raise UsageError(f"cannot listen: {exc.strerror}; choose another --port/--raw-port") from None
    out.result(True, stopped=True)
    return 0
