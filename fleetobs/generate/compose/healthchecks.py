"""Healthchecks of the bundle's services. Docker's contract: exit 0 healthy, 1 unhealthy, 2
reserved, so every command here exits 0 or 1: our own scripts (fleetobs/container/) do by
construction, third-party tools are wrapped as ``CMD-SHELL <tool> || exit 1``.

Never ``curl`` against an agent: the agents' health ports are ZeroMQ, and their image has
no curl. Groups run ``group/healthcheck.py`` (standard library and pyzmq, mounted from the
bundle) over ZeroMQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Where the bundle's group files are mounted inside a group container.
MOUNT_DIR = "/fleetobs"
SCRIPT = f"{MOUNT_DIR}/healthcheck.py"
MANIFEST = f"{MOUNT_DIR}/group.json"
#: Inside the fleetobs image the same script is a module.
MODULE = "fleetobs.container.healthcheck"


@dataclass(frozen=True)
class Timing:
    interval: str = "10s"
    timeout: str = "10s"  # generous: a loaded host takes seconds to start a Python
    retries: int = 3
    start_period: str = "30s"

    def apply(self, test: list[str]) -> dict[str, Any]:
        return {"test": test, "interval": self.interval, "timeout": self.timeout,
                "retries": self.retries, "start_period": self.start_period}


def shell(command: str, timing: Timing = Timing()) -> dict[str, Any]:
    """A third-party tool whose exit codes are not 0/1-only, mapped onto Docker's contract."""
    return timing.apply(["CMD-SHELL", f"{command} || exit 1"])


def group(timing: Timing, probe_timeout: float = 3.0) -> dict[str, Any]:
    """Every agent of the group over ZeroMQ (see fleetobs/container/healthcheck.py)."""
    return timing.apply(["CMD", "python3", SCRIPT, "group", MANIFEST, "--timeout", f"{probe_timeout:g}"])


def fleetobs_http(url: str, timing: Timing = Timing()) -> dict[str, Any]:
    """An HTTP endpoint of a fleetobs process (the hub's /ready, the exporter's /metrics)."""
    return timing.apply(["CMD", "python3", "-m", MODULE, "http", url, "--timeout", "3"])


def relay(routes: list[str], timing: Timing = Timing()) -> dict[str, Any]:
    return timing.apply(["CMD", "python3", "-m", MODULE, "relay", *routes, "--timeout", "3"])


def group_start_period(agents: int, constructor_seconds: float = 20.0) -> str:
    """Long enough for a launcher that starts the agents one after the other (~20 s
    constructors each, shared ports' owners first) before failures count; a success counts
    as soon as it comes, so a quicker launcher is healthy sooner."""
    return f"{int(60 + constructor_seconds * agents)}s"
