"""Deriving the hub URL from the environment, as agents in compose see it."""

from __future__ import annotations

import pytest

from fleetobs.agent.hub_url import HubUrlError, derive_hub_url


@pytest.mark.parametrize(("env", "url"), [
    ({"FLEET_HUB_URL": "http://hub.lan:9000/"}, "http://hub.lan:9000"),
    ({}, "http://127.0.0.1:9000"),
    ({"MACHINE_TYPE": "pc2"}, "http://127.0.0.1:9100"),
    ({"MACHINE_TYPE": "pc2", "SERVICE_DISCOVERY_MODE": "static"}, "http://pc2:9100"),
    ({"MACHINE_TYPE": "mainpc", "SERVICE_DISCOVERY_MODE": "container_dns"},
     "http://core-platform:9000"),
    ({"MACHINE_TYPE": "pc2", "SERVICE_DISCOVERY_MODE": "CONTAINER_DNS"}, "http://infra-core-cpu:9100"),
    ({"FLEET_HUB_PORT": "9555"}, "http://127.0.0.1:9555"),
    ({"FLEET_HUB_PORT": "9555", "SERVICE_DISCOVERY_MODE": "static"}, "http://mainpc:9555"),
])
def test_derivation(env: dict[str, str], url: str) -> None:
    assert derive_hub_url(env) == url


@pytest.mark.parametrize(("env", "message"), [
    ({"FLEET_HUB_URL": "hub:9000"}, "FLEET_HUB_URL='hub:9000'"),
    ({"SERVICE_DISCOVERY_MODE": "mdns"}, "SERVICE_DISCOVERY_MODE='mdns'"),
    ({"FLEET_HUB_PORT": "99999"}, "FLEET_HUB_PORT='99999'"),
    ({"MACHINE_TYPE": "pc3"}, "unknown machine 'pc3'"),
    ({"FLEET_TOPOLOGY": "/nonexistent/t.yaml"}, "no such file"),
])
def test_bad_environment_says_which_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(HubUrlError, match=message.replace("(", r"\(").replace(".", r"\.")):
        derive_hub_url(env)
