"""Fixtures for the GPU exporter tests: fake /proc, fake Docker API, the real topology."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.testing.clock import StepClock
from exporters.testing.fake_docker import FakeDockerApi
from exporters.testing.fake_proc import FakeProc
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology


@pytest.fixture(scope="session")
def fleet() -> Topology:
    return load_topology(None)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def fake_proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def docker_api() -> Iterator[FakeDockerApi]:
    # AF_UNIX paths are limited to ~108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="fleetobs-docker-") as d, \
            FakeDockerApi(Path(d) / "docker.sock") as api:
        yield api
