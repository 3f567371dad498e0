"""The recovery's step names (a light module: the CLI lists them without importing the runbook)."""

STEPS = ("preflight", "assess", "boot", "login", "fileserver", "salvage", "services", "postgres", "report")
