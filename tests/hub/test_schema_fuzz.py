"""schemathesis against the hub's own OpenAPI schema: no input makes a 5xx.

Bounded: at most 50 examples per operation, positive and negative (schema-violating)
cases both, so the whole run stays well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from hub.app import create_app
from hub.service import HubConfig

schema = schemathesis.pytest.from_fixture("hub_schema")


@pytest.fixture(scope="module")
def hub_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    data_dir: Path = tmp_path_factory.mktemp("hub")
    app = create_app(load_topology(None), load_settings({}), data_dir=data_dir,
                     config=HubConfig(background=False), factories=[])
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
