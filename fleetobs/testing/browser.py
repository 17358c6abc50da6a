"""Debian's Chromium, headless, as a test's real browser (skips locally when missing,
fails under CI=true, like every binary: fleetobs.testing.binaries)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from fleetobs.testing.binaries import require_binary


def _run(url: str, *flags: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    exe = require_binary("chromium", "chromium-browser")
    with tempfile.TemporaryDirectory(prefix="fleetobs-chromium-") as profile:
        argv = [exe, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                f"--user-data-dir={profile}", *flags, url]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def dump_dom(url: str, *, virtual_time_ms: int = 0) -> str:
    """The DOM after the page loaded (and, with ``virtual_time_ms``, after its scripts ran)."""
    flags = ["--dump-dom"]
    if virtual_time_ms:
        flags.append(f"--virtual-time-budget={virtual_time_ms}")
    return _run(url, *flags).stdout


def screenshot(url: str, path: Path, width: int = 1400, height: int = 1100) -> Path:
    _run(url, f"--screenshot={path}", f"--window-size={width},{height}", "--hide-scrollbars")
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
    return path
