"""The base of every "your input is wrong" error (no dependencies: the CLI imports it
at start-up, before pydantic, so a healthcheck stays fast)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input (a file, a setting, an argument); its message says what and where."""
