"""``python -m consolebot.lab.guest`` (``scripts/lab-build``): build or refresh the lab cache."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consolebot.errors import ConsoleBotError
from consolebot.lab.guest.builder import LabBuilder, default_cache_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lab-build",
        description="Fetch the newest Debian cloud kernel and runit (apt-get download + dpkg -x) into the lab "
        "cache and build the guest's busybox initramfs; reuse what the cache has.",
    )
    parser.add_argument("--refresh", action="store_true", help="apt-get update and fetch newer packages if any")
    parser.add_argument("--cache", type=Path, default=None,
                        help=f"cache folder (default: $CONSOLEBOT_LAB_CACHE or {default_cache_dir()})")
    parser.add_argument("--json", action="store_true", help="print what was resolved as JSON")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(f"lab-build: {text}", file=sys.stderr, flush=True)

    try:
        kit = LabBuilder(args.cache, log=log).ensure(refresh=args.refresh)
    except ConsoleBotError as exc:
        print(f"lab-build: {exc}", file=sys.stderr)
        return exc.exit_code
    info = kit.describe()
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
