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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.testing.binaries import in_ci
from fleetobs.testing.docker.cli import SOCKET, Docker, DockerError, compose_binary, docker_binary
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.fleet import DockerSession, Fleet, bring_up, tear_down
from fleetobs.testing.docker.images import build_all, cache_dir, daemon_marker
from fleetobs.testing.docker.runs import Run, sweep_dead_runs
from fleetobs.testing.docker.stage import stage_bundles
from fleetobs.topology.load import load_topology

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
    docker = Docker(binary)
    runs = cache_dir() / "docker-runs"
    run = Run("keep", None) if KEEP else Run.new(runs)
    try:
        sweep_dead_runs(docker, runs)  # what a crashed or killed earlier run left
        started = time.monotonic()
        images = build_all(docker)
        yield DockerSession(docker, compose, images, daemon, time.monotonic() - started, run)
    finally:
        if not KEEP:
            run.sweep(docker)
        daemon.stop()


@pytest.fixture(scope="module")
def fleet(docker_session: DockerSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    topology = load_topology(None)
    root = stage_bundles(topology, KEEP_ROOT if KEEP else tmp_path_factory.mktemp("bundles"))
    try:
        try:
            fleet = bring_up(docker_session, topology, root, free_ports=not KEEP)
        except DockerError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield fleet
    finally:
        if not KEEP:
            left = tear_down(docker_session, root)
            assert not [x for x in left if "container" in x], f"down left {left}"
