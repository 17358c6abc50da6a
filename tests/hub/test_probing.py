"""The probing plugin on a real Hub core, against simulated agents on real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fleetobs.probe.result import Protocol
from fleetobs.settings import load_settings
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet
from fleetobs.topology.model import Topology
from hub.liveness import State
from hub.observation import Source
from hub.probing import MAX_DEFAULT_INTERVAL, ProbingPlugin, probing_plugin
from hub.service import Hub, HubConfig
from hub.testing import FakeClock

BEHAVIOURS = {
    "Ok": Behaviour.OK, "Degraded": Behaviour.DEGRADED, "Broken": Behaviour.ERROR,
    "Hung": Behaviour.SILENT, "Junk": Behaviour.GARBAGE, "Gone": Behaviour.DOWN,
    "Slow": Behaviour.SLOW,
}
HTTP_AGENTS = {"Degraded", "Junk"}


def base_topology(probe_of: dict[str, str] | None = None, interval: float = 30.0) -> Topology:
    probe_of = probe_of or {n: ("http" if n in HTTP_AGENTS else "zmq") for n in BEHAVIOURS}
    agents: list[dict[str, Any]] = [
        {"name": n, "machine": "m1", "group": "g1", "port": 10 + 3 * i,
         "health_check_port": 11 + 3 * i, "probe": probe_of.get(n, "zmq"),
         "heartbeat_interval_seconds": interval}
        for i, n in enumerate(BEHAVIOURS)
    ]
    agents.append({"name": "Pusher", "machine": "m1", "port": 500, "health_check_port": 501,
                   "probe": "push"})
    agents.append({"name": "Elsewhere", "machine": "m2", "port": 600, "health_check_port": 601})
    return Topology.model_validate({
        "machines": [{"name": "m1", "hub_port": 9000, "address": "m1.lan"},
                     {"name": "m2", "hub_port": 9100, "address": "m2.lan"}],
        "groups": [{"name": "g1", "machine": "m1"}],
        "agents": agents,
    })


def fleet_for(topology: Topology) -> SimulatedFleet:
    return SimulatedFleet([SimAgentSpec(n, "m1", "g1", 0, 0, b, slow_seconds=0.05)
                           for n, b in BEHAVIOURS.items()])


def make_hub(topology: Topology, tmp_path: Path, **env: str) -> Hub:
    settings = load_settings({"SERVICE_DISCOVERY_MODE": "host", "FLEET_PROBE_TIMEOUT": "0.3", **env})
    return Hub(topology, "m1", settings, tmp_path, clock=FakeClock(),
               config=HubConfig(background=False))


@pytest.mark.asyncio
async def test_one_cycle_records_what_each_agent_answered(tmp_path: Path) -> None:
    async with fleet_for(base_topology()) as fleet:
        topology = fleet.topology(base_topology())
        hub = make_hub(topology, tmp_path)
        plugin = probing_plugin(hub)
        assert isinstance(plugin, ProbingPlugin)
        try:
            answered = await plugin.probe_once()
        finally:
            await plugin.stop(1.0)
    hub.tick()
    assert answered == 5  # Ok, Degraded, Broken, Junk, Slow; Hung and Gone are silent

    def rec(name: str) -> tuple[State, Source | None, str | None]:
        r = hub.registry.get(name)
        assert r is not None
        return r.timing.state, r.source, r.reason

    assert rec("Ok") == (State.UP, Source.PROBE, None)
    assert rec("Slow") == (State.UP, Source.PROBE, None)
    assert rec("Degraded") == (State.DEGRADED, Source.PROBE, "health_checks.ready_signal=false")
    assert rec("Broken")[:2] == (State.DEGRADED, Source.PROBE)  # alive, status error
    assert hub.registry.get("Broken").timing.status.value == "error"  # type: ignore[union-attr]
    assert rec("Junk")[0] is State.DEGRADED and (rec("Junk")[2] or "").startswith("reply is not JSON")
    assert rec("Hung") == (State.MISSING, None, None)  # no answer: no observation
    assert rec("Gone") == (State.MISSING, None, None)
    assert rec("Pusher")[1] is None  # push agents are never probed
    ok = hub.registry.get("Ok")
    assert ok is not None and ok.details == {"protocol": "zmq", "outcome": "ok"}
    assert isinstance(hub.clock, FakeClock)
    hub.clock.advance(3.0)
    view = {p["agent"]: p for p in plugin.view()["probes"]}
    assert (view["Hung"]["outcome"], view["Hung"]["age_seconds"]) == ("timeout", 3.0)
    assert (view["Gone"]["outcome"], view["Gone"]["reason"]) == ("refused", "connection refused")
    assert ok.endpoint == f"tcp://127.0.0.1:{topology.agent_by_key[('m1', 'Ok')].health_check_port}"


@pytest.mark.asyncio
async def test_metrics_count_outcomes_and_latency_by_protocol(tmp_path: Path) -> None:
    async with fleet_for(base_topology()) as fleet:
        hub = make_hub(fleet.topology(base_topology()), tmp_path)
        plugin = probing_plugin(hub)
        assert isinstance(plugin, ProbingPlugin)
        try:
            await plugin.probe_once()
            await plugin.probe_once()
        finally:
            await plugin.stop(1.0)
    reg = CollectorRegistry(auto_describe=True)
    for c in plugin.collectors():
        reg.register(c)

    def value(name: str, **labels: str) -> float | None:
        return reg.get_sample_value(name, {"machine": "m1", **labels})

    assert value("fleet_probe_results_total", protocol="zmq", outcome="ok") == 4  # Ok, Slow x2
    assert value("fleet_probe_results_total", protocol="http", outcome="degraded") == 2
    assert value("fleet_probe_results_total", protocol="http", outcome="invalid_reply") == 2
    assert value("fleet_probe_results_total", protocol="zmq", outcome="timeout") == 2  # Hung
    assert value("fleet_probe_results_total", protocol="zmq", outcome="refused") == 2  # Gone
    assert value("fleet_probe_latency_seconds_count", protocol="zmq") == 6  # answered only
    assert value("fleet_probe_latency_seconds_count", protocol="http") == 4
    assert value("fleet_probe_cycle_duration_seconds_count") == 2
    assert value("fleet_probe_targets", protocol="zmq") == 5
    assert value("fleet_probe_targets", protocol="http") == 2


@pytest.mark.asyncio
async def test_background_loop_probes_until_stopped(tmp_path: Path) -> None:
    async with fleet_for(base_topology()) as fleet:
        hub = make_hub(fleet.topology(base_topology()), tmp_path, FLEET_PROBE_INTERVAL="0.05")
        plugin = probing_plugin(hub)
        assert isinstance(plugin, ProbingPlugin)
        await plugin.start()
        await plugin.start()  # idempotent
        for _ in range(400):
            if plugin.stats.cycle.count >= 2:
                break
            await asyncio.sleep(0.01)
        await plugin.stop(1.0)
        await plugin.stop(1.0)  # idempotent
        cycles = plugin.stats.cycle.count
        await asyncio.sleep(0.15)
    assert cycles >= 2
    assert plugin.stats.cycle.count == cycles  # stopped means stopped


def test_interval_defaults_to_the_heartbeat_interval_capped(tmp_path: Path) -> None:
    slow = make_hub(base_topology(interval=60.0), tmp_path)
    fast = make_hub(base_topology(interval=5.0), tmp_path)
    set_ = make_hub(base_topology(), tmp_path, FLEET_PROBE_INTERVAL="0.2", FLEET_PROBE_TIMEOUT="5")
    p_slow, p_fast, p_set = (probing_plugin(h) for h in (slow, fast, set_))
    assert isinstance(p_slow, ProbingPlugin) and p_slow.interval_seconds == MAX_DEFAULT_INTERVAL
    assert isinstance(p_fast, ProbingPlugin) and p_fast.interval_seconds == 5.0
    assert isinstance(p_set, ProbingPlugin) and p_set.interval_seconds == 0.2
    assert p_set.prober.timeout_seconds == 0.2  # a probe never outlives its cycle
    assert p_slow.prober.concurrency == 32  # auto: 7 agents need far fewer than the floor
    fixed = probing_plugin(make_hub(base_topology(), tmp_path, FLEET_PROBE_CONCURRENCY="3"))
    assert isinstance(fixed, ProbingPlugin) and fixed.prober.concurrency == 3


def test_disabled_or_nothing_to_probe_means_no_plugin(tmp_path: Path) -> None:
    assert probing_plugin(make_hub(base_topology(), tmp_path, FLEET_PROBE_ENABLED="false")) is None
    all_push = base_topology(dict.fromkeys(BEHAVIOURS, "push"))
    assert probing_plugin(make_hub(all_push, tmp_path)) is None


def test_addresses_come_from_discovery(tmp_path: Path) -> None:
    hub = make_hub(base_topology(), tmp_path, SERVICE_DISCOVERY_MODE="container_dns")
    plugin = probing_plugin(hub)
    assert isinstance(plugin, ProbingPlugin)
    by_name = {t.agent: t for t in plugin.targets}
    assert set(by_name) == set(BEHAVIOURS)  # only m1's zmq/http agents
    assert by_name["Ok"].host == "g1"  # the group's compose service
    assert (by_name["Ok"].protocol, by_name["Ok"].port) == (Protocol.ZMQ, 11)
    assert (by_name["Degraded"].protocol, by_name["Degraded"].port) == (Protocol.HTTP, 15)
    static = probing_plugin(make_hub(base_topology(), tmp_path, SERVICE_DISCOVERY_MODE="static"))
    assert isinstance(static, ProbingPlugin)
    assert {t.host for t in static.targets} == {"m1.lan"}
