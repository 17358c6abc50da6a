"""How commands fail: one line on stderr saying what and where, and an exit code."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

#: Exit codes shared by all commands.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (check errors, unhealthy agent)
EXIT_USAGE = 2  # bad input: arguments, files, settings
EXIT_UNREACHABLE = 3  # the target (an agent, the hub) did not answer at all


class CLIError(Exception):
    """Raised by commands for bad input; ``main`` prints it as one line."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise CLIError(message, code)


def print_error(message: str) -> None:
    # One line: newlines inside messages would break log scrapers and healthchecks.
    sys.stderr.write("fleetobs: error: " + " ".join(message.split()) + "\n")


def exit_with(code: int) -> NoReturn:
    raise typer.Exit(code)
