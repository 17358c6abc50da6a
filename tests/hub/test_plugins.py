"""create_app wires plugins: routers behind auth, collectors on the hub's own registry,
start before ready, stop with a deadline (idempotent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi import APIRouter
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from hub.app import create_app, hub_of, plugin_factories
from hub.observation import Observation, Source, Status
from hub.plugins import HubContext, HubPlugin
from hub.service import HubConfig
from hub.store import Store
from hub.testing import HubHarness


class Gauge(Collector):
    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("fleet_test_plugin_value", "A test plugin's value.")
        g.add_metric([], 42)
        yield g


class Recorder:
    """A plugin that records what happened to it and feeds the hub like a prober."""

    name = "recorder"

    def __init__(self, ctx: HubContext, hang_on_stop: bool = False) -> None:
        self.ctx = ctx
        self.events: list[str] = []
        self.hang_on_stop = hang_on_stop

    def router(self) -> APIRouter | None:
        r = APIRouter()

        @r.get("/v1/recorder")
        async def read() -> dict[str, object]:
            return {"events": self.events, "machine": self.ctx.machine}

        @r.post("/v1/recorder/probe/{agent}")
        async def probe(agent: str) -> dict[str, str]:
            self.ctx.record(Observation(agent=agent, machine=self.ctx.machine,
                                        source=Source.PROBE, status=Status.DEGRADED,
                                        reason="ready_signal=false", latency_seconds=0.01))
            return {"recorded": agent}

        return r

    def collectors(self) -> Sequence[Collector]:
        return [Gauge()]

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self, deadline_seconds: float) -> None:
        # Rounded: each plugin gets what is left of the hub's one stop budget.
        self.events.append(f"stop:{round(deadline_seconds, 1)}")
        if self.hang_on_stop:
            await asyncio.sleep(3600)


@pytest.mark.asyncio
async def test_plugin_router_collectors_and_lifecycle(tmp_path: Path) -> None:
    made: list[Recorder] = []

    def factory(ctx: HubContext) -> HubPlugin | None:
        made.append(Recorder(ctx))
        return made[-1]

    def disabled(ctx: HubContext) -> HubPlugin | None:
        return None

    async with HubHarness.build(tmp_path, factories=[factory, disabled]) as h:
        (p,) = made
        assert p.events == ["start"]
        assert h.hub.ready
        assert (await h.client.get("/v1/recorder")).json() == {"events": ["start"],
                                                                "machine": "mainpc"}
        r = await h.client.post("/v1/recorder/probe/MemoryClient")
        assert r.status_code == 200
        a = (await h.client.get("/v1/agents/MemoryClient")).json()
        assert (a["state"], a["source"], a["reason"]) == ("degraded", "probe", "ready_signal=false")
        text = (await h.client.get("/metrics")).text
        assert "fleet_test_plugin_value 42.0" in text
        assert 'fleet_hub_heartbeats_received_total{machine="mainpc",source="probe"} 1.0' in text
        # Never the process-global registry.
        assert REGISTRY.get_sample_value("fleet_test_plugin_value") is None
        # The plugin's routes are in the OpenAPI schema.
        assert "/v1/recorder" in (await h.client.get("/openapi.json")).json()["paths"]
    assert p.events == ["start", "stop:5.0"]
    await h.hub.stop()  # idempotent: the plugin is not stopped twice
    assert p.events == ["start", "stop:5.0"]


@pytest.mark.asyncio
async def test_plugin_routes_are_behind_auth(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_TOKEN": "w", "FLEET_READ_TOKEN": "r"})
    async with HubHarness.build(tmp_path, settings=settings,
                                factories=[Recorder]) as h:
        assert (await h.client.get("/v1/recorder")).status_code == 401
        assert (await h.client.post("/v1/recorder/probe/X",
                                    headers={"Authorization": "Bearer r"})).status_code == 401
        ok = await h.client.post("/v1/recorder/probe/X", headers={"Authorization": "Bearer w"})
        assert ok.status_code == 200


@pytest.mark.asyncio
async def test_hanging_plugin_stop_is_bounded(tmp_path: Path) -> None:
    made: list[Recorder] = []

    def factory(ctx: HubContext) -> HubPlugin:
        made.append(Recorder(ctx, hang_on_stop=True))
        return made[-1]

    config = HubConfig(background=False, stop_deadline_seconds=0.2)
    async with HubHarness.build(tmp_path, factories=[factory, factory, factory], config=config) as h:
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        started = time.monotonic()
    # Three hanging plugins share the one deadline (not 3 x 0.2 s), then the flush runs.
    assert time.monotonic() - started < 1.5
    # ... and the final flush still ran.
    store = Store(tmp_path, "mainpc")
    store.open()
    assert {r["name"]: r["state"] for r in store.load()}["MemoryClient"] == "up"
    store.close()
    assert made[2].events == ["start", "stop:0.2"]  # stopped first, in reverse order
    assert [m.events[-1] for m in made[:2]] == ["stop:0.1", "stop:0.1"]  # leftovers (0.05 s each)


@pytest.mark.asyncio
async def test_default_app_loads_registered_plugins(tmp_path: Path) -> None:
    """create_app without ``factories`` calls hub.app.plugin_factories()."""

    app = create_app(load_topology(None), load_settings({}), data_dir=tmp_path,
                     config=HubConfig(background=False))
    expected = [p.name for f in plugin_factories() if (p := f(hub_of(app))) is not None]
    assert [p.name for p in app.state.plugins] == expected


@pytest.mark.asyncio
async def test_change_listeners_see_observations_and_state_changes(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        seen: list[tuple[str, str]] = []
        h.hub.listeners.append(lambda rec: seen.append((rec.name, str(rec.state))))

        def broken(rec: object) -> None:
            raise RuntimeError("plugin bug")

        h.hub.listeners.append(broken)
        r = await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient",
                                                        "interval_seconds": 10})
        assert r.status_code == 200  # a failing listener does not fail the heartbeat
        h.advance(21)
        assert ("MemoryClient", "up") in seen and ("MemoryClient", "suspect") in seen
        assert seen.count(("MemoryClient", "suspect")) == 1
