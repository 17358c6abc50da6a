"""One test run's names on a shared daemon, and the sweep of runs that died.

Several checkouts may run the Docker tests on one machine at once (one daemon): each run
gets its own compose project names, cross network and host ports, so none removes or
collides with another's. Each run records what it creates in a file named by its id,
with its PID; a later run sweeps what a run that is no longer alive left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from fleetobs.testing.docker.cli import Docker
from fleetobs.testing.docker.compose import sweep


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP on ``host`` now (Alertmanager's cluster port is both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((host, port))
            except OSError:
                continue
            return port


@dataclass
class Run:
    id: str
    registry: Path | None  # None: not recorded (a kept development run)
    projects: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, registry_dir: Path, run_id: str | None = None) -> Run:
        run_id = run_id or secrets.token_hex(3)
        registry_dir.mkdir(parents=True, exist_ok=True)
        return cls(run_id, registry_dir / f"{run_id}.json")

    def project(self, role: str) -> str:
        """The compose project name for ``role`` (a machine, or a test's own project)."""
        name = f"fleetobs-test-{self.id}-{role}"
        if name not in self.projects:
            self.projects.append(name)
            self._save()
        return name

    def network(self, role: str) -> str:
        name = f"fleetobs-{role}-{self.id}"
        if name not in self.networks:
            self.networks.append(name)
            self._save()
        return name

    def _save(self) -> None:
        if self.registry is not None:
            self.registry.write_text(json.dumps({"pid": os.getpid(), "projects": self.projects,
                                                 "networks": self.networks}))

    def sweep(self, docker: Docker) -> list[str]:
        left = sweep(docker, self.projects, self.networks)
        if self.registry is not None:
            self.registry.unlink(missing_ok=True)
        return left


def sweep_dead_runs(docker: Docker, registry_dir: Path) -> list[str]:
    """Remove what runs whose process is gone left behind (a crash, a kill -9)."""
    left: list[str] = []
    if not registry_dir.is_dir():
        return left
    for f in registry_dir.glob("*.json"):
        try:
            data = json.loads(f.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        left += sweep(docker, list(data.get("projects", [])), list(data.get("networks", [])))
        f.unlink(missing_ok=True)
    return left
