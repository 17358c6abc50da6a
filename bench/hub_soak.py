"""Soak: the hub at 10,000 agents under steady heartbeats for ``--minutes`` (default 10).

Run: ``python bench/hub_soak.py [--minutes 10] [--src DIR] [--agents 10000]``

Never run by CI (the duration is a flag; tests do not import this). One ``fleetobs hub``
process (of ``--src``, default this checkout) on a generated topology of N agents;
``--connections`` keep-alive connections send single heartbeats back to back, each
connection cycling through its share of the agents; ``/metrics`` is scraped every
``--scrape-seconds`` (as Prometheus would). Printed each minute: heartbeats/s, p50,
p99, RSS. At the end: the first and last minute side by side, the RSS slope (least
squares over the samples after the first minute) and ``fleet_hub_stalls_total``.

Goals (issue 13): p99 within 3x p50; RSS flat (slope ~0 MB/min).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hubproc import (
    REPO,
    bench_topology,
    free_port,
    hub_process,
    metric_value,
    pct,
    read_response,
    request,
    rss_mb,
    wait_http,
)

HOST = "127.0.0.1"


@dataclass
class Minute:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y)."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


async def soak(port: int, pid: int, args: argparse.Namespace) -> None:
    n, conns = args.agents, args.connections
    minutes = [Minute() for _ in range(max(1, int(args.minutes + 0.999)))]
    start = time.perf_counter()
    end = start + args.minutes * 60
    rss: list[tuple[float, float]] = []

    def bucket() -> Minute | None:
        i = int((time.perf_counter() - start) // 60)
        return minutes[i] if i < len(minutes) else None

    async def beater(k: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        reqs = [request("POST", HOST, port, "/v1/heartbeats",
                        json.dumps({"agent": f"agent{i:05d}", "interval_seconds": 30}).encode())
                for i in range(k, n, conns)]
        try:
            while time.perf_counter() < end:
                for req in reqs:
                    t0 = time.perf_counter()
                    writer.write(req)
                    status, _ = await read_response(reader)
                    t1 = time.perf_counter()
                    m = bucket()
                    if m is None or t1 >= end:
                        return
                    m.latencies.append(t1 - t0)
                    if status != 200:
                        m.errors += 1
        finally:
            writer.close()

    async def scraper() -> None:
        # A new connection per scrape: the hub closes idle keep-alive connections.
        while time.perf_counter() + args.scrape_seconds < end:
            await asyncio.sleep(args.scrape_seconds)
            await scrape(port)

    async def sampler() -> None:
        printed = 0
        while time.perf_counter() < end:
            await asyncio.sleep(min(5.0, max(end - time.perf_counter(), 0.01)))
            t = time.perf_counter() - start
            rss.append((t / 60, rss_mb(pid)))
            done = min(int(t // 60), len(minutes))
            for i in range(printed, done):
                m = minutes[i]
                print(f"minute {i + 1:3d}: {len(m.latencies) / 60:7.0f} /s  p50 {pct(m.latencies, 0.5):6.2f} ms"
                      f"  p99 {pct(m.latencies, 0.99):7.2f} ms  errors {m.errors}  RSS {rss[-1][1]:6.1f} MB",
                      flush=True)
            printed = done

    await asyncio.gather(sampler(), scraper(), *(beater(k) for k in range(conns)))
    text = await scrape(port)
    first, last = minutes[0], minutes[-1]
    later = [p for p in rss if p[0] >= 1.0] or rss
    print(f"\n## soak: {n} agents, {conns} connections, {args.minutes:g} min, "
          f"/metrics every {args.scrape_seconds:g} s")
    last_seconds = min(60.0, args.minutes * 60 - 60 * (len(minutes) - 1))
    for label, m, secs in (("first minute", first, 60.0), ("last minute", last, last_seconds)):
        p50, p99 = pct(m.latencies, 0.5), pct(m.latencies, 0.99)
        print(f"{label:12s}: {len(m.latencies) / secs:7.0f} /s  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  "
              f"p99/p50 {p99 / p50:5.2f}x (goal <= 3x)  errors {m.errors}")
    print(f"RSS: first sample {rss[0][1]:.1f} MB, last {rss[-1][1]:.1f} MB, max {max(r for _, r in rss):.1f} MB, "
          f"slope after minute 1: {slope(later):+.3f} MB/min")
    print(f"fleet_hub_stalls_total {metric_value(text, 'fleet_hub_stalls_total'):.0f}, "
          f"fleet_hub_store_flushes_total {metric_value(text, 'fleet_hub_store_flushes_total'):.0f}, "
          f"pending writes {metric_value(text, 'fleet_hub_store_pending_writes'):.0f}")


async def scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection(HOST, port, limit=2**26)
    try:
        writer.write(request("GET", HOST, port, "/metrics"))
        return (await read_response(reader))[1].decode()
    finally:
        writer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak duration (CI never runs this)")
    ap.add_argument("--src", type=Path, default=REPO, help="source tree of the hub to run")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--scrape-seconds", type=float, default=15.0)
    args = ap.parse_args()
    src = args.src.resolve()
    work = Path(tempfile.mkdtemp(prefix="hub-soak-"))
    topo = work / "bench-topology.yaml"
    bench_topology(args.agents, topo)
    rev = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    print(f"# hub of {src} ({rev or 'not a git checkout'}), python {sys.version.split()[0]}", flush=True)
    port = free_port()
    try:
        with hub_process(args.python, src, port, topo, work / "data") as proc:
            wait_http(HOST, port, "/ready", timeout=120)
            asyncio.run(soak(port, proc.pid, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
