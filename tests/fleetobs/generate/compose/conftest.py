"""The real fleet's bundles, rendered once for the static compose tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetobs.generate.build import render
from fleetobs.topology import Topology, load_topology

MACHINES = ("mainpc", "pc2")


@pytest.fixture(scope="session")
def fleet() -> Topology:
    return load_topology()


@pytest.fixture(scope="session")
def rendering(fleet: Topology) -> dict[str, str]:
    return dict(render(fleet).rendering)


@pytest.fixture(scope="session")
def compose(rendering: dict[str, str]) -> dict[str, dict[str, Any]]:
    """machine -> its docker-compose.yml, parsed."""
    return {m: yaml.safe_load(rendering[f"compose/{m}/docker-compose.yml"]) for m in MACHINES}


@pytest.fixture(scope="session")
def compose_test(rendering: dict[str, str]) -> dict[str, dict[str, Any]]:
    """machine -> its docker-compose.test.yml, parsed."""
    return {m: yaml.safe_load(rendering[f"compose/{m}/docker-compose.test.yml"]) for m in MACHINES}
