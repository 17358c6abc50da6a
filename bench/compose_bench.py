"""The container plan's success metrics, measured on the real Docker daemon.

* image size: the fleetobs image against its base (the anchor: Debian + Python alone);
* start to healthy per container: a lone hub container from ``docker run`` until
  ``/ready`` answers (polled every 20 ms from the host) and until Docker says
  ``healthy``, against the anchor ``docker run <base> true`` (container start alone);
  then every container of both bundles, from its ``StartedAt`` to its first passing
  healthcheck (Docker's health log: resolution is the test bundle's 5 s interval);
* ``docker stop`` of the hub (tini passes SIGTERM on) against the 10 s SIGKILL fallback;
* whole bundle up to all healthy: both machines' projects side by side, ``up -d`` (which
  waits for the ``service_healthy`` start order) until every container is healthy;
* hub container memory with 77 agents (54 probed, 23 through sync): the hub process's
  RSS and the container's cgroup working set.

The plan's targets: < 2 s start to healthy per container, < 30 s for the whole bundle.
Groups run the simulator with a 2 s constructor (``SIM_CONSTRUCTOR_SECONDS``), not the
real BaseAgent's ~20 s. Run as root: python bench/compose_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from exporters.docker_state import parse_time
from fleetobs.testing.docker.cli import Docker, compose_binary, docker_binary
from fleetobs.testing.docker.compose import health, service_of
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.fleet import DockerSession, Fleet, bring_up, tear_down
from fleetobs.testing.docker.images import build_all, cache_dir, daemon_marker
from fleetobs.testing.docker.stage import stage_bundles
from fleetobs.topology.load import load_topology

MIB = 1024**2


def image_sizes(d: Docker, session: DockerSession) -> None:
    def size(ref: str) -> int:
        return int(d.inspect(ref, kind="image")[0]["Size"])

    base, fleetobs = size(session.images.base), size(session.images.fleetobs)
    print(f"image size: fleetobs {fleetobs / MIB:.0f} MiB, base (anchor: Debian minbase + python3 + tini) "
          f"{base / MIB:.0f} MiB, fleetobs adds {(fleetobs - base) / MIB:.0f} MiB "
          f"(x{fleetobs / base:.2f} the base)")
    for name in ("prometheus", "alertmanager", "redis", "nats", "loki"):
        print(f"  stand-in {name}: {size(getattr(session.images, name)) / MIB:.0f} MiB (tests only)")


def lone_hub(d: Docker, session: DockerSession, runs: int) -> None:
    anchor, ready, healthy, stops = [], [], [], []
    for i in range(runs):
        t = time.perf_counter()
        d("run", "--rm", session.images.base, "true", timeout=60)
        anchor.append(time.perf_counter() - t)
        name = f"fleetobs-bench-hub-{i}"
        d("rm", "-f", name, check=False, timeout=60)
        t = time.perf_counter()
        d("run", "-d", "--name", name, "--label", "fleetobs.test=1", "-p", "127.0.0.1::9000",
          session.images.fleetobs, timeout=60)
        try:
            port = d("port", name, "9000/tcp", timeout=30).strip().rsplit(":", 1)[1]
            while time.perf_counter() - t < 60:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            ready.append(time.perf_counter() - t)
            while health(d.inspect(name)[0]) != "healthy" and time.perf_counter() - t < 90:
                time.sleep(0.1)
            healthy.append(time.perf_counter() - t)
            t = time.perf_counter()
            d("stop", "--time", "10", name, timeout=60)
            stops.append(time.perf_counter() - t)
        finally:
            d("rm", "-f", name, check=False, timeout=60)
    a, r = statistics.median(anchor), statistics.median(ready)
    print(f"lone hub container, median of {runs}: start to /ready {r:.2f} s (plan < 2 s), anchor "
          f"`docker run base true` {a:.2f} s (x{r / a:.1f}); to Docker 'healthy' "
          f"{statistics.median(healthy):.2f} s (the image's HEALTHCHECK polls every 5 s)")
    print(f"docker stop of the hub: median {statistics.median(stops):.2f} s, max {max(stops):.2f} s "
          f"(without an init passing SIGTERM on: the 10 s SIGKILL)")


def first_healthy(container: dict[str, Any]) -> float | None:
    started = parse_time(container["State"]["StartedAt"])
    ok = [parse_time(e["End"]) for e in (container["State"].get("Health") or {}).get("Log", [])
          if e.get("ExitCode") == 0]
    # Docker keeps the last 5 checks: a container up for long has lost its first one.
    if not ok or len((container["State"].get("Health") or {}).get("Log", [])) >= 5:
        return None
    return (min(ok) - started).total_seconds()


def bundle(fleet: Fleet) -> None:
    print(f"whole bundle up to all healthy: {fleet.healthy_seconds:.1f} s (plan < 30 s); compose up -d: "
          + ", ".join(f"{m} {s:.1f} s" for m, s in fleet.up_seconds.items())
          + "; retries of up after a transiently unhealthy dependency: "
          + str({m: len(p.up_retries) for m, p in fleet.projects.items()}))
    for machine, project in fleet.projects.items():
        times: dict[str, float] = {}
        for c in project.containers():
            seconds = first_healthy(c)
            if seconds is not None:
                times[service_of(c)] = seconds
        if times:
            worst = max(times, key=lambda k: times[k])
            print(f"  {machine}: start to first passing healthcheck, {len(times)} containers: median "
                  f"{statistics.median(times.values()):.1f} s, max {times[worst]:.1f} s ({worst}); "
                  "resolution: the 5 s healthcheck interval (the first check runs one interval after start)")


def hub_memory(fleet: Fleet) -> None:
    d = fleet.docker
    for machine in fleet.projects:
        r = httpx.get(f"{fleet.hub(machine)}/v1/agents", timeout=10).json()["agents"]
        cid = fleet.container(machine, "hub")
        top = d("top", cid, "-o", "pid,rss,args", timeout=30).splitlines()[1:]
        # The Python process (tini's child), not tini: its argv starts with the interpreter.
        rss = sum(int(line.split()[1]) for line in top
                  if len(line.split()) > 2 and "python" in line.split()[2] and "hub" in line) * 1024
        stats = d("stats", "--no-stream", "--format", "{{.MemUsage}}", cid, timeout=60).strip()
        print(f"{machine} hub container with {len(r)} agents in its view: hub process RSS {rss / MIB:.1f} MiB; "
              f"docker stats {stats}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    binary, compose = docker_binary(), compose_binary()
    if binary is None or compose is None:
        print("docker and docker-compose are needed (apt-get install docker.io docker-compose)", file=sys.stderr)
        return 2
    daemon = DockerDaemon(cache_dir() / "dockerd.log", marker=daemon_marker()).start()
    d = Docker(binary)
    try:
        t = time.monotonic()
        images = build_all(d)
        print(f"images ready in {time.monotonic() - t:.0f} s (cached parts reused) "
              f"at {datetime.now().isoformat(timespec='seconds')}")
        session = DockerSession(d, compose, images, daemon, time.monotonic() - t)
        image_sizes(d, session)
        lone_hub(d, session, args.runs)
        topology = load_topology(None)
        with tempfile.TemporaryDirectory(prefix="fleetobs-bench-") as tmp:
            root = stage_bundles(topology, Path(tmp))
            try:
                fleet = bring_up(session, topology, root)
                time.sleep(15)  # a few probe and sync rounds: every agent in both views
                bundle(fleet)
                hub_memory(fleet)
            finally:
                tear_down(session, root)
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
