"""Cross-machine sync: convergence after a change, after a partition heals, and a
full sync of 10,000 agents.

Run: ``python bench/sync_bench.py [--changes 300] [--agents 10000] [--partitions 3]``

Two sync engines (the production code: hub.sync.engine with its background links
and the httpx transport) serve their sync routes on real uvicorn servers on
127.0.0.1 and 127.0.0.2; each one's peer URL goes through a fault-injecting TCP
proxy (hub.sync.faultproxy), so partitions are real blackholed sockets. Printed:

1. change -> peer convergence: a record changes on A at a random moment, time until
   B holds the new version; p50/p99/max over ``--changes`` changes
   (goal p99 <= 1 s). Anchor: one plain HTTP POST round trip to B's sync endpoint;
2. partition heal: both directions blackholed for 10 s (B shows A's agents
   ``unknown``), 20 changes on A meanwhile, then healed; time until B holds A's
   current records and both sides say peer up again (goal <= 2 s);
3. full sync at ``--agents``: a fresh B and A's whole state, one reconciliation;
   bytes and seconds, vs the anchor of POSTing the same bytes as one plain body;
   then a reconciliation with nothing changed (digests only);
4. end to end with real processes: two ``fleetobs hub`` on 127.0.0.2 and 127.0.0.3
   (the real fleet topology, probing off); a heartbeat changes an agent's status on
   A, time until B's ``GET /v1/agents`` shows it (polled every 10 ms, so figures
   include up to 10 ms of polling); ``--e2e-changes`` changes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn
from fastapi import FastAPI

from hub.sync.api import sync_router
from hub.sync.engine import SyncEngine
from hub.sync.faultproxy import FaultProxy
from hub.sync.peer import SyncConfig
from hub.sync.peers import Peer
from hub.sync.records import AgentFacts
from hub.sync.testing import HubProcess
from hub.sync.transport import HttpxTransport

MACHINES = ["mainpc", "pc2"]


@asynccontextmanager
async def served(eng: SyncEngine, host: str) -> AsyncIterator[int]:
    app = FastAPI()
    app.include_router(sync_router(eng, Counter, dict))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="error",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.005)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def engine(machine: str, peer: str, epoch: int = 1) -> SyncEngine:
    return SyncEngine(machine, epoch, clock=time.monotonic, transport=HttpxTransport(1.0),
                      peers=[Peer(next(m for m in MACHINES if m != machine), peer)], token="bench",
                      config=SyncConfig(),
                      known_machines=MACHINES)


def facts(i: int, state: str = "up", machine: str = "mainpc") -> AgentFacts:
    return AgentFacts(name=f"agent{i:05d}", machine=machine, state=state, status="ok",
                      reason=None, source="heartbeat", group="language_stack_gpu",
                      required=True, endpoint=f"tcp://language-stack-gpu:{5000 + i % 1000}",
                      interval_seconds=10.0)


def held_version(b: SyncEngine, name: str) -> tuple[int, int] | None:
    view = b.fleet.owners.get("mainpc")
    h = view.records.get(name) if view else None
    return None if h is None else tuple(h.record.version)  # type: ignore[return-value]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(int(q * len(s)), len(s) - 1)]


async def wait_until(cond: object, limit: float = 30.0) -> float:
    t0 = time.perf_counter()
    while not cond():  # type: ignore[operator]
        if time.perf_counter() - t0 > limit:
            raise TimeoutError("did not converge")
        await asyncio.sleep(0.002)
    return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(1)
    to_b = await FaultProxy("127.0.0.1", "127.0.0.2", 0).start()
    to_a = await FaultProxy("127.0.0.2", "127.0.0.1", 0).start()
    a = engine("mainpc", to_b.url)
    b = engine("pc2", to_a.url)
    async with served(a, "127.0.0.1") as port_a, served(b, "127.0.0.2") as port_b:
        to_b.target_port, to_a.target_port = port_b, port_a
        for i in range(77):
            a.put(facts(i), time.monotonic())
            b.put(facts(i, machine="pc2"), time.monotonic())
        await a.start()
        await b.start()
        await wait_until(lambda: len(b.peer_agents()) == 77 and len(a.peer_agents()) == 77)

        # 1. change -> convergence
        anchor: list[float] = []
        async with httpx.AsyncClient() as client:
            for _ in range(50):
                t0 = time.perf_counter()
                await client.post(f"http://127.0.0.2:{port_b}/v1/sync/push", content=b"{}",
                                  headers={"authorization": "Bearer bench",
                                           "content-type": "application/json"})
                anchor.append(time.perf_counter() - t0)
        lat: list[float] = []
        for _ in range(args.changes):
            await asyncio.sleep(rng.uniform(0.0, 0.25))
            i = rng.randrange(77)
            # a material change (a refresh of the age alone waits for the 2 s refresh push)
            old = a.owned.get(f"agent{i:05d}")
            state = rng.choice([s for s in ("up", "degraded", "down") if old and s != old.facts.state])
            a.put(facts(i, state), time.monotonic())
            want = tuple(a.owned.version)
            name = f"agent{i:05d}"
            lat.append(await wait_until(lambda name=name, want=want: held_version(b, name) == want))
        print(f"1. change -> peer convergence over {len(lat)} changes: "
              f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms (goal p99 <= 1000 ms); "
              f"anchor HTTP round trip p50 {statistics.median(anchor) * 1000:.2f} ms; "
              f"link failures A->B {dict(a.links[0].stats.failures)}, "
              f"exchanges {dict(a.links[0].stats.exchanges)}")

        # 2. partition heal
        heals: list[float] = []
        unknown: Counter[str] = Counter()
        for _ in range(args.partitions):
            to_b.blackhole = to_a.blackhole = True
            await asyncio.sleep(10.0)
            unknown = Counter(p.state for p in b.peer_agents())
            for k in range(20):
                a.put(facts(k, rng.choice(["up", "suspect", "down"])), time.monotonic())
            t0 = time.perf_counter()
            to_b.heal()
            to_a.heal()
            await wait_until(lambda: all(
                held_version(b, r.name) == tuple(r.version) for r in a.owned.since(0, 0.0))
                and b.peer_up(b.links[0]) and a.peer_up(a.links[0]))
            heals.append(time.perf_counter() - t0)
        if heals:
            print(f"2. partition (10 s blackhole, B saw {dict(unknown)}) -> healed and converged: "
                  + ", ".join(f"{h:.2f} s" for h in heals)
                  + f"; max {max(heals):.2f} s (goal <= 2 s)")
        await a.stop(2.0)
        await b.stop(2.0)

    # 3. full sync at N agents, one link step at a time (no background loops)
    transport = HttpxTransport(30.0)
    await transport.warm_up()  # built on the first push otherwise: time the sync, not that
    big = SyncEngine("mainpc", 1, clock=time.monotonic, transport=transport,
                     peers=[Peer("pc2", "http://127.0.0.2:0")], token="bench", config=SyncConfig(),
                     known_machines=MACHINES)
    for i in range(args.agents):
        big.put(facts(i, ("up", "degraded", "down", "missing")[i % 4]), time.monotonic())
    fresh = engine("pc2", "http://127.0.0.1:9")
    async with served(fresh, "127.0.0.2") as port:
        link = big.links[0]
        link.url = f"http://127.0.0.2:{port}"
        t0 = time.perf_counter()
        assert await link.step() == "reconcile"
        full_s = time.perf_counter() - t0
        full_bytes = link.stats.bytes_sent
        assert len(fresh.peer_agents()) == args.agents
        bodies = link.stats.requests
        link.needs_full = True
        t0 = time.perf_counter()
        assert await link.step() == "reconcile"
        again_s = time.perf_counter() - t0
        again_bytes = link.stats.bytes_sent - full_bytes
        # anchor: the same bytes as plain bodies to a no-op route (transport floor)
        app = FastAPI()

        @app.post("/sink")
        async def sink() -> dict[str, bool]:
            return {"ok": True}

        chunk = b"x" * min(full_bytes, 900 * 1024)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.005)
        sink_port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            t0 = time.perf_counter()
            sent = 0
            while sent < full_bytes:
                await client.post(f"http://127.0.0.1:{sink_port}/sink", content=chunk)
                sent += len(chunk)
            anchor_s = time.perf_counter() - t0
        server.should_exit = True
        await task
    print(f"3. full sync of {args.agents} agents to a fresh peer: {full_bytes / 1e6:.2f} MB in "
          f"{full_s * 1000:.0f} ms ({full_bytes / args.agents:.0f} B/agent, {bodies} requests); "
          f"anchor: same bytes POSTed raw {anchor_s * 1000:.0f} ms (ratio {full_s / anchor_s:.1f}x); "
          f"reconciliation with nothing changed: {again_bytes / 1e3:.1f} kB in {again_s * 1000:.0f} ms "
          f"({full_bytes / max(again_bytes, 1):.0f}x fewer bytes)")
    await big.stop(1.0)
    await fresh.stop(1.0)
    await to_a.stop()
    await to_b.stop()


async def end_to_end(changes: int) -> None:
    rng = random.Random(2)
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    topo = Path(__file__).resolve().parent.parent / "fleetobs" / "topology" / "data" / "fleet.yaml"
    to_b = await FaultProxy("127.0.0.3", "127.0.0.3", 0).start()
    to_a = await FaultProxy("127.0.0.2", "127.0.0.2", 0).start()
    env = {"FLEET_LOG_LEVEL": "WARNING"}
    a = HubProcess("mainpc", "127.0.0.2", topo, work / "a", peers=[f"pc2={to_b.url}"], env=env)
    b = HubProcess("pc2", "127.0.0.3", topo, work / "b", peers=[f"mainpc={to_a.url}"], env=env)
    try:
        await asyncio.gather(a.start(), b.start())
        to_b.target_port, to_a.target_port = b.port, a.port
        lat: list[float] = []
        async with httpx.AsyncClient(timeout=5.0) as client:
            async def status_on_b(agent: str) -> str | None:
                r = await client.get(f"{b.url}/v1/agents", params={"machine": "mainpc"})
                return next((x["last_status"] for x in r.json()["agents"] if x["name"] == agent), None)

            await wait_until_async(lambda: status_on_b("MemoryClient"), {"ok", None}, 20.0)
            names = ["MemoryClient", "KnowledgeBase", "ModelManagerSuite", "SessionMemoryManager"]
            current = dict.fromkeys(names, "")
            for _ in range(changes):
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                agent = rng.choice(names)
                status = rng.choice([s for s in ("ok", "degraded", "error") if s != current[agent]])
                current[agent] = status
                t0 = time.perf_counter()
                r = await client.post(f"{a.url}/v1/heartbeats", json={"agent": agent, "status": status})
                r.raise_for_status()
                while await status_on_b(agent) != status:
                    if time.perf_counter() - t0 > 10:
                        raise TimeoutError("did not converge")
                    await asyncio.sleep(0.01)
                lat.append(time.perf_counter() - t0)
        print(f"4. real hubs, heartbeat on mainpc -> pc2 GET /v1/agents over {len(lat)} changes: "
              f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms (goal p99 <= 1000 ms)")
    finally:
        a.stop()
        b.stop()
        await to_a.stop()
        await to_b.stop()


async def wait_until_async(get: object, accept: set[object], limit: float) -> None:
    t0 = time.perf_counter()
    while True:
        try:
            if await get() in accept:  # type: ignore[operator]
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.perf_counter() - t0 > limit:
            raise TimeoutError("peer never showed up")
        await asyncio.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=300)
    p.add_argument("--e2e-changes", type=int, default=100)
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--partitions", type=int, default=3)
    args = p.parse_args()
    asyncio.run(run(args))
    if args.e2e_changes:
        asyncio.run(end_to_end(args.e2e_changes))


if __name__ == "__main__":
    main()
