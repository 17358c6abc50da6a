"""Generator of the top-level ``dashboards/`` folder (see fleetobs/generate/__init__.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetobs.generate.build import readme

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology


def render(topology: Topology) -> dict[str, str]:
    """Files of ``dashboards/``, relative to it."""
    del topology  # not built yet: a later issue fills this folder
    return {"README.md": readme("dashboards", "Not built yet.")}
