"""``python -m consolebot``."""

from consolebot.cli.main import main

raise SystemExit(main())
