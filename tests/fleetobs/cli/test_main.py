"""Every command, present and future, has --help and starts without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer

from fleetobs.cli.main import app, main


def _command_paths() -> Iterator[list[str]]:
    root = typer.main.get_command(app)

    def walk(cmd: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(root, [])


COMMANDS = list(_command_paths())


def test_the_command_tree_is_not_empty() -> None:
    assert ["topology", "check"] in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "fleetobs")
def test_every_command_has_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert usage.split("Usage:")[1].split("[")[0].split() == ["fleetobs", *path]


def test_version_from_the_console_script() -> None:
    proc = subprocess.run([sys.executable, "-m", "fleetobs.cli.main", "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (proc.returncode, proc.stdout) == (0, "fleetobs 0.1.0\n")


def test_cli_import_does_not_pull_in_the_server_stack() -> None:
    # `fleetobs probe` is a compose healthcheck: the CLI module itself must stay light.
    code = ("import sys, fleetobs.cli.main; "
            "heavy = [m for m in ('fastapi', 'uvicorn', 'pynvml', 'opentelemetry.sdk', 'grafanalib') "
            "if m in sys.modules]; print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
