"""Probe cycle time for 1,000 agents (goal: p99 below the 5 s interval).

1,000 made-up agents run in a separate simulator process (real ZeroMQ REP and HTTP
sockets on free ports); this process probes all of them, cycle after cycle, and
prints cycle-time percentiles. Side by side:

* anchor: the 75 probed agents of the real fleet (what the hub does today);
* 1,000 healthy agents, at the default concurrency and at the auto-sized one;
* 1,000 agents of which 5% never answer (each holds a probe slot for the whole
  timeout: the case that decides whether a cycle fits its interval).

Run: python bench/probe_cycle.py [--cycles 20] [--agents 1000] [--protocol zmq|http]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
from collections.abc import Sequence

from fleetobs.probe.cycle import Prober, ProbeTarget
from fleetobs.probe.result import Protocol
from fleetobs.probe.targets import auto_concurrency, probe_target
from fleetobs.simulator.process import simulator_process
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import ProbeKind

INTERVAL = 5.0
TIMEOUT = 2.0




async def cycle_times(ts: list[ProbeTarget], cycles: int, concurrency: int) -> tuple[list[float], int]:
    prober = Prober(TIMEOUT, concurrency)
    answered = 0
    out: list[float] = []
    try:
        for _ in range(cycles):
            report = await prober.run_cycle(ts, lambda _t, _r: None)
            out.append(report.duration_seconds)
            answered = report.answered
    finally:
        await prober.aclose()
    return out, answered


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


async def run_scenario(name: str, sim_args: list[str], protocol: Protocol, cycles: int,
                       concurrencies: Sequence[int | None]) -> list[str]:
    lines = []
    with simulator_process(sim_args) as topo_file:
        topo = load_topology(topo_file)
        kind = ProbeKind.ZMQ if protocol is Protocol.ZMQ else ProbeKind.HTTP
        ts = [probe_target(a.model_copy(update={"probe": kind}), "127.0.0.1")
              for a in topo.agents if a.probe is not ProbeKind.PUSH]
        for c in concurrencies:
            conc = c if c is not None else auto_concurrency(len(ts), TIMEOUT, INTERVAL)
            times, answered = await cycle_times(ts, cycles, conc)
            p50, p99 = statistics.median(times), pct(times, 99)
            verdict = "below" if p99 < INTERVAL else "ABOVE"
            label = f"{name}, concurrency {conc}{' (auto)' if c is None else ''}"
            lines.append(f"  {label:58s} n={len(ts):5d} answered={answered:5d} "
                         f"p50={p50 * 1000:8.1f} ms p99={p99 * 1000:8.1f} ms max={max(times) * 1000:8.1f} ms"
                         f"  p99 {verdict} {INTERVAL:g} s ({p99 / INTERVAL * 100:5.1f}% of it)")
    return lines


async def main(cycles: int, agents: int, protocol: Protocol) -> None:
    print(f"probe cycles over {protocol.value}, timeout {TIMEOUT:g} s, interval {INTERVAL:g} s, "
          f"{cycles} cycles per row")
    rows: list[str] = []
    rows += await run_scenario("anchor: the real fleet", ["-m", "mainpc", "-m", "pc2"], protocol,
                               cycles, [32])
    rows += await run_scenario(f"{agents} healthy", ["--synthetic", str(agents)], protocol, cycles,
                               [32, None])
    rows += await run_scenario(f"{agents}, 5% silent", ["--synthetic", str(agents), "--fail-rate", "0.05",
                                                       "--kinds", "silent"], protocol,
                               max(3, cycles // 4), [32, None])
    # Each row's p99 against the anchor's (the real fleet, what the hub does today).
    p99s = [float(re.search(r"p99=\s*([\d.]+) ms", r).group(1)) for r in rows]  # type: ignore[union-attr]
    print("\n".join(f"{r}  {p / p99s[0]:5.2f}x anchor p99" for r, p in zip(rows, p99s, strict=True)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--protocol", choices=[p.value for p in Protocol], default="zmq")
    a = parser.parse_args()
    asyncio.run(main(a.cycles, a.agents, Protocol(a.protocol)))
