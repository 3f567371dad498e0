"""The recovery's step names (a light module: the CLI lists them without importing the runbook)."""

STEPS = ("preflight", "prepare", "assess", "boot", "login", "fileserver", "salvage", "services", "postgres", "others",
         "report")
# the steps that work on the main host's console (``--only others`` attaches to none of them)
MAIN_STEPS = STEPS[2:9]
