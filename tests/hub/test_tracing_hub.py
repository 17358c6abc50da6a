"""The hub traces its background work: probe cycles and sync rounds reach an OTLP receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.settings import load_settings
from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology
from fleetobs.testing.otlp import OTLPReceiver
from fleetobs.topology.load import load_topology
from fleetobs.tracing import PROBE_CYCLE, SYNC_ROUND, setup_tracing
from hub.probing import probing_plugin
from hub.sync.plugin import sync_plugin
from hub.testing import HubHarness


@pytest.mark.asyncio
async def test_probe_cycles_and_sync_rounds_are_spans(tmp_path: Path) -> None:
    base = load_topology(None)
    specs = specs_from_topology(base, ["pc2"], {}, PortPlan(ephemeral=True), limit=3)
    with OTLPReceiver() as rx:
        tracing = setup_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint}, schedule_delay_seconds=0.05)
        async with SimulatedFleet(specs) as fleet:
            topo = fleet.topology(base)
            # A peer nobody answers on: the sync round still happens, and fails, in a span.
            settings = load_settings({"FLEET_DATA_DIR": str(tmp_path), "FLEET_PEERS": "http://127.0.0.1:9"})
            async with HubHarness.build(tmp_path, topology=topo, settings=settings, machine="pc2",
                                        factories=[probing_plugin, sync_plugin], tracing=tracing) as h:
                probing = next(p for p in h.app.state.plugins if p.name == "probing")
                answered = await probing.probe_once()
                sync = next(p for p in h.app.state.plugins if p.name == "sync")
                await sync.engine.links[0].step()
        spans = rx.wait_for(2, timeout=10)
    by_name = {s.name: s for s in spans}
    assert answered == 3
    cycle = by_name[PROBE_CYCLE]
    assert cycle.attributes["fleet.machine"] == "pc2"
    assert cycle.attributes["fleet.probe.answered"] == 3
    sync_round = by_name[SYNC_ROUND]
    assert sync_round.attributes["fleet.sync.kind"] == "reconcile"
    assert "fleet.sync.failure" in sync_round.attributes


def test_without_otel_variables_tracing_is_off() -> None:
    assert not setup_tracing({}).enabled
