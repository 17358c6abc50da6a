"""Where is agent X: per SERVICE_DISCOVERY_MODE, machine-aware; Prometheus http_sd."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.settings import DiscoveryMode, load_settings
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from hub.discovery import address_of, metrics_port, prometheus_targets
from hub.testing import HubHarness


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def agent(fleet: Topology, machine: str, name: str):  # type: ignore[no-untyped-def]
    return fleet.agent_by_key[(machine, name)]


@pytest.mark.parametrize(("mode", "local", "remote"), [
    (DiscoveryMode.CONTAINER_DNS, "memory-stack", "pc2"),
    (DiscoveryMode.HOST, "127.0.0.1", "pc2"),
    (DiscoveryMode.STATIC, "mainpc", "pc2"),
])
def test_address_by_mode_seen_from_mainpc(fleet: Topology, mode: DiscoveryMode, local: str,
                                          remote: str) -> None:
    assert address_of(agent(fleet, "mainpc", "MemoryClient"), fleet, "mainpc", mode) == local
    assert address_of(agent(fleet, "pc2", "ResourceManager"), fleet, "mainpc", mode) == remote


def test_container_dns_from_pc2_is_mirror_image(fleet: Topology) -> None:
    mode = DiscoveryMode.CONTAINER_DNS
    assert address_of(agent(fleet, "pc2", "ResourceManager"), fleet, "pc2", mode) == "infra-core-cpu"
    assert address_of(agent(fleet, "mainpc", "MemoryClient"), fleet, "pc2", mode) == "mainpc"


@pytest.mark.asyncio
async def test_discover_endpoint_container_dns(tmp_path: Path, fleet: Topology) -> None:
    settings = load_settings({"SERVICE_DISCOVERY_MODE": "container_dns"})
    async with HubHarness.build(tmp_path, settings=settings) as h:
        a = next(x for x in fleet.agents_on("mainpc") if x.group == "language_stack_gpu")
        r = (await h.client.get(f"/v1/discover/{a.name}")).json()
        assert r["zmq"] == f"tcp://language-stack-gpu:{a.port}"
        assert r["health"] == f"tcp://language-stack-gpu:{a.health_check_port}"
        assert r["metrics"] == f"http://language-stack-gpu:{a.health_check_port + 1}/metrics"
        assert (r["mode"], r["machine"], r["group"]) == ("container_dns", "mainpc", "language_stack_gpu")
        # Other machine's agent: that machine's address.
        rm = (await h.client.get("/v1/discover/ResourceManager")).json()
        assert rm["zmq"] == "tcp://pc2:7113" and rm["machine"] == "pc2"


@pytest.mark.asyncio
async def test_discover_prefers_this_machine_and_takes_machine_param(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        here = (await h.client.get("/v1/discover/ObservabilityHub")).json()
        assert (here["machine"], here["host"], here["port"]) == ("mainpc", "127.0.0.1", 9000)
        there = (await h.client.get("/v1/discover/ObservabilityHub",
                                    params={"machine": "pc2"})).json()
        assert (there["machine"], there["host"], there["port"]) == ("pc2", "pc2", 9100)
        r = await h.client.get("/v1/discover/MemoryClient", params={"machine": "pc2"})
        assert r.status_code == 404
        assert (await h.client.get("/v1/discover/Nobody")).status_code == 404


def test_sd_lists_every_agent_that_can_serve_http_with_labels(fleet: Topology) -> None:
    doc = prometheus_targets(fleet, "mainpc", DiscoveryMode.HOST)
    assert len(doc) == 77 - 32  # tests/hub/test_sd_http_only.py: the 32 ZeroMQ ports left out
    by_agent = {(d["labels"]["machine"], d["labels"]["agent"]): d for d in doc}  # type: ignore[index]
    mc = by_agent[("mainpc", "MemoryClient")]
    a = agent(fleet, "mainpc", "MemoryClient")
    assert mc["targets"] == [f"127.0.0.1:{a.health_check_port + 1}"]
    assert mc["labels"] == {"machine": "mainpc", "group": "memory_stack", "agent": "MemoryClient",
                            "__metrics_path__": "/metrics"}
    # The hub serves its metrics on its own port.
    assert by_agent[("pc2", "ObservabilityHub")]["targets"] == ["pc2:9100"]
    assert metrics_port(agent(fleet, "mainpc", "ObservabilityHub")) == 9000


@pytest.mark.asyncio
async def test_sd_endpoint_filters_by_machine(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        doc = (await h.client.get("/v1/sd/prometheus", params={"machine": "pc2"})).json()
        assert len(doc) == 23 - 10 and {d["labels"]["machine"] for d in doc} == {"pc2"}
        assert all(set(d) == {"targets", "labels"} and len(d["targets"]) == 1 for d in doc)
