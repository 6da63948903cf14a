"""Importing a file: read, map, normalise, plan, apply, report (SPEC §3)."""
