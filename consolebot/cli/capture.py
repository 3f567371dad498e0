"""``consolebot capture HOST... [--for SECONDS] [--dir DIR] [--wait]``: read-only, unattended."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "capture",
        parents=[common],
        help="record consoles read-only, many at once, into transcripts",
        description="Capture the consoles of HOSTs into DIR/HOST.{raw,log,jsonl}, read-only, in one event loop. "
        "A writer (consolebot console, recover) gets a console through its lock; the capture marks the gap "
        "and resumes. Lost connections are retried with backoff, each gap marked.",
    )
    p.add_argument("hosts", nargs="+", metavar="HOST")
    p.add_argument("--for", dest="for_s", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: until SIGINT/SIGTERM)")
    p.add_argument("--dir", default=None, help="transcript folder (default: $XDG_STATE_HOME/consolebot/transcripts)")
    p.add_argument("--wait", action="store_true", help="keep trying when a first connection fails (else exit 4)")
    p.add_argument("--rules", default=None, help="a site rules TOML file, added to each host's own")
    p.add_argument("--alert-severity", choices=("info", "notice", "warning", "critical", "none"), default="warning",
                   help="report events this severe or worse on stderr as they happen (default warning)")
    p.add_argument("--alert-command", metavar="CMD", default=None,
                   help="also run CMD for each alert, with the event in CONSOLEBOT_HOST/KIND/SEVERITY/LINE/TEXT/TIME")
    p.set_defaults(handler=capture_cmd)


def capture_cmd(args: argparse.Namespace, out: Output) -> int:
    import signal

    # SIGINT and SIGTERM stop the capture wherever they land (loading, connecting, capturing, closing):
    # they only ask the loop to stop, which then drains, flushes and closes every transcript.
    stop_asked: list[int] = []
    loop_box: list[Any] = []

    def ask_stop(signum: int, frame: object) -> None:
        stop_asked.append(signum)
        for loop_ in loop_box:
            loop_.stop()

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _capture(args, out, stop_asked, loop_box)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _capture(args: argparse.Namespace, out: Output, stop_asked: list[int], loop_box: list[Any]) -> int:
    from consolebot.inventory.load import load_inventory
    from consolebot.locks import CaptureClaim
    from consolebot.paths import ensure_local_dir, transcript_dir
    from consolebot.recognise.classifier import Classifier
    from consolebot.recognise.timeline import Timeline
    from consolebot.runbooks.capture import CapturedConsole, CaptureLoop
    from consolebot.session.transcript import Transcript, install_sighup_reopen
    from consolebot.wiring import console_factory, host_rules, known_secrets

    if args.for_s is not None and args.for_s <= 0:
        raise UsageError("--for wants a positive number of seconds")
    inv = load_inventory(args.inventory)
    hosts = [inv.get(name) for name in dict.fromkeys(args.hosts)]
    factories = {h.name: console_factory(h) for h in hosts}
    folder = ensure_local_dir(Path(args.dir) if args.dir else transcript_dir())
    warned: list[str] = []

    def warn_once(text: str) -> None:
        if not warned:
            out.warn(text)
        warned.append(text)

    from consolebot.runbooks.alerts import Alerter

    alerter = None if args.alert_severity == "none" else Alerter(args.alert_severity, args.alert_command)
    consoles = []
    for h in hosts:
        known_secrets(h, out.redactor, warn_once)
        rules, severities = host_rules(h, args.rules)
        consoles.append(
            CapturedConsole(
                h.name,
                factories[h.name],
                Transcript(folder, h.name, out.redactor, buffered=True),  # written each loop round
                CaptureClaim(h.name),
                classifier=Classifier(rules, severities),
                timeline=Timeline(),
                alert=None if alerter is None else (lambda c, evs: alerter.many(c.name, evs)),
                alert_severities=None if alerter is None else alerter.severities,
            )
        )
    install_sighup_reopen()
    raise_file_limit(len(consoles), out)

    def behind(round_s: float) -> None:
        out.warn(f"capture is falling behind: a round of reads took {round_s:.1f} s, so events and alerts are up to "
                 f"that late (nothing is lost: the bytes wait in the kernel); {len(consoles)} consoles need more than "
                 "the one core this process can use: split the hosts between two captures")

    loop = CaptureLoop(consoles, flushed=None if alerter is None else alerter.kick, behind=behind)
    loop_box.append(loop)
    if stop_asked:
        loop.stop()
    try:
        loop.start(args.wait)
        if not stop_asked:
            out.say(f"capturing {len(consoles)} console(s) into {folder}"
                    + (f" for {args.for_s:g} s" if args.for_s else ""))
            loop.run(args.for_s)
        if stop_asked:
            out.say("stopping")
        summary = loop.summary()
    finally:
        loop.close()
        if alerter is not None:
            alerter.close()
    for name, info in summary.consoles.items():
        out.say(f"  {name}: {info['bytes']} bytes, {info['lines']} lines, {info['events']} events, "
                f"{info['gaps']} gaps, phase {info['phase']}")
    out.say(f"  longest round of reads: {summary.round_s_max:.3f} s (how late events could be)")
    out.result(True, dir=str(folder), consoles=summary.consoles, round_s_max=summary.round_s_max)
    return 0


FDS_PER_CONSOLE = 4  # the connection and three transcript files


def raise_file_limit(consoles: int, out: Output) -> None:
    """Raise RLIMIT_NOFILE to what the capture needs, and say so when the hard limit is too low."""
    import resource

    need = consoles * FDS_PER_CONSOLE + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < need:
        out.warn(f"open-file limit {hard} is too low for {consoles} consoles (need {need}); "
                 f"raise it (ulimit -Hn, or LimitNOFILE= in the systemd unit); consoles past "
                 f"{(target - 64) // FDS_PER_CONSOLE} will fail to connect")
