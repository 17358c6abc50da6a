"""Shared fixtures. Fakes live in the packages (``fleetobs.testing``), not here."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared() -> Path:
    # shared/ sits beside the checkout (../shared), in CI too.
    for candidate in (REPO.parent / "shared", REPO / "shared"):
        if (candidate / "fixtures").is_dir():
            return candidate
    raise RuntimeError(f"shared/fixtures not found beside {REPO}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _shared()


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


@pytest.fixture(scope="session")
def mainpc_config(fixtures_dir: Path) -> Path:
    return fixtures_dir / "real-fleet" / "mainpc.startup_config.yaml"


@pytest.fixture(scope="session")
def pc2_config(fixtures_dir: Path) -> Path:
    return fixtures_dir / "real-fleet" / "pc2.startup_config.yaml"


@pytest.fixture(scope="session")
def container_plan(fixtures_dir: Path) -> Path:
    return fixtures_dir / "container-plan" / "container-plan.yaml"
