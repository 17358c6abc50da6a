"""Real hubs (``fleetobs hub`` subprocesses) on 127.0.0.2/.3/.4, fault proxies between.

Each direction between two hubs goes through its own :class:`FaultProxy`, so a
partition is a real blackhole, a one-way loss is real, and a kill is SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.sync.faultproxy import FaultProxy
from hub.sync.testing import HubProcess

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

TOKEN = "sync-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
HOSTS = {"mainpc": "127.0.0.2", "pc2": "127.0.0.3", "pc3": "127.0.0.4"}
STALE = 3.0


def write_topology(path: Path) -> Path:
    machines = [{"name": m, "hub_port": 9000 + 100 * i, "address": m}
                for i, m in enumerate(HOSTS)]
    groups = [{"name": f"{m}_group", "machine": m} for m in HOSTS]
    agents = [{"name": f"{m}Agent{i}", "machine": m, "group": f"{m}_group",
               "port": 10000 + 10 * j + i, "health_check_port": 20000 + 10 * j + i,
               "probe": "push", "heartbeat_interval_seconds": 30}
              for j, m in enumerate(HOSTS) for i in range(3)]
    path.write_text(yaml.safe_dump({"version": 1, "machines": machines, "groups": groups,
                                    "agents": agents}, sort_keys=False))
    return path


@dataclass
class Mesh:
    hubs: dict[str, HubProcess]
    #: proxies[(a, b)]: the way from hub a to hub b
    proxies: dict[tuple[str, str], FaultProxy]

    def retarget(self, machine: str) -> None:
        for (_, b), p in self.proxies.items():
            if b == machine:
                p.target_port = self.hubs[machine].port

    def cut(self, a: str, b: str) -> None:
        self.proxies[(a, b)].blackhole = True
        self.proxies[(b, a)].blackhole = True

    def heal(self) -> None:
        for p in self.proxies.values():
            p.heal()


@contextlib.asynccontextmanager
async def mesh(tmp_path: Path, machines: list[str],
               skew: dict[str, float] | None = None) -> AsyncIterator[Mesh]:
    topo = write_topology(tmp_path / "topology.yaml")
    proxies: dict[tuple[str, str], FaultProxy] = {}
    for a in machines:
        for b in machines:
            if a != b:  # listens on b's address, forwards to b's hub once it has a port
                proxies[(a, b)] = await FaultProxy(HOSTS[b], HOSTS[b], 0).start()
    hubs = {m: HubProcess(m, HOSTS[m], topo, tmp_path / m,
                          peers=[f"{b}={proxies[(m, b)].url}" for b in machines if b != m],
                          env={"FLEET_TOKEN": TOKEN, "FLEET_SYNC_STALE_AFTER": str(STALE),
                               "FLEET_TEST_CLOCK_SKEW_SECONDS": str((skew or {}).get(m, 0.0))})
            for m in machines}
    m = Mesh(hubs, proxies)
    try:
        await asyncio.gather(*(h.start() for h in hubs.values()))
        for name in machines:
            m.retarget(name)
        yield m
    finally:
        for h in hubs.values():
            h.stop()
        for p in proxies.values():
            await p.stop()


async def get(hub: HubProcess, path: str) -> Any:
    async with httpx.AsyncClient(timeout=5.0) as c:
        r = await c.get(hub.url + path, headers=AUTH)
        r.raise_for_status()
        return r.json()


async def beat(hub: HubProcess, agent: str, status: str = "ok", reason: str | None = None) -> None:
    async with httpx.AsyncClient(timeout=5.0) as c:
        r = await c.post(hub.url + "/v1/heartbeats", headers=AUTH,
                         json={"agent": agent, "status": status, "reason": reason})
        assert r.status_code == 200, r.text


async def peer_view(hub: HubProcess, machine: str) -> dict[str, dict[str, Any]]:
    body = await get(hub, f"/v1/agents?machine={machine}")
    return {a["name"]: a for a in body["agents"] if a["machine"] == machine}


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> float:
    """Seconds until ``await check()`` is truthy (raises with the last value on timeout)."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout:
        last = await check()
        if last:
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s; last: {last!r}")


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_two_hubs_partition_unknown_not_down_then_heal(tmp_path: Path) -> None:
    async with mesh(tmp_path, ["mainpc", "pc2"]) as m:
        main, pc2 = m.hubs["mainpc"], m.hubs["pc2"]
        await beat(main, "mainpcAgent0", "degraded", "ready_signal=false")

        async def degraded() -> bool:
            a = (await peer_view(pc2, "mainpc")).get("mainpcAgent0")
            return (a is not None and a["state"] == "degraded" and a["source"] == "peer"
                    and a["owner"] == "mainpc" and a["owner_source"] == "heartbeat")

        await eventually(degraded, timeout=10.0)
        seen = await peer_view(pc2, "mainpc")
        assert set(seen) == {"mainpcAgent0", "mainpcAgent1", "mainpcAgent2"}
        assert seen["mainpcAgent0"]["reason"] == "ready_signal=false"
        assert seen["mainpcAgent1"]["state"] == "missing"  # the owner's judgement, as is

        m.cut("mainpc", "pc2")

        async def unknown() -> bool:
            return {a["state"] for a in (await peer_view(pc2, "mainpc")).values()} == {"unknown"}

        await eventually(unknown, timeout=STALE + 5)
        a0 = (await peer_view(pc2, "mainpc"))["mainpcAgent0"]
        assert a0["last_state"] == "degraded"
        assert a0["age_seconds"] >= STALE
        fleet = await get(pc2, "/v1/fleet")
        by = {x["machine"]: x for x in fleet["machines"]}
        assert by["mainpc"]["counts"] == {"unknown": 3} and not by["mainpc"]["fresh"]
        async with httpx.AsyncClient() as c:
            text = (await c.get(pc2.url + "/metrics", headers=AUTH)).text
        assert metric(text, "fleet_peer_up", peer="mainpc") == 0
        # nothing else pages: pc2's own agents are untouched, the peer's are not exported
        assert 'agent="mainpcAgent0"' not in text

        await beat(main, "mainpcAgent0", "ok")  # the owner moves on during the partition
        m.heal()

        async def healed() -> bool:
            a = (await peer_view(pc2, "mainpc"))["mainpcAgent0"]
            async with httpx.AsyncClient() as c:
                text = (await c.get(pc2.url + "/metrics", headers=AUTH)).text
            # the owner's news arrived and both directions work again
            return a["state"] == "up" and metric(text, "fleet_peer_up", peer="mainpc") == 1

        # generous: a loaded CI box; bench/sync_bench.py measures the heal time itself
        await eventually(healed, timeout=6.0)


async def test_one_way_loss_and_resets_heal(tmp_path: Path) -> None:
    async with mesh(tmp_path, ["mainpc", "pc2"]) as m:
        main, pc2 = m.hubs["mainpc"], m.hubs["pc2"]
        await beat(main, "mainpcAgent1")

        async def peer_up(value: float) -> bool:
            async with httpx.AsyncClient() as c:
                text = (await c.get(main.url + "/metrics", headers=AUTH)).text
            return metric(text, "fleet_peer_up", peer="pc2") == value

        await eventually(lambda: peer_up(1), timeout=10.0)
        m.proxies[("mainpc", "pc2")].drop_down = True  # pc2 gets pushes, mainpc no replies
        await eventually(lambda: peer_up(0), timeout=STALE + 2)
        # the requests did arrive: pc2 still hears mainpc and holds its data fresh
        assert (await peer_view(pc2, "mainpc"))["mainpcAgent1"]["state"] == "up"
        m.proxies[("mainpc", "pc2")].drop_down = False
        for p in m.proxies.values():
            p.reset()  # every connection torn down mid-flight
        await beat(main, "mainpcAgent2", "error", "oom")

        async def converged() -> bool:
            a = (await peer_view(pc2, "mainpc")).get("mainpcAgent2")
            return a is not None and a["state"] == "degraded" and a["reason"] == "oom"

        await eventually(converged, timeout=8.0)


async def test_hub_killed_mid_sync_restarts_with_skewed_clock(tmp_path: Path) -> None:
    async with mesh(tmp_path, ["mainpc", "pc2"]) as m:
        main, pc2 = m.hubs["mainpc"], m.hubs["pc2"]
        await beat(main, "mainpcAgent0", "degraded", "warming")
        await eventually(lambda: _state(pc2, "mainpc", "mainpcAgent0", "degraded"))
        before = (await get(pc2, "/v1/fleet"))["machines"]
        epoch_before = next(x["epoch"] for x in before if x["machine"] == "mainpc")
        m.proxies[("mainpc", "pc2")].delay_seconds = 0.3  # a push is in flight when it dies
        await beat(main, "mainpcAgent1")
        await asyncio.sleep(0.1)
        main.kill()
        m.heal()
        main.env["FLEET_TEST_CLOCK_SKEW_SECONDS"] = "-3600"  # and its clock went back an hour
        await main.start()
        m.retarget("mainpc")
        await beat(main, "mainpcAgent2", "ok")

        async def new_run() -> bool:
            fleet = await get(pc2, "/v1/fleet")
            x = next(x for x in fleet["machines"] if x["machine"] == "mainpc")
            view = await peer_view(pc2, "mainpc")
            return (x["epoch"] > epoch_before and x["synced"] and x["fresh"]
                    and view["mainpcAgent2"]["state"] == "up")

        await eventually(new_run, timeout=12.0)
        view = await peer_view(pc2, "mainpc")
        assert view["mainpcAgent2"]["age_seconds"] < 5  # an hour of skew changed no age


async def _state(hub: HubProcess, machine: str, agent: str, state: str) -> bool:
    a = (await peer_view(hub, machine)).get(agent)
    return a is not None and a["state"] == state


async def test_three_hubs_with_skewed_clocks_each_hold_the_whole_fleet(tmp_path: Path) -> None:
    skew = {"mainpc": 3600.0, "pc2": 0.0, "pc3": -3600.0}
    async with mesh(tmp_path, ["mainpc", "pc2", "pc3"], skew=skew) as m:
        for name, hub in m.hubs.items():
            await beat(hub, f"{name}Agent0", "ok")

        async def whole() -> bool:
            for name, hub in m.hubs.items():
                for other in m.hubs:
                    if other != name and not await _state(hub, other, f"{other}Agent0", "up"):
                        return False
            return True

        await eventually(whole, timeout=10.0)
        for name, hub in m.hubs.items():
            for other in m.hubs:
                if other != name:
                    a = (await peer_view(hub, other))[f"{other}Agent0"]
                    assert 0 <= a["age_seconds"] < 10, (name, other, a)
        # pc3 partitioned from mainpc only: pc2 still sees both fresh
        m.cut("mainpc", "pc3")
        await eventually(lambda: _state(m.hubs["pc3"], "mainpc", "mainpcAgent0", "unknown"),
                         timeout=STALE + 5)
        assert await _state(m.hubs["pc2"], "mainpc", "mainpcAgent0", "up")
        assert await _state(m.hubs["pc2"], "pc3", "pc3Agent0", "up")


async def test_hostile_input_on_a_real_hub(tmp_path: Path) -> None:
    async with mesh(tmp_path, ["mainpc"]) as m:
        hub = m.hubs["mainpc"]
        rec = {"name": "pc2Agent0", "owner": "pc2", "machine": "pc2", "epoch": 5, "seq": 3,
               "state": "up", "interval_seconds": 30.0, "age_seconds": 1.0}
        body = {"sender": {"machine": "pc2", "epoch": 5}, "as_of": 10, "records": [rec]}
        async with httpx.AsyncClient(base_url=hub.url, timeout=5.0) as c:
            r = await c.post("/v1/sync/push", json=body, headers={"authorization": "Bearer nope"})
            assert r.status_code == 401
            r = await c.post("/v1/sync/push", json=body, headers=AUTH)
            assert r.status_code == 200 and r.json()["accepted"] == 1
            stale = {**body, "records": [{**rec, "seq": 2, "state": "down"}]}
            r = await c.post("/v1/sync/push", json=stale, headers=AUTH)
            assert r.status_code == 200 and r.json()["stale"] == 1
            forged = {**body, "records": [{**rec, "name": "mainpcAgent0", "owner": "mainpc",
                                           "machine": "mainpc", "seq": 4, "state": "down"}]}
            r = await c.post("/v1/sync/push", json=forged, headers=AUTH)
            assert r.status_code == 200 and r.json()["rejected"] == 1
            r = await c.post("/v1/sync/push", content=b"{" * (2 * 1024 * 1024), headers=AUTH)
            assert r.status_code == 413
            r = await c.post("/v1/sync/push", content=b'{"sender": []}', headers=AUTH)
            assert r.status_code == 422
            view = (await c.get("/v1/agents", headers=AUTH)).json()["agents"]
        mine = {a["name"]: a for a in view if a["machine"] == "mainpc"}
        assert mine["mainpcAgent0"]["state"] != "down"  # a peer cannot judge our agents
        theirs = {a["name"]: a for a in view if a["machine"] == "pc2"}
        assert theirs["pc2Agent0"]["state"] in ("up", "unknown")
        assert hub.proc is not None and hub.proc.poll() is None
