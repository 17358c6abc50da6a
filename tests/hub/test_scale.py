"""Issue 13, findings 5, 6 and 7: the hub at 10,000 agents.

5. 10,000 unknown names froze the event loop for 5.3 s: each scanned the topology.
6. Heartbeat p99 was 9x p50: full garbage collections walked every long-lived object.
7. Restart to ready took 6-7 s, most of it PyYAML's pure-Python loader.

Timings are the benchmarks' (bench/hub_start_stall.py, bench/hub_soak.py); these tests
pin the mechanisms: O(1) classification, a batch that yields, the frozen collector,
the C loader and the parsed-topology cache.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetobs.cli.main import main
from fleetobs.settings import load_settings
from fleetobs.topology import cache as topology_cache
from fleetobs.topology import load as topology_load
from fleetobs.topology.load import load_topology, topology_from_text
from fleetobs.topology.model import Topology
from hub.liveness import LivenessPolicy
from hub.observation import Observation
from hub.registry import Kind, Outcome, Registry
from hub.runtime import collections_held
from hub.service import Hub, HubConfig
from hub.testing import FakeClock, HubHarness


def big_topology(n: int, elsewhere: int = 10) -> Topology:
    agents: list[dict[str, Any]] = [
        {"name": f"agent{i:05d}", "machine": "m1", "port": 10000 + i, "health_check_port": 40000 + i,
         "probe": "push"} for i in range(n)]
    agents += [{"name": f"far{i}", "machine": "m2", "port": 2000 + i, "health_check_port": 3000 + i,
                "heartbeat_interval_seconds": 7} for i in range(elsewhere)]
    return Topology.model_validate({
        "machines": [{"name": "m1", "hub_port": 9000, "address": "m1.lan"},
                     {"name": "m2", "hub_port": 9100, "address": "m2.lan"}],
        "agents": agents})


class NoScans:
    """A topology whose agent list may not be walked (any other attribute passes through)."""

    def __init__(self, real: Topology) -> None:
        self._real = real

    @property
    def agents(self) -> Any:
        raise AssertionError("the topology was scanned for one name")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_strangers_are_classified_without_scanning_the_topology() -> None:
    topo = big_topology(10_000)
    reg = Registry(topo, "m1", LivenessPolicy(), max_unknown=20_000)
    reg.topology = NoScans(topo)  # type: ignore[assignment]
    for i in range(10_000):
        outcome, rec = reg.record(Observation(agent=f"stranger{i:05d}", machine="m1"), 1.0, 1.0)
        assert outcome is Outcome.ACCEPTED and rec is not None and rec.kind is Kind.UNKNOWN
    outcome, rec = reg.record(Observation(agent="far3", machine="m1"), 1.0, 1.0)
    assert rec is not None and (rec.kind, rec.expected_machine, rec.timing.interval) == (Kind.FOREIGN, "m2", 7.0)
    assert reg.unknown_count == 10_001


@pytest.mark.asyncio
async def test_a_batch_of_10000_strangers_lets_the_event_loop_run_meanwhile(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        turns = 0
        done = asyncio.Event()

        async def other_work() -> None:  # what /health and other beats need: loop turns
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        turns = 0
        r = await h.client.post("/v1/heartbeats", json=[{"agent": f"stranger{i:05d}"} for i in range(10_000)])
        during = turns
        done.set()
        await task
        assert r.status_code == 200 and len(r.json()["unknown"]) == 10_000
        assert during >= 39  # a turn after each chunk of 250 at least


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable()


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_gc")
async def test_start_up_objects_are_frozen_out_of_the_collectors_way(tmp_path: Path) -> None:
    hub = Hub(big_topology(2_000), "m1", load_settings({}), tmp_path, clock=FakeClock(),
              config=HubConfig(background=False, freeze_gc=True, freeze_gc_after_seconds=0.05))
    assert gc.get_freeze_count() == 0
    with collections_held():  # as `fleetobs hub` runs: no collections during start-up
        await hub.start()
        try:
            assert gc.get_freeze_count() == 0  # after /ready (the first turn of the loop), not in start()
            assert not gc.isenabled()
            for _ in range(200):
                await asyncio.sleep(0.05)
                if gc.get_freeze_count():
                    break
            frozen = gc.get_freeze_count()
            assert frozen > 2_000 * 2  # at least each record and its timing
            assert gc.get_threshold()[:2] == (10_000, 2)
            assert gc.isenabled()
            # What a full collection still walks is what was made after start, not the fleet.
            assert len(gc.get_objects(generation=2)) < frozen / 10
        finally:
            await hub.stop()


def test_collections_are_on_again_after_a_hub_command_that_failed_in_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEET_DATA_DIR", str(tmp_path / "data"))
    assert gc.isenabled()
    # A bad --peer fails after the collector was turned off for the start-up.
    assert main(["hub", "--peer", "pc2:9100", "--port", "0"]) == 2
    assert "--peer/FLEET_PEERS" in capsys.readouterr().err
    assert gc.isenabled()
    gc.disable()
    try:
        with collections_held():
            pass
        assert not gc.isenabled()  # what it found is what it leaves
    finally:
        gc.enable()


@pytest.mark.asyncio
async def test_the_library_leaves_the_collector_alone_by_default(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path):
        assert gc.get_freeze_count() == 0


def test_the_c_yaml_loader_is_used_when_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__  # Debian's and PyPI's wheels ship it
    assert topology_load.YAML_LOADER is yaml.CSafeLoader


def test_a_cached_topology_is_read_without_parsing_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"machines": [{"name": "m1", "hub_port": 9000, "address": "a"}],
                                    "agents": [{"name": "A", "machine": "m1", "port": 1, "health_check_port": 2}]}))
    cache_dir = tmp_path / "data"
    first = load_topology(path, cache_dir=cache_dir)
    assert (cache_dir / topology_cache.CACHE_FILE).exists()

    def no_yaml(text: str, source: str) -> Any:
        raise AssertionError("parsed YAML although the cache holds this text")

    monkeypatch.setattr(topology_load, "parse_yaml", no_yaml)
    assert load_topology(path, cache_dir=cache_dir) == first
    # Another text is a miss (and replaces the entry); without cache_dir nothing is cached.
    path.write_text(path.read_text().replace("hub_port: 9000", "hub_port: 9001"))
    with pytest.raises(AssertionError, match="parsed YAML"):
        load_topology(path, cache_dir=cache_dir)


def test_a_damaged_or_stale_cache_falls_back_to_parsing(tmp_path: Path) -> None:
    text = "machines: [{name: m1, hub_port: 9000, address: a}]\nagents: []\n"
    key = topology_cache.digest(text)
    (tmp_path / topology_cache.CACHE_FILE).write_text("{not json")
    assert topology_from_text(text, cache_dir=tmp_path).machines[0].hub_port == 9000
    # A cached document that no longer validates (e.g. written by another version): parsed.
    topology_cache.store_document(tmp_path, key, {"machines": "junk"})
    assert topology_from_text(text, cache_dir=tmp_path).machines[0].hub_port == 9000
    assert topology_cache.cached_document(tmp_path, key)["machines"][0]["hub_port"] == 9000


def test_a_document_json_would_change_is_not_cached(tmp_path: Path) -> None:
    assert not topology_cache.store_document(tmp_path, "k", {1: "int key"})
    assert not topology_cache.store_document(tmp_path, "k", {"when": __import__("datetime").date(2026, 1, 1)})
    assert topology_cache.cached_document(tmp_path, "k") is None


@pytest.mark.asyncio
async def test_the_background_judge_pass_in_steps_judges_as_one_pass_does(tmp_path: Path) -> None:
    topo = big_topology(6_000)
    hubs = [Hub(topo, "m1", load_settings({}), tmp_path / str(k), clock=FakeClock(),
                config=HubConfig(background=False)) for k in range(2)]
    for hub in hubs:
        await hub.start()
        hub.observe_many([Observation(agent=f"agent{i:05d}", machine="m1", interval_seconds=10 + i % 3)
                          for i in range(0, 6_000, 2)])
        assert isinstance(hub.clock, FakeClock)
    try:
        changes = 0
        for _ in range(40):  # a judge pass a second: up, then suspect, then down
            for hub in hubs:
                assert isinstance(hub.clock, FakeClock)
                hub.clock.advance(1)
            one = hubs[0].tick()
            steps = await hubs[1].tick_in_steps()
            assert sorted((r.name, str(b)) for r, b in one) == sorted((r.name, str(b)) for r, b in steps)
            assert [r.timing.state for r in hubs[0].registry] == [r.timing.state for r in hubs[1].registry]
            changes += len(steps)
        assert changes == 2 * 3_000  # each beaten agent: up -> suspect -> down
        assert {str(r.timing.state) for r in hubs[1].registry} == {"down", "missing"}
    finally:
        for hub in hubs:
            await hub.stop()


@pytest.mark.asyncio
async def test_a_big_batch_validated_in_chunks_answers_as_one_validation_does(tmp_path: Path) -> None:
    import json

    from hub.api import heartbeats

    beats: list[Any] = [{"agent": f"stranger{i:05d}", "interval_seconds": 30} for i in range(3000)]
    body = json.dumps(beats).encode()
    assert len(body) > heartbeats.INCREMENTAL_FROM_BYTES  # the chunked path
    bad = [*beats[:1777], {"agent": "bad name!"}, *beats[1777:]]
    nan = json.dumps(beats).replace('"interval_seconds": 30}]', '"interval_seconds": NaN}]').encode()
    async with HubHarness.build(tmp_path) as h:
        ok = await h.client.post("/v1/heartbeats", content=body, headers={"content-type": "application/json"})
        assert ok.status_code == 200 and len(ok.json()["unknown"]) == 3000
        r = await h.client.post("/v1/heartbeats", json=bad)
        assert r.status_code == 422
        assert r.json()["message"].startswith("body[1777].agent: ")  # the index in the whole batch
        # What the chunked path leaves alone gets pydantic-core's one-go answer, as a small body does.
        r = await h.client.post("/v1/heartbeats", content=nan, headers={"content-type": "application/json"})
        small = await h.client.post("/v1/heartbeats", content=b'[{"agent": "A", "interval_seconds": NaN}]',
                                    headers={"content-type": "application/json"})
        assert (r.status_code, small.status_code) == (422, 422)
        assert r.json()["message"].split(": ", 1)[1] == small.json()["message"].split(": ", 1)[1]
        trailing = await h.client.post("/v1/heartbeats", content=body + b" x",
                                       headers={"content-type": "application/json"})
        assert trailing.status_code == 422 and trailing.json()["detail"][0]["type"] == "json_invalid"
