"""Find the real binaries tests run (Prometheus family, Chromium); skip locally, fail in CI."""

from __future__ import annotations

import os
import shutil

import pytest

#: Debian package names, for the message.
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "pushgateway": "prometheus-pushgateway",
    "chromium": "chromium",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(*names: str) -> str:
    """Path of the first of ``names`` on PATH. Missing: skip the test, or fail it under CI=true."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pkg = PACKAGES.get(names[0], names[0])
    msg = f"{' or '.join(names)} not found (apt-get install {pkg})"
    if in_ci():
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)
