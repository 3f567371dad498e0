"""Runbooks: capture, and (to come) the reboot ladder and the Deleuze recovery."""
