"""What the Docker test fixtures hand to the tests: the session and the two machines' projects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleetobs.testing.docker.cli import Docker
from fleetobs.testing.docker.compose import ComposeProject
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.images import Images
from fleetobs.topology.model import Topology


@dataclass
class DockerSession:
    docker: Docker
    compose: str  # the docker-compose binary
    images: Images
    daemon: DockerDaemon
    build_seconds: float


def env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a compose env file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


@dataclass
class Fleet:
    """Both machines' bundles up on one daemon, standing in for two machines."""

    topology: Topology
    docker: Docker
    projects: dict[str, ComposeProject]
    env: dict[str, dict[str, str]]  # machine -> its test.env
    up_seconds: dict[str, float] = field(default_factory=dict)
    healthy_seconds: float = 0.0

    def url(self, machine: str, port_variable: str) -> str:
        """A published service of ``machine`` from the host (test.env's loopback ports)."""
        return f"http://127.0.0.1:{self.env[machine][port_variable]}"

    def hub(self, machine: str) -> str:
        return self.url(machine, "HUB_HOST_PORT")

    def container(self, machine: str, service: str) -> str:
        return str(self.projects[machine].container(service)["Id"])
