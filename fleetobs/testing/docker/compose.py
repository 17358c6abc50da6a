"""docker-compose 1.29 projects the tests bring up, and the sweep that removes them.

Every project, network and volume a test creates is removed at the end, also when a
test fails: :meth:`ComposeProject.down` (``down -v --remove-orphans``), then
:func:`sweep` by the compose project label for anything ``down`` missed (a container
started by hand, a project whose ``up`` failed half-way).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetobs.testing.docker.cli import Docker, DockerError, run

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass
class ComposeProject:
    compose: str  # the docker-compose binary
    docker: Docker
    directory: Path
    project: str
    files: Sequence[str] = ("docker-compose.yml",)
    env_file: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    up_retries: list[str] = field(default_factory=list)  # why ``up`` had to be run again

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        argv = [self.compose, "--project-name", self.project, "--project-directory", str(self.directory)]
        if self.env_file:
            argv += ["--env-file", str(self.directory / self.env_file)]
        for f in self.files:
            argv += ["-f", str(self.directory / f)]
        return run([*argv, *args], timeout=timeout, env=self.env, cwd=self.directory, check=check).stdout

    def up(self, timeout: float = 300, attempts: int = 3) -> float:
        """``up -d`` (waits for ``service_healthy`` dependencies); returns the seconds it took.

        compose 1.29 gives up on the whole project the moment a dependency is seen
        unhealthy, even when it recovers a check later (a healthcheck that missed its
        timeout on a loaded machine). ``up`` is idempotent, so that case is retried:
        :attr:`up_retries` says how often it happened."""
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                self("up", "-d", "--no-build", "--remove-orphans",
                     timeout=max(1.0, timeout - (time.monotonic() - started)))
                break
            except DockerError as exc:
                if "is unhealthy" not in str(exc) or attempt == attempts:
                    raise
                self.up_retries.append(str(exc).strip().splitlines()[-2:][0])
        return time.monotonic() - started

    def down(self, timeout: float = 120) -> None:
        self("down", "-v", "--remove-orphans", "--timeout", "5", timeout=timeout, check=False)

    def container_ids(self, all_: bool = True) -> list[str]:
        return self.docker.ids("ps", *(["-a"] if all_ else []), "-q", "--no-trunc",
                               "--filter", f"label={PROJECT_LABEL}={self.project}")

    def containers(self) -> list[dict[str, Any]]:
        ids = self.container_ids()
        return self.docker.inspect(*ids) if ids else []

    def container(self, service: str) -> dict[str, Any]:
        found = [c for c in self.containers() if c["Config"]["Labels"].get(SERVICE_LABEL) == service]
        if len(found) != 1:
            raise DockerError(f"{self.project}: {len(found)} containers for service {service!r}")
        return found[0]

    def services(self) -> list[str]:
        return sorted(self("config", "--services", timeout=60).split())

    def config(self) -> dict[str, Any]:
        """The resolved configuration (``config`` output, as compose will run it)."""
        import yaml

        data = yaml.safe_load(self("config", timeout=60))
        assert isinstance(data, dict)
        return data


def health(container: Mapping[str, Any]) -> str:
    """``healthy``, ``unhealthy``, ``starting``; without a healthcheck the state
    (``running``, ``exited``, ...)."""
    state = container["State"]
    h = state.get("Health")
    return str(h["Status"]) if isinstance(h, dict) else str(state["Status"])


def has_healthcheck(container: Mapping[str, Any]) -> bool:
    return isinstance(container["State"].get("Health"), dict)


def ready(container: Mapping[str, Any]) -> bool:
    """Healthy, or running when it has no healthcheck."""
    return health(container) == ("healthy" if has_healthcheck(container) else "running")


def service_of(container: Mapping[str, Any]) -> str:
    return str(container["Config"]["Labels"].get(SERVICE_LABEL) or container["Name"].lstrip("/"))


def wait_healthy(project: ComposeProject, timeout: float, services: Sequence[str] | None = None,
                 ) -> dict[str, str]:
    """Wait until every (listed) container is :func:`ready`; their last states."""
    deadline = time.monotonic() + timeout
    while True:
        containers = [c for c in project.containers() if services is None or service_of(c) in services]
        states = {service_of(c): health(c) for c in containers}
        if containers and all(ready(c) for c in containers):
            return states
        if time.monotonic() > deadline:
            bad = {service_of(c): health(c) for c in containers if not ready(c)}
            raise DockerError(f"{project.project} not healthy after {timeout:.0f}s: {json.dumps(bad)}")
        time.sleep(1.0)


def diagnose(project: ComposeProject, lines: int = 15) -> str:
    """The containers that are not :func:`ready`: their last health checks and log lines."""
    out: list[str] = []
    try:
        containers = project.containers()
    except DockerError as exc:
        return f"(cannot list {project.project}: {exc})"
    for c in containers:
        if ready(c):
            continue
        out.append(f"--- {project.project} {service_of(c)}: {health(c)} (exit {c['State'].get('ExitCode')})")
        for check in (c["State"].get("Health") or {}).get("Log", [])[-2:]:
            out.append(f"    check exit {check.get('ExitCode')}: {str(check.get('Output', '')).strip()[-500:]}")
        logs = run([project.docker.binary, "logs", "--tail", str(lines), c["Id"]], timeout=30, check=False)
        out += ["    " + line for line in (logs.stdout + logs.stderr).strip().splitlines()[-lines:]]
    return "\n".join(out) or f"(every container of {project.project} is ready)"


def sweep(docker: Docker, projects: Sequence[str], networks: Sequence[str] = ()) -> list[str]:
    """Remove every container, network and volume of ``projects`` and the named networks.
    Returns what was still there (for the report), never raises."""
    left: list[str] = []
    for project in projects:
        label = f"label={PROJECT_LABEL}={project}"
        for kind, lister, remover in (
                ("container", ("ps", "-aq", "--filter", label), ("rm", "-f", "-v")),
                ("network", ("network", "ls", "-q", "--filter", label), ("network", "rm")),
                ("volume", ("volume", "ls", "-q", "--filter", label), ("volume", "rm", "-f"))):
            try:
                ids = docker.ids(*lister)
                if ids:
                    left += [f"{kind} {i}" for i in ids]
                    docker(*remover, *ids, timeout=120, check=False)
            except DockerError:
                left.append(f"{kind}s of {project}: listing failed")
    for name in networks:
        if docker.ok("network", "inspect", name):
            left.append(f"network {name}")
            docker("network", "rm", name, timeout=60, check=False)
    return left
