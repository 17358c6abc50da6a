"""docker-compose.test.yml is docker-compose.yml with exactly the documented changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetobs.topology import Topology

MACHINES = ("mainpc", "pc2")


def _normal(svc: dict[str, Any]) -> dict[str, Any]:
    """A service without what the local variant may change for every service."""
    out = copy.deepcopy(svc)
    out.get("deploy", {}).get("resources", {}).pop("reservations", None)
    if "healthcheck" in out:
        out["healthcheck"] = {k: v for k, v in out["healthcheck"].items() if k not in ("interval", "start_period")}
    return out


@pytest.mark.parametrize("machine", MACHINES)
def test_only_the_documented_differences(fleet: Topology, compose: dict[str, dict[str, Any]],
                                         compose_test: dict[str, dict[str, Any]], machine: str) -> None:
    prod, test = compose[machine]["services"], compose_test[machine]["services"]
    other = next(m for m in fleet.machines if m.name != machine)
    relay = f"peer-{other.name}"
    assert set(prod) - set(test) == {"grafana"} and set(test) - set(prod) == {relay}
    # The relay: the other machine's address on this machine's network, to its hub's cross alias.
    assert test[relay]["networks"] == {"fleet": {"aliases": [other.address]}, "cross": {}}
    assert test[relay]["command"] == ["python3", "-m", "fleetobs.container.relay",
                                      f"0.0.0.0:{other.hub_port}={other.address}-hub:{other.hub_port}"]
    group_services = {g.service_name for g in fleet.groups_on(machine)}
    address = fleet.machine(machine).address
    for name, svc in test.items():
        if name == relay:
            continue
        expected = _normal(prod[name])
        actual = _normal(svc)
        assert "reservations" not in svc.get("deploy", {}).get("resources", {})
        if "healthcheck" in svc:
            assert svc["healthcheck"]["interval"] == "5s"
        if name in group_services:
            assert actual.pop("image") == "${FLEETOBS_IMAGE:-fleetobs:0.1.0}"
            assert actual.pop("command") == ["fleetobs", "simulate-group", "--manifest", "/fleetobs/group.json",
                                             "--constructor-seconds", "${SIM_CONSTRUCTOR_SECONDS:-2}",
                                             "--ready-ttl", "${SIM_READY_TTL:-3600}"]
            expected.pop("image")
            expected.pop("command")
            assert expected.pop("init") is True and "init" not in actual
        if name == "alertmanager":
            assert "--cluster.listen-address=" in actual["command"]
            assert not [c for c in actual.pop("command") if c.startswith(("--cluster.peer", "--cluster.adv"))]
            expected.pop("command")
        if name == "hub":
            assert actual.pop("networks") == {"fleet": {}, "cross": {"aliases": [address, f"{address}-hub"]}}
            expected.pop("networks")
        assert actual == expected, name
    volumes = compose_test[machine]["volumes"]
    assert all(v == {} for v in volumes.values())
    assert compose_test[machine]["networks"]["cross"] == {"external": True,
                                                          "name": "${FLEETOBS_CROSS_NETWORK:-fleetobs-cross}"}


def test_test_env_names_the_locally_built_images(rendering: dict[str, str]) -> None:
    env = rendering["compose/pc2/test.env"]
    assert "FLEETOBS_IMAGE=fleetobs:local" in env.splitlines()
    assert "PROMETHEUS_IMAGE=fleetobs-standin-prometheus:local" in env.splitlines()
    assert "COMPOSE_PROJECT_NAME=fleetobs-test-pc2" in env.splitlines()
    assert "HUB_HOST_PORT=21000" in env.splitlines()
