"""schemathesis against the sync routes of a hub with the sync plugin: no input makes a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from hub.app import create_app
from hub.service import HubConfig
from hub.sync.plugin import sync_plugin

schema = schemathesis.pytest.from_fixture("sync_schema")


@pytest.fixture(scope="module")
def sync_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    data_dir: Path = tmp_path_factory.mktemp("hub")
    app = create_app(load_topology(None), load_settings({"FLEET_PROBE_ENABLED": "false"}),
                     data_dir=data_dir, config=HubConfig(background=False),
                     factories=[sync_plugin])
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex=r"^/v1/(sync/|fleet)")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
