"""Run the real ``fleetobs`` console entry point in a child process, as compose would."""

from __future__ import annotations

import asyncio
import os
import sys


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, str, str]:
    """``python -m fleetobs.cli.main ARGS`` -> (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetobs.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
