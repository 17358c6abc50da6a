"""Shared fixtures. Fakes live in the packages (``fleetobs.testing``), not here."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


#: Test data carried in the repository (see tests/fixtures/README.md for the sources),
#: so the suite passes from a bare clone with nothing beside it.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def mainpc_config(fixtures_dir: Path) -> Path:
    return fixtures_dir / "real-fleet" / "mainpc.startup_config.yaml"


@pytest.fixture(scope="session")
def pc2_config(fixtures_dir: Path) -> Path:
    return fixtures_dir / "real-fleet" / "pc2.startup_config.yaml"


@pytest.fixture(scope="session")
def container_plan(fixtures_dir: Path) -> Path:
    return fixtures_dir / "container-plan" / "container-plan.yaml"
