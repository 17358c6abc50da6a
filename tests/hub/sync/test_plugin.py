"""The sync plugin inside real hub apps (HubHarness: in-process, fake clock, no loops)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetobs.settings import load_settings
from hub.plugins import HubPlugin
from hub.service import HubConfig
from hub.sync import plugin as plugin_module
from hub.sync.engine import SyncEngine
from hub.sync.plugin import SyncPlugin, sync_plugin
from hub.sync.testing import MemoryNetwork
from hub.testing import FakeClock, HubHarness


@contextlib.asynccontextmanager
async def pair(tmp_path: Path) -> AsyncIterator[tuple[HubHarness, HubHarness, MemoryNetwork]]:
    net = MemoryNetwork()
    clock = FakeClock()
    harnesses: list[HubHarness] = []
    async with contextlib.AsyncExitStack() as stack:
        for machine, peer in (("mainpc", "pc2"), ("pc2", "mainpc")):
            settings = load_settings({"MACHINE_TYPE": machine, "FLEET_PEERS": f"mem://{peer}",
                                      "FLEET_PROBE_ENABLED": "false"})
            factory = functools.partial(sync_plugin, transport=net.transport(machine))
            h = await stack.enter_async_context(HubHarness.build(
                tmp_path / machine, settings=settings, clock=clock,
                config=HubConfig(background=False), factories=[factory]))
            net.attach(f"mem://{machine}", plugin(h).engine.server)
            harnesses.append(h)
        yield harnesses[0], harnesses[1], net


def plugin(h: HubHarness) -> SyncPlugin:
    plugins: list[HubPlugin] = h.app.state.plugins
    (p,) = [p for p in plugins if p.name == "sync"]
    assert isinstance(p, SyncPlugin)
    return p


async def sync(*hs: HubHarness) -> None:
    for h in hs:
        p = plugin(h)
        p.hand_over()
        p.scan()
        for link in p.engine.links:
            await link.step()


@pytest.mark.asyncio
async def test_a_heartbeat_on_one_hub_shows_in_the_others_fleet_summary(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, _):
        r = await main.client.post("/v1/heartbeats", json={"agent": "ModelManagerSuite",
                                                          "status": "degraded"})
        assert r.status_code == 200
        main.advance(0.3)
        await sync(main, pc2)
        fleet = (await pc2.client.get("/v1/fleet")).json()
        by = {m["machine"]: m for m in fleet["machines"]}
        assert by["mainpc"]["fresh"] and by["mainpc"]["synced"]
        assert by["mainpc"]["agents"] == 54
        assert by["mainpc"]["counts"]["degraded"] == 1
        assert by["pc2"]["local"] and by["pc2"]["agents"] == 23
        held = plugin(pc2).engine.fleet.owners["mainpc"].records["ModelManagerSuite"]
        assert (held.record.facts.state, held.record.facts.source) == ("degraded", "heartbeat")


@pytest.mark.asyncio
async def test_sync_routes_are_guarded_by_the_hub_token(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_TOKEN": "t0k", "FLEET_PROBE_ENABLED": "false"})
    async with HubHarness.build(tmp_path, settings=settings, factories=[sync_plugin]) as h:
        r = await h.client.post("/v1/sync/push", content=b"{}")
        assert r.status_code == 401
        r = await h.client.post("/v1/sync/push", content=b"{}",
                                headers={"authorization": "Bearer t0k", "content-type": "application/json"})
        assert r.status_code == 422
        r = await h.client.post("/v1/sync/push", content=b"x" * (2 * 1024 * 1024),
                                headers={"authorization": "Bearer t0k", "content-type": "application/json"})
        assert r.status_code == 413
        text = (await h.client.get("/metrics")).text
        assert "fleet_sync_rejected_total" in text


@pytest.mark.asyncio
async def test_the_epoch_grows_across_hub_restarts(tmp_path: Path) -> None:
    epochs = []
    for _ in range(2):
        async with HubHarness.build(tmp_path, factories=[sync_plugin],
                                    settings=load_settings({"FLEET_PROBE_ENABLED": "false"})) as h:
            epochs.append(plugin(h).engine.epoch)
    assert epochs[1] > epochs[0]
    assert (tmp_path / "sync-epoch-mainpc").read_text().strip() == str(epochs[1])


@pytest.mark.asyncio
async def test_agents_lists_peer_agents_then_unknown_when_the_peer_goes_silent(
        tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, net):
        await main.client.post("/v1/heartbeats", json={"agent": "ModelManagerSuite",
                                                      "status": "error", "reason": "oom"})
        main.advance(0.3)
        await sync(main, pc2)
        rows = (await pc2.client.get("/v1/agents", params={"machine": "mainpc"})).json()["agents"]
        assert len(rows) == 54 and {r["machine"] for r in rows} == {"mainpc"}
        mms = next(r for r in rows if r["name"] == "ModelManagerSuite")
        assert (mms["state"], mms["last_status"], mms["reason"]) == ("degraded", "error", "oom")
        assert (mms["source"], mms["owner"], mms["owner_source"]) == ("peer", "mainpc", "heartbeat")
        assert mms["age_seconds"] == pytest.approx(0.3, abs=0.01)
        assert mms["group"] and mms["probe"]
        # pc2's own agents are still there, first
        everything = (await pc2.client.get("/v1/agents")).json()["agents"]
        assert [r["machine"] for r in everything[:23]] == ["pc2"] * 23
        filtered = (await pc2.client.get("/v1/agents", params={"state": "degraded"})).json()
        assert [r["name"] for r in filtered["agents"]] == ["ModelManagerSuite"]
        # mainpc goes silent (no more syncing): after stale_after its agents are unknown
        net.link("mainpc", "mem://pc2").cut = True
        pc2.advance(9.0)
        rows = (await pc2.client.get("/v1/agents", params={"machine": "mainpc"})).json()["agents"]
        mms = next(r for r in rows if r["name"] == "ModelManagerSuite")
        assert (mms["state"], mms["last_state"]) == ("unknown", "degraded")
        assert mms["age_seconds"] == pytest.approx(9.3, abs=0.01)
        assert {r["state"] for r in rows} == {"unknown"}  # none of them is "down"
        # pc2 never judges them: its own metrics carry no mainpc agent
        text = (await pc2.client.get("/metrics")).text
        assert 'machine="mainpc",group=' not in text


@pytest.mark.asyncio
async def test_one_agent_of_the_other_machine_answers_with_its_last_record_owner_and_age(
        tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, _net):
        before = await pc2.client.get("/v1/agents/ModelManagerSuite")
        assert before.status_code == 200  # never heard: known from the topology, owner named
        assert (before.json()["state"], before.json()["owner"]) == ("unknown", "mainpc")
        await main.client.post("/v1/heartbeats", json={"agent": "ModelManagerSuite",
                                                      "status": "degraded", "reason": "warming"})
        main.advance(0.5)
        await sync(main, pc2)
        a = (await pc2.client.get("/v1/agents/ModelManagerSuite")).json()
        assert (a["machine"], a["owner"], a["source"], a["state"], a["reason"]) == (
            "mainpc", "mainpc", "peer", "degraded", "warming")
        assert a["age_seconds"] == pytest.approx(0.5, abs=0.01)
        # the name runs on both machines: ?machine= picks, the local one comes first
        both = [(await pc2.client.get("/v1/agents/ObservabilityHub", params=p)).json()["machine"]
                for p in ({}, {"machine": "mainpc"})]
        assert both == ["pc2", "mainpc"]
        assert (await pc2.client.get("/v1/agents/Nobody")).status_code == 404


@pytest.mark.asyncio
async def test_a_silent_agent_reads_last_status_not_status(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, _pc2, _net):
        await main.client.post("/v1/heartbeats", json={"agent": "NLUAgent", "interval_seconds": 1})
        main.advance(4)
        a = (await main.client.get("/v1/agents/NLUAgent")).json()
        assert (a["state"], a["last_status"]) == ("down", "ok")
        assert "status" not in a  # a down agent never reads "status": "ok"


@pytest.mark.asyncio
async def test_before_any_contact_a_peer_machines_agents_are_listed_unknown(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, pc2, _net):
        rows = (await pc2.client.get("/v1/agents", params={"machine": "mainpc"})).json()["agents"]
        assert len(rows) == 54
        assert {(r["state"], r["age_seconds"], r["owner"]) for r in rows} == {("unknown", None, "mainpc")}


def test_cli_refuses_a_peer_that_is_not_an_http_url(capsys: pytest.CaptureFixture[str]) -> None:
    from fleetobs.cli.main import main
    assert main(["hub", "--peer", "pc2:9100", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--peer" in err[0] and "pc2:9100" in err[0]


@pytest.mark.asyncio
async def test_without_peers_sync_costs_the_heartbeat_path_nothing(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none"})
    async with HubHarness.build(tmp_path, settings=settings, factories=[sync_plugin]) as h:
        assert h.hub.listeners == []
        assert len(plugin(h).engine.owned) == 0
    async with pair(tmp_path / "peers") as (main, _, _net):
        assert main.hub.listeners == [plugin(main).changed]
        assert len(plugin(main).engine.owned) == 54  # restored/expected records, versioned


@pytest.mark.asyncio
async def test_hand_over_with_a_limit_gives_the_oldest_notes_first(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, _pc2, _):
        p = plugin(main)
        p.hand_over()
        r = await main.client.post("/v1/heartbeats", json=[{"agent": f"Stranger{i}"} for i in range(25)])
        assert r.status_code == 200
        seq = p.engine.owned.seq
        assert p.hand_over(10) == 10 and p.engine.owned.seq == seq + 10
        assert p.hand_over(10) == 10 and p.hand_over(10) == 5 and p.hand_over(10) == 0
        assert {f"Stranger{i}" for i in range(25)} <= {r.name for r in p.engine.owned.since(seq, now=0.0)}


@pytest.mark.asyncio
async def test_with_its_loops_the_restored_records_reach_the_engine_after_start_in_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Start-up cost (issue 13): start() only notes the records; the hand-over loop gives
    # them to the engine after /ready, in steps, and only then starts the peer links
    # (whose first reconcile must see the whole set, not an empty one).
    monkeypatch.setattr(plugin_module, "HAND_OVER_STEP", 10)
    net = MemoryNetwork()
    settings = load_settings({"FLEET_PEERS": "mem://pc2", "FLEET_PROBE_ENABLED": "false"})
    factory = functools.partial(sync_plugin, transport=net.transport("mainpc"))
    held_at_link_start: list[int] = []
    real_start = SyncEngine.start

    async def start(engine: SyncEngine) -> None:
        held_at_link_start.append(len(engine.owned))
        await real_start(engine)

    monkeypatch.setattr(SyncEngine, "start", start)
    async with HubHarness.build(tmp_path, settings=settings, config=HubConfig(background=True),
                                factories=[factory]) as h:
        p = plugin(h)
        sizes: list[int] = []
        real_hand_over = p.hand_over

        def counting(limit: int | None = None) -> int:
            n = real_hand_over(limit)
            sizes.append(n)
            return n

        p.hand_over = counting  # type: ignore[method-assign]
        assert len(p.engine.owned) == 0 and len(p._dirty) == 54 and held_at_link_start == []
        for _ in range(100):
            await asyncio.sleep(0.01)
            if held_at_link_start:
                break
        assert len(p.engine.owned) == 54 and p._dirty == {}
        assert sizes == [10, 10, 10, 10, 10, 4]
        assert held_at_link_start == [54]
