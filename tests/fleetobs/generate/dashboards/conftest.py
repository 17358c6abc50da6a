"""Fixtures: the generated dashboards, and Grafana's JSON schemas (tests/fixtures/schemas)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fleetobs.generate.dashboards import dashboards
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology

SCHEMAS = Path(__file__).resolve().parents[3] / "fixtures" / "schemas" / "grafana"
VERSIONS = ("v11.6", "main")

Validator = Callable[[Any], list[str]]


@pytest.fixture(scope="session")
def fleet() -> Topology:
    return load_topology(None)


@pytest.fixture(scope="session")
def docs(fleet: Topology) -> dict[str, dict[str, Any]]:
    return dashboards(fleet)


def schema_validator(version: str, name: str, definition: str | None = None) -> Validator | None:
    """Errors of a document against ``<name>.jsonschema.json`` (or one of its definitions);
    None when Grafana's schemas have no such file."""
    path = SCHEMAS / version / f"{name}.jsonschema.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    if definition is not None:
        if definition not in schema["definitions"]:
            return None
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    validator = jsonschema.Draft7Validator(schema)

    def errors(doc: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]

    return errors


@pytest.fixture(scope="session")
def grafana_schema() -> Callable[..., Validator | None]:
    return schema_validator
