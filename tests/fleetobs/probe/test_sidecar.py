"""The sidecar: probes a group's agents (real sockets), pushes batches to a real hub."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from fleetobs.probe.sidecar import Sidecar
from fleetobs.probe.targets import probe_target
from fleetobs.settings import load_settings
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology
from fleetobs.testing.heartbeat_sink import HeartbeatSink
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app

GROUP = "vision_dream_gpu"  # pc2, 3 agents


@pytest.mark.asyncio
async def test_one_cycle_reaches_the_hub_as_a_batch(tmp_path: Path) -> None:
    base = load_topology(None)
    names = [a.name for a in base.agents_in(GROUP)]
    behaviours = {names[0]: Behaviour.DEGRADED, names[1]: Behaviour.SILENT}
    specs = [s for s in specs_from_topology(base, ["pc2"], behaviours, PortPlan(ephemeral=True))
             if s.name in names]
    async with SimulatedFleet(specs) as fleet:
        topo = fleet.topology(base)
        app = create_app(topo, load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none"}), machine="pc2",
                         data_dir=tmp_path)
        async with serve_app(app) as url:
            sidecar = Sidecar([probe_target(a, "127.0.0.1") for a in topo.agents_in(GROUP)], url,
                              interval_seconds=5.0, timeout_seconds=0.3,
                              container="vision-dream-gpu")
            try:
                cycle = await sidecar.run_once()
            finally:
                await sidecar.aclose()
            async with httpx.AsyncClient(base_url=url) as client:
                agents = {a["name"]: a for a in (await client.get("/v1/agents")).json()["agents"]}
    assert (cycle.probed, cycle.answered, cycle.delivered) == (3, 2, True)
    degraded, silent, ok = (agents[n] for n in names)
    assert (degraded["last_status"], degraded["reason"]) == ("degraded", "health_checks.ready_signal=false")
    assert degraded["source"] == "sidecar" and degraded["details"]["outcome"] == "degraded"
    assert degraded["container"] == "vision-dream-gpu"
    assert ok["last_status"] == "ok" and ok["source"] == "sidecar"
    assert silent["state"] == "missing"  # no answer: nothing sent, silence judged by the hub


@pytest.mark.asyncio
async def test_hub_down_is_counted_not_raised() -> None:
    base = load_topology(None)
    specs = specs_from_topology(base, ["pc2"], {}, PortPlan(ephemeral=True), limit=2)
    async with SimulatedFleet(specs) as fleet:
        topo = fleet.topology(base)
        targets = [probe_target(topo.agent_by_key[("pc2", s.name)], "127.0.0.1") for s in specs]
        sidecar = Sidecar(targets, "http://127.0.0.1:1", interval_seconds=5.0, timeout_seconds=0.5)
        try:
            first = await sidecar.run_once()
            second = await sidecar.run_once()
        finally:
            await sidecar.aclose()
            await sidecar.aclose()  # idempotent
    assert (first.answered, first.delivered, second.delivered) == (2, False, False)
    assert sidecar.delivery_failures == 2 and first.error


@pytest.mark.asyncio
async def test_cli_once_with_a_topology_file(tmp_path: Path) -> None:
    base = load_topology(None)
    specs = specs_from_topology(base, ["pc2"], {}, PortPlan(ephemeral=True))
    async with SimulatedFleet([s for s in specs if s.name in
                               {a.name for a in base.agents_in(GROUP)}]) as fleet:
        topo_file = tmp_path / "t.yaml"
        topo_file.write_text(yaml.safe_dump(fleet.topology(base).model_dump(mode="json")))
        with HeartbeatSink() as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fleetobs.cli.main", "sidecar", "--group", "vision-dream-gpu",
                "--once", "--timeout", "0.5", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "FLEET_TOPOLOGY": str(topo_file), "FLEET_HUB_URL": sink.url})
            out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == f"sidecar {GROUP}: 3/3 agents answered; heartbeats delivered to {sink.url}\n"
    assert len(sink.bodies) == 1 and len(sink.bodies[0]) == 3  # one batch
    assert {b["source"] for b in sink.beats()} == {"sidecar"}


@pytest.mark.parametrize(("args", "message"), [
    (["sidecar", "--group", "nope", "--once"], "--group 'nope': no such group"),
    (["sidecar", "--once"], "--group/CONTAINER_ROLE: which group's agents to probe?"),
    (["sidecar", "--group", "core_platform", "--once", "--timeout", "0"], "FLEET_PROBE_TIMEOUT=0"),
])
def test_cli_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetobs.cli.main import main

    monkeypatch.delenv("CONTAINER_ROLE", raising=False)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
