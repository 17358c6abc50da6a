"""CPU cost of probing the real fleet's agents every 5 s (goal: < 5% of one core).

The 75 probed agents of the default topology (77 minus the two hubs) run in a
separate simulator process on free ports; this process probes them every
``--interval`` seconds for ``--seconds`` and reports its own CPU time (all threads,
libzmq's I/O thread included) over wall time. Side by side:

* anchor: the same loop with nothing to probe (the floor: an idle asyncio loop);
* pooled: the shipped prober (a REQ socket that answered is reused);
* fresh: a new REQ socket per probe (what the timeout rule would cost if applied always);
* hub: the probing plugin inside a real Hub core (observations recorded).

Run: python bench/probe_cpu.py [--seconds 30] [--interval 5] [--protocol zmq|http]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fleetobs.probe.cycle import Prober, ProbeTarget
from fleetobs.probe.result import Protocol
from fleetobs.probe.targets import probe_target
from fleetobs.probe.zmq_probe import ZmqProber
from fleetobs.settings import load_settings
from fleetobs.simulator.process import simulator_process
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import ProbeKind, Topology


async def measure(seconds: float, interval: float, cycle: Callable[[], Awaitable[None]]) -> float:
    """CPU seconds / wall seconds while running ``cycle`` every ``interval``."""
    loop = asyncio.get_running_loop()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    next_at = loop.time()
    end = next_at + seconds
    while loop.time() < end:
        await cycle()
        next_at += interval
        await asyncio.sleep(max(0.0, min(next_at, end) - loop.time()))
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def targets_of(topo: Topology, protocol: Protocol) -> list[ProbeTarget]:
    kind = ProbeKind.ZMQ if protocol is Protocol.ZMQ else ProbeKind.HTTP
    return [probe_target(a.model_copy(update={"probe": kind}), "127.0.0.1")
            for a in topo.agents if a.probe is not ProbeKind.PUSH]


async def main(seconds: float, interval: float, protocol: Protocol) -> None:
    with simulator_process(["-m", "mainpc", "-m", "pc2"]) as topo_file:
        topo = load_topology(topo_file)
        targets = targets_of(topo, protocol)
        results: dict[str, float] = {}

        async def nothing() -> None:
            return None

        results["anchor (idle loop)"] = await measure(seconds, interval, nothing)

        prober = Prober(timeout_seconds=2.0, concurrency=32)
        answered = 0

        def sink(_t: ProbeTarget, r: object) -> None:
            nonlocal answered
            answered += 1

        async def pooled() -> None:
            await prober.run_cycle(targets, sink)

        results["pooled prober"] = await measure(seconds, interval, pooled)
        await prober.aclose()

        if protocol is Protocol.ZMQ:
            async def fresh() -> None:
                z = ZmqProber()
                sem = asyncio.Semaphore(32)

                async def one(t: ProbeTarget) -> None:
                    async with sem:
                        await z.probe(t.host, t.port, 2.0)
                        z._idle.clear()  # drop the socket: the next probe opens a new one

                await asyncio.gather(*(one(t) for t in targets))
                z.close()

            results["fresh socket per probe"] = await measure(seconds, interval, fresh)

        from hub.probing import ProbingPlugin
        from hub.service import Hub, HubConfig

        with tempfile.TemporaryDirectory() as tmp:
            hub_topo = topo if protocol is Protocol.ZMQ else topo.model_validate(
                {**topo.model_dump(), "agents": [
                    {**a.model_dump(), "probe": "http" if a.probe is not ProbeKind.PUSH else "push"}
                    for a in topo.agents]})
            plugins = []
            for machine in ("mainpc", "pc2"):
                hub = Hub(hub_topo, machine, load_settings({}), Path(tmp),
                          config=HubConfig(background=False))
                from hub.probing import probing_plugin

                p = probing_plugin(hub)
                assert isinstance(p, ProbingPlugin)
                plugins.append((hub, p))

            async def hub_cycle() -> None:
                for hub, p in plugins:
                    await p.probe_once()
                    hub.tick()

            results["hub plugin (2 hubs, record + judge)"] = await measure(seconds, interval, hub_cycle)
            for _, p in plugins:
                await p.stop(2.0)

    print(f"probing {len(targets)} agents over {protocol.value} every {interval:g} s "
          f"for {seconds:g} s per variant ({answered} answers in the pooled run)")
    anchor = results["anchor (idle loop)"]
    for name, share in results.items():
        ratio = f"{share / anchor:6.1f}x anchor" if anchor > 0 else ""
        print(f"  {name:40s} {share * 100:6.3f}% of one core  {ratio}")
    verdict = "PASS" if results["pooled prober"] < 0.05 else "FAIL"
    print(f"goal < 5% of one core: {verdict} ({results['pooled prober'] * 100:.3f}%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--protocol", choices=[p.value for p in Protocol], default="zmq")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.interval, Protocol(args.protocol)))
