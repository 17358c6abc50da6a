"""Prometheus discovery publishes only endpoints that can be HTTP, and says which it left out.

Before: all 77 agents' ``health_check_port + 1`` were published, 32 of them (22 on
MainPC, 10 on PC2) another agent's ZeroMQ health socket.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fleetobs.cli.main import main
from fleetobs.topology.load import load_topology
from hub.testing import HubHarness


@pytest.mark.asyncio
async def test_sd_leaves_out_zeromq_ports_and_lists_them_with_why(tmp_path: Path) -> None:
    topo = load_topology(None)
    zmq_ports = {(a.machine, p) for a in topo.agents for p in (a.port, a.health_check_port)
                 if a.name != "ObservabilityHub"}
    async with HubHarness.build(tmp_path) as h:
        r = await h.client.get("/v1/sd/prometheus")
        excluded = (await h.client.get("/v1/sd/prometheus/excluded")).json()
        pc2_only = (await h.client.get("/v1/sd/prometheus/excluded", params={"machine": "pc2"})).json()
    targets = r.json()
    assert r.headers["x-fleet-sd-excluded"] == "32"
    assert len(targets) == 77 - 32
    for t in targets:
        port = int(t["targets"][0].rsplit(":", 1)[1])
        assert (t["labels"]["machine"], port) not in zmq_ports, t
    assert excluded["count"] == 32
    assert Counter(e["machine"] for e in excluded["excluded"]) == {"mainpc": 22, "pc2": 10}
    first = excluded["excluded"][0]
    assert "(a ZeroMQ socket, not HTTP)" in first["reason"] and str(first["port"]) in first["reason"]
    assert pc2_only["count"] == 10
    published = {t["labels"]["agent"] for t in targets}
    assert published.isdisjoint({e["agent"] for e in excluded["excluded"]})


def test_topology_check_says_they_are_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "check", "--json"]) == 0
    warnings = [w for w in json.loads(capsys.readouterr().out)["warnings"]
                if w["code"] == "http-port-collision"]
    assert len({(w["machine"], w["agent"]) for w in warnings}) == 32
    assert all(w["prometheus_sd"] == "excluded" and "left out of Prometheus discovery" in w["message"]
               for w in warnings)
