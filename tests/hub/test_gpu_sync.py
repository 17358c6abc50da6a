"""Either hub answers "where is there free VRAM": two real hub apps (GPU and sync plugins),
each reading its own real GPU exporter (fake NVML) on 127.0.0.1, synced in memory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import fleetobs.topology
from exporters.app import ExporterConfig, GpuExporter
from exporters.testing.fake_nvml import MIB, FakeNvmlLibrary, FakeProcess, rtx_3060, rtx_4090
from exporters.testing.fake_proc import FakeProc, host_v2
from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import GIB
from hub.gpu import GpuPlugin, gpu_plugin
from hub.plugins import HubPlugin
from hub.service import HubConfig
from hub.sync.faultproxy import FaultProxy
from hub.sync.plugin import SyncPlugin, sync_plugin
from hub.sync.testing import HubProcess, MemoryNetwork
from hub.testing import FakeClock, HubHarness

FLEET = load_topology(None)
PEER = {"mainpc": "pc2", "pc2": "mainpc"}
JSON = {"content-type": "application/json"}


@contextlib.contextmanager
def exporter(machine: str, tmp_path: Path) -> Iterator[GpuExporter]:
    dev = rtx_4090() if machine == "mainpc" else rtx_3060()
    dev.processes = [FakeProcess(10, 3 * GIB)]
    proc = FakeProc(tmp_path / f"proc-{machine}")
    proc.add(10, host_v2())
    ex = GpuExporter(ExporterConfig(machine, proc_root=proc.root), FLEET,
                     library=FakeNvmlLibrary([dev]))
    ex.collector.collect_once()
    ex.server.start()
    try:
        yield ex
    finally:
        ex.stop()


def plugin(h: HubHarness, kind: type[Any]) -> Any:
    plugins: list[HubPlugin] = h.app.state.plugins
    (p,) = [p for p in plugins if isinstance(p, kind)]
    return p


@contextlib.asynccontextmanager
async def pair(tmp_path: Path) -> AsyncIterator[tuple[HubHarness, HubHarness, MemoryNetwork]]:
    net = MemoryNetwork()
    clock = FakeClock()
    hubs: list[HubHarness] = []
    async with contextlib.AsyncExitStack() as stack:
        for machine in ("mainpc", "pc2"):
            ex = stack.enter_context(exporter(machine, tmp_path))
            settings = load_settings({"MACHINE_TYPE": machine, "FLEET_PEERS": f"mem://{PEER[machine]}",
                                      "FLEET_PROBE_ENABLED": "false",
                                      "FLEET_GPU_EXPORTER_URL": ex.url})
            sync = functools.partial(sync_plugin, transport=net.transport(machine))
            h = await stack.enter_async_context(HubHarness.build(
                tmp_path / machine, settings=settings, clock=clock,
                config=HubConfig(background=False), factories=[gpu_plugin, sync]))
            net.attach(f"mem://{machine}", plugin(h, SyncPlugin).engine.server)
            assert await plugin(h, GpuPlugin).fetch_once()
            hubs.append(h)
        yield hubs[0], hubs[1], net


async def sync(*hs: HubHarness) -> None:
    for h in hs:
        for link in plugin(h, SyncPlugin).engine.links:
            await link.step()


@pytest.mark.asyncio
async def test_either_hub_lists_every_machines_gpus_and_free_vram(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, _):
        await sync(main, pc2)
        for h, here, there in ((pc2, "pc2", "mainpc"), (main, "mainpc", "pc2")):
            body = (await h.client.get("/v1/gpus")).json()
            assert body["machine"] == here
            by = {m["machine"]: m for m in body["machines"]}
            assert set(by) == {"mainpc", "pc2"} and by[here]["local"] and not by[there]["local"]
            assert by[there]["fresh"] and not by[there]["stale"]
            local_there = (await (main if there == "mainpc" else pc2).client.get("/v1/gpus")).json()
            assert by[there]["gpus"] == local_there["gpus"]  # what its own hub says
            assert by[there]["groups"] == local_there["groups"]
        body = (await pc2.client.get("/v1/gpus")).json()
        # the 4090 has (24564 - 498 - 2 - 3 GiB) MiB free, the 3060 less: mainpc first
        assert [f["machine"] for f in body["free_vram"]] == ["mainpc", "pc2"]
        assert body["free_vram"][0]["free_bytes"] == (24564 - 498 - 2 - 3 * 1024) * MIB
        group = {g["group"]: g for g in {m["machine"]: m for m in body["machines"]}["mainpc"]["groups"]}
        assert group["vision_gpu"]["budget_bytes"] == 6 * GIB


@pytest.mark.asyncio
async def test_a_gpu_machine_not_heard_from_yet_is_listed_as_unknown(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, pc2, _net):
        body = (await pc2.client.get("/v1/gpus")).json()
        by = {m["machine"]: m for m in body["machines"]}
        assert (by["mainpc"]["fresh"], by["mainpc"]["stale"], by["mainpc"]["gpus"]) == (False, True, [])
        assert by["mainpc"]["error"] == "no GPU summary from its hub"
        assert [(f["machine"], f["free_bytes"]) for f in body["free_vram"]][1] == ("mainpc", None)


@pytest.mark.asyncio
async def test_machine_filter_and_bad_queries(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, _):
        await sync(main, pc2)
        body = (await pc2.client.get("/v1/gpus", params={"machine": "mainpc"})).json()
        assert [m["machine"] for m in body["machines"]] == ["mainpc"]
        assert [f["machine"] for f in body["free_vram"]] == ["mainpc"]
        body = (await pc2.client.get("/v1/gpus", params={"min_free_bytes": 15 * GIB})).json()
        assert [len(m["gpus"]) for m in body["machines"]] == [0, 1]  # only the 4090 has 15 GiB
        r = await pc2.client.get("/v1/gpus", params={"machine": "nosuch"})
        assert r.status_code == 404 and "nosuch" in r.json()["detail"]
        for junk in ("bad name!", "x" * 200, ""):
            r = await pc2.client.get("/v1/gpus", params={"machine": junk})
            assert r.status_code == 422, junk


@pytest.mark.asyncio
async def test_a_partition_marks_the_peers_gpus_stale_with_their_age(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, net):
        await sync(main, pc2)
        net.link("mainpc", "mem://pc2").cut = True
        net.link("pc2", "mem://mainpc").cut = True
        pc2.advance(20)
        await sync(main, pc2)
        body = (await pc2.client.get("/v1/gpus", params={"machine": "mainpc"})).json()
        (m,) = body["machines"]
        assert (m["fresh"], m["stale"]) == (False, True)
        assert m["age_seconds"] >= 20 and m["gpus"]  # last known, and how old
        assert body["free_vram"][0]["stale"] is True
        net.heal()
        pc2.advance(1)
        assert await plugin(main, GpuPlugin).fetch_once()
        await sync(main, pc2)
        (m,) = (await pc2.client.get("/v1/gpus", params={"machine": "mainpc"})).json()["machines"]
        assert m["fresh"] and not m["stale"] and m["age_seconds"] < 1


@pytest.mark.asyncio
async def test_junk_gpu_summaries_over_http_are_4xx(tmp_path: Path) -> None:
    async with pair(tmp_path) as (main, pc2, _):
        await sync(main, pc2)
        base: dict[str, Any] = {"sender": {"machine": "mainpc", "epoch": 10**15}, "as_of": 0}
        for gpus in ("junk", {"machine": "mainpc", "seq": 1, "gpus": [{}] * 17}):
            r = await pc2.client.post("/v1/sync/push", content=json.dumps({**base, "gpus": gpus}),
                                      headers=JSON)
            assert r.status_code == 422 and r.json()["detail"].startswith("gpus")
        huge = {**base, "gpus": {"machine": "mainpc", "seq": 1, "error": "x" * (2 * 1024 * 1024)}}
        r = await pc2.client.post("/v1/sync/push", content=json.dumps(huge),
                                      headers=JSON)
        assert r.status_code == 413
        forged = {**base, "gpus": {"machine": "pc2", "seq": 1}}
        r = await pc2.client.post("/v1/sync/push", content=json.dumps(forged),
                                      headers=JSON)
        assert r.status_code == 200 and r.json()["rejected"] == 1
        by = {m["machine"] for m in (await pc2.client.get("/v1/gpus")).json()["machines"]}
        assert by == {"mainpc", "pc2"}
        assert not plugin(pc2, SyncPlugin).engine.gpus.held.get("pc2")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_two_real_hub_processes_answer_for_each_others_gpus(tmp_path: Path) -> None:
    topo = Path(fleetobs.topology.__file__).parent / "data" / "fleet.yaml"
    hosts = {"mainpc": "127.0.0.2", "pc2": "127.0.0.3"}
    with exporter("mainpc", tmp_path) as ex_main, exporter("pc2", tmp_path) as ex_pc2:
        urls = {"mainpc": ex_main.url, "pc2": ex_pc2.url}
        # a proxy on each peer's address: the hubs' ports are known only once they run
        proxies = {m: await FaultProxy(hosts[m], hosts[m], 0).start() for m in hosts}
        hubs = {m: HubProcess(m, hosts[m], topo, tmp_path / m, peers=[proxies[PEER[m]].url],
                              env={"FLEET_GPU_EXPORTER_URL": urls[m]}) for m in hosts}
        try:
            await asyncio.gather(*(h.start() for h in hubs.values()))
            for m, h in hubs.items():
                proxies[m].target_port = h.port
            last: Any = None
            deadline = time.monotonic() + 15
            async with httpx.AsyncClient(timeout=5.0) as c:
                while time.monotonic() < deadline:
                    views = {m: (await c.get(h.url + "/v1/gpus")).json() for m, h in hubs.items()}
                    last = {m: [(f["machine"], f["free_bytes"], f["stale"]) for f in v["free_vram"]]
                            for m, v in views.items()}
                    if all(len(rows) == 2 and not any(s for *_, s in rows) for rows in last.values()):
                        break
                    await asyncio.sleep(0.1)
            assert last["mainpc"] == last["pc2"], last  # both hubs tell the same story
            assert [r[0] for r in last["pc2"]] == ["mainpc", "pc2"]
            assert last["pc2"][0][1] == (24564 - 498 - 2 - 3 * 1024) * MIB
        finally:
            for h in hubs.values():
                h.stop()
            for p in proxies.values():
                await p.stop()
