"""The real Docker daemon, the locally built images, both machines' projects on it.

Session: a daemon (started here when none answers, stopped at the end if we started it),
the images (built once; the base is cached by content key). Module ``fleet``: the MainPC
and PC2 bundles (``docker-compose.test.yml`` + ``test.env`` from ``fleetobs build``) as
two compose projects, torn down and swept by label at the end, also on failure.
Locally a missing docker, dockerd, docker-compose or debootstrap skips; under CI=true
it fails.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.testing.binaries import in_ci
from fleetobs.testing.docker.cli import SOCKET, Docker, DockerError, compose_binary, docker_binary
from fleetobs.testing.docker.compose import ComposeProject, diagnose, sweep, wait_healthy
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.fleet import DockerSession, Fleet, env_file
from fleetobs.testing.docker.images import build_all, daemon_marker
from fleetobs.testing.docker.stage import stage_bundles
from fleetobs.topology.load import load_topology

MACHINES = ("mainpc", "pc2")
CROSS_NETWORK = "fleetobs-cross"
#: Development only: FLEETOBS_DOCKER_KEEP=1 leaves both projects up after the tests (in a
#: fixed folder), and the next run reuses them (``up -d`` on unchanged containers is quick).
KEEP = os.environ.get("FLEETOBS_DOCKER_KEEP") == "1"
KEEP_ROOT = Path("/tmp/fleetobs-docker-keep")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Docker tests last: in CI their images build in the background meanwhile."""
    here = Path(__file__).parent
    items.sort(key=lambda item: here in Path(str(item.path)).parents)


def _unavailable(msg: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def docker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerSession]:
    binary, compose = docker_binary(), compose_binary()
    missing = [name for name, found in (("docker", binary), ("docker-compose", compose),
                                        ("dockerd", shutil.which("dockerd")),
                                        ("debootstrap", shutil.which("debootstrap"))) if not found]
    if missing:
        _unavailable(f"{', '.join(missing)} not found (apt-get install docker.io docker-compose debootstrap)")
    assert binary is not None and compose is not None
    if os.geteuid() != 0:
        _unavailable("the Docker tests run as root (dockerd, debootstrap)")
    daemon = DockerDaemon(tmp_path_factory.mktemp("dockerd") / "dockerd.log", SOCKET, marker=daemon_marker())
    try:
        daemon.start()
    except DockerError as exc:
        pytest.fail(f"docker daemon: {exc}", pytrace=False)
    try:
        docker = Docker(binary)
        started = time.monotonic()
        images = build_all(docker)
        yield DockerSession(docker, compose, images, daemon, time.monotonic() - started)
    finally:
        daemon.stop()


def _project(session: DockerSession, root: Path, machine: str) -> ComposeProject:
    directory = root / "compose" / machine
    values = env_file(directory / "test.env")
    images = session.images
    env = {  # the shell environment wins over test.env: the images just built, the socket's group
        "FLEETOBS_IMAGE": images.fleetobs, "PROMETHEUS_IMAGE": images.prometheus,
        "ALERTMANAGER_IMAGE": images.alertmanager, "LOKI_IMAGE": images.loki,
        "REDIS_IMAGE": images.redis, "NATS_IMAGE": images.nats,
        "DOCKER_GID": str(SOCKET.stat().st_gid),
    }
    return ComposeProject(session.compose, session.docker, directory, values["COMPOSE_PROJECT_NAME"],
                          files=("docker-compose.test.yml",), env_file="test.env", env=env)


@pytest.fixture(scope="module")
def fleet(docker_session: DockerSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    topology = load_topology(None)
    root = stage_bundles(topology, KEEP_ROOT if KEEP else tmp_path_factory.mktemp("bundles"))
    docker = docker_session.docker
    projects = {m: _project(docker_session, root, m) for m in MACHINES}
    names = [p.project for p in projects.values()]
    if not KEEP:
        sweep(docker, names, [CROSS_NETWORK])  # what a crashed earlier run left
    fleet = Fleet(topology, docker, projects,
                  {m: env_file(p.directory / "test.env") for m, p in projects.items()})
    try:
        if not docker.ok("network", "inspect", CROSS_NETWORK):
            docker("network", "create", "--label", "fleetobs.test=1", CROSS_NETWORK, timeout=60)
        started = time.monotonic()
        errors: dict[str, BaseException] = {}

        def up(machine: str) -> None:
            try:
                fleet.up_seconds[machine] = projects[machine].up(timeout=400)
            except BaseException as exc:  # noqa: BLE001 - reported below
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
            pytest.fail(f"{exc}\n" + "\n".join(diagnose(p) for p in projects.values()), pytrace=False)
        fleet.healthy_seconds = time.monotonic() - started
        yield fleet
    finally:
        if not KEEP:
            for p in projects.values():
                p.down()
            sweep(docker, names, [CROSS_NETWORK])
