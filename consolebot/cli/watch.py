"""``consolebot watch FILE|-``: a boot timeline from a transcript, live or after the fact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from consolebot.cli.output import Output
from consolebot.errors import UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "watch",
        parents=[common],
        help="classify a console transcript into a boot timeline",
        description="Read raw console bytes or consolebot's own text log (its timestamps are reused) from FILE "
        "or - (stdin) and print a timeline: time, phase, event, line. --json prints one object per event and "
        "a summary; 'ok' means the file was read, the boots' health is in 'boots' and 'worst_severity'.",
    )
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("--follow", "-f", action="store_true", help="keep reading a growing file, like tail -f")
    p.add_argument("--silent-s", type=float, default=120.0,
                   help="with --follow: report console.silent after this many seconds without a byte")
    p.add_argument("--rules", default=None, help="a site rules TOML file (add kinds, severities, benign lines)")
    p.add_argument("--min-severity", choices=("info", "notice", "warning", "critical"), default="info",
                   help="print only events at least this severe (the summary counts all)")
    p.set_defaults(handler=watch_cmd)


def watch_cmd(args: argparse.Namespace, out: Output) -> int:
    from consolebot.recognise.events import SEVERITY_RANK
    from consolebot.recognise.rules import builtin_rules, load_site_rules
    from consolebot.runbooks.watch import Watcher, open_source

    rules = builtin_rules()
    severities: dict[str, str] = {}
    if args.rules:
        extra, severities = load_site_rules(Path(args.rules))
        rules = extra + rules  # site rules first: their benign marks win
    if args.file == "-":
        stream = sys.stdin.buffer
        name = "-"
    else:
        path = Path(args.file)
        if path.is_dir():
            raise UsageError(f"{path} is a folder; give a transcript file (NAME.raw or NAME.log)")
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        name = str(path)
    min_rank = SEVERITY_RANK[args.min_severity]
    watcher = Watcher(rules, severities)
    silent_reported = [False]

    def show(batch: list[tuple[Any, str | None, str]]) -> None:
        for ev, changed, phase_now in batch:
            if SEVERITY_RANK.get(ev.severity, 0) < min_rank:
                continue
            if out.json_mode:
                obj = ev.to_json()
                obj["phase"] = phase_now
                out.emit({"event": obj}, flush=args.follow)
            else:
                when = (ev.time or "").replace("T", " ")[:23] or "-"
                fields = " ".join(f"{k}={v}" for k, v in ev.fields.items() if v)
                mark = "*" if changed else " "
                line = f"{when:23} {mark}{phase_now:12} {ev.kind:24} line {ev.line:<6} {fields}".rstrip()
                if args.follow:
                    out.say(line)
                else:
                    out.stdout.write(line + "\n")

    def on_quiet(seconds: float) -> None:
        show(watcher.idle())
        if seconds >= args.silent_s and not silent_reported[0]:
            silent_reported[0] = True
            show(watcher.silent(seconds))

    source = open_source(stream)
    try:
        for data, when in source.chunks(follow=args.follow, on_quiet=on_quiet):
            silent_reported[0] = False
            show(watcher.feed(data, when))
        show(watcher.close())
    except KeyboardInterrupt:
        show(watcher.close())
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    summary = watcher.timeline.summary()
    if not out.json_mode:
        for b in summary["boots"]:
            out.say(f"boot {b['index']}: lines {b['start_line']}-{b['end_line'] or 'end'}, phase {b['phase']}, "
                    f"worst {b['worst_severity']}" + (f", failed: {', '.join(b['failed_services'])}" if b["failed_services"] else ""))
    out.result(True, file=name, format="text-log" if source.text_log else "raw", bytes=watcher.bytes,
               events=watcher.count, **summary)
    return 0
