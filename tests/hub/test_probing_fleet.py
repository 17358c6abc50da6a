"""End to end: two hubs probing the whole real fleet, simulated on real sockets.

The 75 probed agents of the default topology (77 minus the two hubs) run in the
simulator on free ports with a seeded mix of behaviours; each machine's hub loads the
topology with those ports, probes its agents over ZeroMQ, and its API must show the
states the simulator was told to produce.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetobs.settings import load_settings
from fleetobs.simulator.behaviour import Behaviour, plan_behaviours
from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app

KINDS = (Behaviour.DEGRADED, Behaviour.ERROR, Behaviour.SILENT, Behaviour.GARBAGE,
         Behaviour.SLOW, Behaviour.DOWN)


async def wait_for_first_cycle(client: httpx.AsyncClient) -> None:
    for _ in range(500):
        probes = (await client.get("/v1/probes")).json()["probes"]
        if all(p["outcome"] is not None for p in probes):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the hub did not finish a probe cycle")


def expected(behaviour: Behaviour) -> tuple[str, str | None]:
    """(state, status) the hub should show for an agent told to behave so."""
    status = behaviour.expected_status
    if status is None:
        return "missing", None
    return ("up" if status == "ok" else "degraded"), status


@pytest.mark.asyncio
async def test_hubs_show_the_states_the_simulator_was_told_to_produce(tmp_path: Path) -> None:
    base = load_topology(None)
    names = [s.name for s in specs_from_topology(base, ["mainpc", "pc2"], {}, PortPlan())]
    plan = plan_behaviours(names, fail_rate=0.4, seed=11, kinds=KINDS)
    specs = specs_from_topology(base, ["mainpc", "pc2"], plan, PortPlan(ephemeral=True),
                                slow_seconds=0.05)
    assert len(specs) == 75
    settings = load_settings({"SERVICE_DISCOVERY_MODE": "host", "FLEET_PEERS": "none", "FLEET_PROBE_INTERVAL": "30",
                              "FLEET_PROBE_TIMEOUT": "0.5"})
    async with SimulatedFleet(specs, http=False) as fleet:
        assert not fleet.report.failed
        topo = fleet.topology(base)
        views: dict[str, dict[str, dict[str, Any]]] = {}
        metrics: dict[str, str] = {}
        probes: dict[str, dict[str, dict[str, Any]]] = {}
        for machine in ("mainpc", "pc2"):
            app = create_app(topo, settings, machine=machine, data_dir=tmp_path / machine)
            async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
                await wait_for_first_cycle(client)
                body = (await client.get("/v1/agents")).json()
                views[machine] = {a["name"]: a for a in body["agents"]}
                probes[machine] = {p["agent"]: p for p in (await client.get("/v1/probes")).json()["probes"]}
                metrics[machine] = (await client.get("/metrics")).text

    assert len(views["mainpc"]) == 54 and len(views["pc2"]) == 23  # 77 agents in all
    seen = 0
    for spec in specs:
        view = views[spec.machine][spec.name]
        state, status = expected(spec.behaviour)
        assert (spec.name, view["state"], view["last_status"]) == (spec.name, state, status)
        if status is not None:
            assert view["source"] == "probe"
        else:  # why it is silent is visible at /v1/probes
            probe = probes[spec.machine][spec.name]
            if spec.behaviour is Behaviour.DOWN:  # a stopped agent, told apart from a hung one
                assert (probe["outcome"], probe["reason"]) == ("refused", "connection refused")
            else:
                assert (probe["outcome"], probe["reason"]) == ("timeout", "no reply within 0.5 s")
            assert probe["latency_seconds"] is None
        if spec.behaviour is Behaviour.DEGRADED:
            assert view["reason"] == "health_checks.ready_signal=false"
        if spec.behaviour is Behaviour.GARBAGE:
            assert view["reason"].startswith("reply is not JSON")
        seen += 1
    assert seen == 75
    for machine in ("mainpc", "pc2"):
        hub_view = views[machine]["ObservabilityHub"]
        assert (hub_view["state"], hub_view["source"]) == ("up", "self")
    # The mix really contains every kind (the seed is fixed; this guards the test itself).
    assert {s.behaviour for s in specs} == {Behaviour.OK, *KINDS}

    for machine in ("mainpc", "pc2"):
        hung = sum(1 for s in specs if s.machine == machine and s.behaviour is Behaviour.SILENT)
        down = sum(1 for s in specs if s.machine == machine and s.behaviour is Behaviour.DOWN)
        results = {
            (s.labels["protocol"], s.labels["outcome"]): s.value
            for f in text_string_to_metric_families(metrics[machine])
            for s in f.samples if s.name == "fleet_probe_results_total"
        }
        answering_ok = sum(1 for s in specs if s.machine == machine
                           and s.behaviour in (Behaviour.OK, Behaviour.SLOW))
        # Exactly one cycle (the interval is 30 s): each agent counted once, by outcome.
        assert results[("zmq", "ok")] == answering_ok
        assert results[("zmq", "timeout")] == hung
        assert results[("zmq", "refused")] == down
