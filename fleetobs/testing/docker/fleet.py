"""What the Docker test fixtures hand to the tests: the session and the two machines' projects."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleetobs.testing.docker.cli import SOCKET, Docker, DockerError
from fleetobs.testing.docker.compose import ComposeProject, diagnose, wait_healthy
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.images import Images
from fleetobs.testing.docker.runs import Run, free_port
from fleetobs.topology.model import Topology


@dataclass
class DockerSession:
    docker: Docker
    compose: str  # the docker-compose binary
    images: Images
    daemon: DockerDaemon
    build_seconds: float
    run: Run  # this run's names on the (maybe shared) daemon


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


MACHINES = ("mainpc", "pc2")


def project(session: DockerSession, root: Path, machine: str,
            host_ports: dict[str, int] | None = None) -> ComposeProject:
    """``machine``'s test bundle under ``root`` (see :func:`.stage.stage_bundles`), named for
    this run. The shell environment wins over test.env: this run's project name, cross
    network and ``host_ports``, the images just built, the Docker socket's group."""
    directory = root / "compose" / machine
    images = session.images
    env = {
        "COMPOSE_PROJECT_NAME": session.run.project(machine),
        "FLEETOBS_CROSS_NETWORK": session.run.network("cross"),
        "FLEETOBS_IMAGE": images.fleetobs, "PROMETHEUS_IMAGE": images.prometheus,
        "ALERTMANAGER_IMAGE": images.alertmanager, "LOKI_IMAGE": images.loki,
        "REDIS_IMAGE": images.redis, "NATS_IMAGE": images.nats,
        "DOCKER_GID": str(SOCKET.stat().st_gid),
        **{k: str(v) for k, v in (host_ports or {}).items()},
    }
    return ComposeProject(session.compose, session.docker, directory, env["COMPOSE_PROJECT_NAME"],
                          files=("docker-compose.test.yml",), env_file="test.env", env=env)


def bring_up(session: DockerSession, topology: Topology, root: Path, *, free_ports: bool = True) -> Fleet:
    """Both machines' projects up (side by side) and healthy, on free host ports (else
    test.env's). On failure raises :class:`DockerError` with a diagnosis; the caller
    tears down (:func:`tear_down`) in every case."""
    docker = session.docker
    projects: dict[str, ComposeProject] = {}
    values: dict[str, dict[str, str]] = {}
    for m in MACHINES:
        test_env = env_file(root / "compose" / m / "test.env")
        ports = {k: free_port() for k in test_env if k.endswith("_HOST_PORT")} if free_ports else {}
        projects[m] = project(session, root, m, ports)
        values[m] = {**test_env, **projects[m].env}
    fleet = Fleet(topology, docker, projects, values)
    cross = session.run.network("cross")
    if not docker.ok("network", "inspect", cross):
        docker("network", "create", "--label", "fleetobs.test=1", cross, timeout=60)
    started = time.monotonic()
    errors: dict[str, BaseException] = {}

    def up(machine: str) -> None:
        try:
            fleet.up_seconds[machine] = projects[machine].up(timeout=400)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors[machine] = exc

    threads = [threading.Thread(target=up, args=(m,)) for m in MACHINES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise next(iter(errors.values()))
        for p in projects.values():
            wait_healthy(p, timeout=120)
    except DockerError as exc:
        raise DockerError(f"{exc}\n" + "\n".join(diagnose(p) for p in projects.values())) from None
    fleet.healthy_seconds = time.monotonic() - started
    return fleet


def tear_down(session: DockerSession, root: Path) -> list[str]:
    """Down both projects and sweep them and the cross network; what the sweep still found."""
    projects = [project(session, root, m) for m in MACHINES]
    for p in projects:
        p.down()
    from fleetobs.testing.docker.compose import sweep

    return sweep(session.docker, [p.project for p in projects], [session.run.network("cross")])
