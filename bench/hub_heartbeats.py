"""Hub vs Prometheus Pushgateway, side by side, one load generator, 10,000 agents.

Run: ``python bench/hub_heartbeats.py [--agents 10000] [--connections 32]``

Both servers run as real processes on 127.0.0.1 ephemeral ports: the hub via
``fleetobs hub`` (on a generated topology of N agents on mainpc, probing off) and
Debian's ``/usr/bin/prometheus-pushgateway``. One asyncio load generator with raw
keep-alive HTTP/1.1 connections drives both, so client cost is identical. Printed:

1. single heartbeats/s and p50/p99: hub ``POST /v1/heartbeats`` vs Pushgateway
   ``PUT /metrics/job/fleet/instance/<agent>`` (the same 10 series per agent the hub
   exposes), each agent beating once per pass;
2. the hub's batched endpoint (1,000 heartbeats a POST), heartbeats/s;
3. ``/metrics`` scrape time at N agents, hub vs Pushgateway;
4. heartbeat p99 while another connection scrapes /metrics back to back;
5. process start to ready (hub /ready with the default topology, Pushgateway /-/ready);
6. RSS of both at N agents.

Goals (issue 3): hub >= 20x Pushgateway single; batched >= 100k/s; scrape <= 150 ms;
heartbeat p99 under scrape <= 50 ms; start < 1 s; RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hubproc import (
    bench_topology,
    free_port,
    hub_argv,
    hub_env,
    read_response,
    request,
    rss_mb,
    wait_http,
)

PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
STATES = ("missing", "up", "degraded", "suspect", "down", "unmonitored")


# --- the load generator: raw keep-alive HTTP/1.1 -----------------------------------------
@dataclass
class Result:
    requests: int
    items: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def per_second(self) -> float:
        return self.items / self.seconds

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


async def drive(host: str, port: int, reqs: Sequence[bytes], connections: int,
                items_per_request: int = 1, max_seconds: float = 20.0) -> Result:
    """Send each request once over ``connections`` keep-alive connections, stopping
    early after ``max_seconds`` (Pushgateway slows down with every group it holds)."""
    queue = iter(reqs)
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def conn() -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        try:
            for req in queue:
                if time.perf_counter() > deadline:
                    break
                sent += 1
                t0 = time.perf_counter()
                writer.write(req)
                status, _ = await read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status >= 300:
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    return Result(sent, sent * items_per_request, time.perf_counter() - start, latencies, errors)


async def scrape_times(host: str, port: int, path: str, n: int) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection(host, port, limit=2**26)
    times: list[float] = []
    size = 0
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            writer.write(request("GET", host, port, path))
            _, body = await read_response(reader)
            times.append(time.perf_counter() - t0)
            size = len(body)
    finally:
        writer.close()
    return times, size


async def drive_while_scraping(host: str, port: int, reqs: Sequence[bytes], connections: int,
                               max_seconds: float) -> tuple[Result, int]:
    stop = asyncio.Event()
    scrapes = 0

    async def scraper() -> None:
        nonlocal scrapes
        reader, writer = await asyncio.open_connection(host, port, limit=2**26)
        try:
            while not stop.is_set():
                writer.write(request("GET", host, port, "/metrics"))
                await read_response(reader)
                scrapes += 1
        finally:
            writer.close()

    task = asyncio.create_task(scraper())
    result = await drive(host, port, reqs, connections, max_seconds=max_seconds)
    stop.set()
    await task
    return result, scrapes


# --- the servers ----------------------------------------------------------------------------
def uvicorn_flavour(python: str) -> str:
    code = ("import importlib.util as u; print(('httptools' if u.find_spec('httptools') else 'h11')"
            " + '/' + ('uvloop' if u.find_spec('uvloop') else 'asyncio'))")
    return subprocess.run([python, "-c", code], capture_output=True, text=True,
                          check=False).stdout.strip()


@contextmanager
def process(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


HUB_PYTHON = [sys.executable]


def push_body(i: int, instance: bool = False) -> bytes:
    labels = f'group="group{i % 20:02d}"'
    if instance:  # in the bulk group every agent carries its own label
        labels += f',agent="agent{i:05d}"'
    lines = [f"fleet_agent_up{{{labels}}} 1"]
    lines += [f'fleet_agent_state{{{labels},state="{s}"}} {1 if s == "up" else 0}' for s in STATES]
    lines += [f"fleet_agent_heartbeat_age_seconds{{{labels}}} 0",
              f"fleet_agent_interval_seconds{{{labels}}} 30",
              f"fleet_agent_required{{{labels}}} 1"]
    typed: list[str] = []
    for line in lines:  # gauges, as the hub types them (Pushgateway insists on consistency)
        fam = line.split("{", 1)[0]
        if not typed or not typed[-1].startswith(fam + "{"):
            typed.append(f"# TYPE {fam} gauge")
        typed.append(line)
    return ("\n".join(typed) + "\n").encode()


def bulk_body(n: int) -> bytes:
    """All N agents' series in one text body; TYPE lines once per family."""
    by_family: dict[str, list[str]] = {}
    for i in range(n):
        for line in push_body(i, instance=True).decode().splitlines():
            if line.startswith("#"):
                continue
            by_family.setdefault(line.split("{", 1)[0], []).append(line)
    out = []
    for fam, lines in by_family.items():
        out.append(f"# TYPE {fam} gauge")
        out.extend(lines)
    return ("\n".join(out) + "\n").encode()


def ms(xs: Sequence[float]) -> str:
    return f"median {statistics.median(xs) * 1000:7.1f} ms  max {max(xs) * 1000:7.1f} ms"


# --- the run --------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> None:
    n, conns = args.agents, args.connections
    host = "127.0.0.1"
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    topo = work / "bench-topology.yaml"
    bench_topology(n, topo)
    print(f"# hub vs pushgateway, {n} agents, {conns} keep-alive connections, one load generator")
    print(f"# cpus: {os.cpu_count()}, python {sys.version.split()[0]}, hub python {HUB_PYTHON[0]} "
          f"(uvicorn http/loop: {uvicorn_flavour(HUB_PYTHON[0])})")

    # 5. start to ready (default topology) -- before the load, on a quiet machine.
    hub_ready, pg_ready = [], []
    for k in range(3):
        port = free_port()
        t0 = time.perf_counter()
        with process(hub_argv(HUB_PYTHON[0], port, None, work / f"start{k}"), work, hub_env(None)):
            wait_http(host, port, "/ready")
            hub_ready.append(time.perf_counter() - t0)
        port = free_port()
        t0 = time.perf_counter()
        with process([PUSHGATEWAY, f"--web.listen-address={host}:{port}",
                      f"--persistence.file={work / f'pg{k}.data'}"], work):
            wait_http(host, port, "/-/ready")
            pg_ready.append(time.perf_counter() - t0)

    hub_port, pg_port = free_port(), free_port()
    with process(hub_argv(HUB_PYTHON[0], hub_port, topo, work / "data"), work, hub_env(None)) as hub_proc, \
            process([PUSHGATEWAY, f"--web.listen-address={host}:{pg_port}",
                     f"--persistence.file={work / 'pg.data'}"], work) as pg_proc:
        wait_http(host, hub_port, "/ready", timeout=60)
        wait_http(host, pg_port, "/-/ready")

        names = [f"agent{i:05d}" for i in range(n)]
        hub_single = [request("POST", host, hub_port, "/v1/heartbeats",
                              json.dumps({"agent": a, "interval_seconds": 30}).encode())
                      for a in names]
        pg_single = [request("PUT", host, pg_port, f"/metrics/job/fleet/instance/{a}",
                             push_body(i, instance=True), "text/plain; version=0.0.4")
                     for i, a in enumerate(names)]
        # Before anything is measured both hold all N agents: the hub from one pass of
        # single heartbeats, Pushgateway from one bulk PUT of the same series (pushing N
        # groups one by one takes Pushgateway tens of minutes: it re-checks every
        # series it holds on each push).
        await drive(host, hub_port, hub_single, conns, max_seconds=120)
        # Context: Pushgateway while it still holds (almost) nothing.
        p0 = await drive(host, pg_port, pg_single, conns, max_seconds=3)
        print(f"# pushgateway PUT while nearly empty (first {p0.requests} groups): "
              f"{p0.per_second:.0f} /s  p99 {p0.pct(0.99):.1f} ms  errors {p0.errors}")
        bulk = request("PUT", host, pg_port, "/metrics/job/fleet_bulk", bulk_body(n),
                       "text/plain; version=0.0.4")
        pb = await drive(host, pg_port, [bulk], 1, max_seconds=120)
        print(f"# pushgateway bulk PUT of {n} agents' series: {pb.seconds:.2f} s, errors {pb.errors}")

        # 1. single heartbeats (each side for at most {secs} s)
        secs = args.seconds
        h1 = await drive(host, hub_port, hub_single, conns, max_seconds=secs)
        p1 = await drive(host, pg_port, pg_single, conns, max_seconds=secs)
        print(f"\n## 1. single heartbeats (one per request; at most {n} or {secs:g} s each)")
        print(f"hub  POST /v1/heartbeats : {h1.per_second:9.0f} /s  p50 {h1.pct(0.5):6.2f} ms  "
              f"p99 {h1.pct(0.99):6.2f} ms  errors {h1.errors}  ({h1.requests} sent)")
        print(f"pushgateway PUT          : {p1.per_second:9.0f} /s  p50 {p1.pct(0.5):6.2f} ms  "
              f"p99 {p1.pct(0.99):6.2f} ms  errors {p1.errors}  ({p1.requests} sent)")
        print(f"ratio hub/pushgateway    : {h1.per_second / p1.per_second:6.2f}x throughput, "
              f"p99 {p1.pct(0.99) / h1.pct(0.99):5.2f}x lower  (goal >= 20x)")

        # 2. batched
        batch = 1000
        bodies = [json.dumps([{"agent": a, "interval_seconds": 30} for a in names[j:j + batch]])
                  .encode() for j in range(0, n, batch)]
        batched = [request("POST", host, hub_port, "/v1/heartbeats", b) for b in bodies] * 5
        hb = await drive(host, hub_port, batched, min(conns, 4), items_per_request=batch)
        print(f"\n## 2. batched heartbeats ({batch} per POST, {len(batched)} POSTs)")
        print(f"hub batched              : {hb.per_second:9.0f} heartbeats/s  "
              f"p99 {hb.pct(0.99):6.1f} ms per POST  errors {hb.errors}  (goal >= 100000/s)")
        print(f"ratio batched/pushgateway: {hb.per_second / p1.per_second:6.1f}x")

        # 3. scrape time
        hs, hsize = await scrape_times(host, hub_port, "/metrics", 10)
        ps, psize = await scrape_times(host, pg_port, "/metrics", 10)
        print(f"\n## 3. /metrics scrape at {n} agents (10 scrapes each)")
        print(f"hub         : {ms(hs)}  {hsize / 1e6:5.1f} MB")
        print(f"pushgateway : {ms(ps)}  {psize / 1e6:5.1f} MB")
        print(f"ratio pushgateway/hub median: {statistics.median(ps) / statistics.median(hs):5.2f}x "
              f"(goal: hub <= 150 ms)")

        # 4. heartbeats while scraping
        hw, scrapes = await drive_while_scraping(host, hub_port, hub_single, conns, secs)
        pw, pscrapes = await drive_while_scraping(host, pg_port, pg_single, conns, secs)
        print("\n## 4. single heartbeats while /metrics is scraped back to back")
        print(f"hub         : {hw.per_second:9.0f} /s  p99 {hw.pct(0.99):6.2f} ms  "
              f"({scrapes} scrapes meanwhile; goal p99 <= 50 ms)")
        print(f"pushgateway : {pw.per_second:9.0f} /s  p99 {pw.pct(0.99):6.2f} ms  "
              f"({pscrapes} scrapes meanwhile)")

        # 6. RSS
        hr, pr = rss_mb(hub_proc.pid), rss_mb(pg_proc.pid)
        print(f"\n## 6. RSS at {n} agents")
        print(f"hub {hr:6.1f} MB   pushgateway {pr:6.1f} MB   ratio {hr / pr:4.2f}x (goal hub <= 150 MB)")

    print("\n## 5. process start to ready (3 runs, default topology)")
    print(f"hub /ready          : {ms(hub_ready)}  (goal < 1 s)")
    print(f"pushgateway /-/ready: {ms(pg_ready)}")
    print(f"ratio hub/pushgateway median: {statistics.median(hub_ready) / statistics.median(pg_ready):5.1f}x")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="time bound of each single-heartbeat phase")
    ap.add_argument("--hub-python", default=sys.executable,
                    help="interpreter for the hub, e.g. a venv with uvicorn[standard]")
    args = ap.parse_args()
    HUB_PYTHON[0] = args.hub_python
    if not Path(PUSHGATEWAY).exists():
        sys.exit(f"{PUSHGATEWAY} not found (apt-get install prometheus-pushgateway)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
