"""The container plan's success metrics, measured on the real Docker daemon.

* image size: the fleetobs image against its base (the anchor: Debian + Python alone);
* start to healthy per container: a lone hub container from ``docker run`` until
  ``/ready`` answers (polled every 20 ms from the host) and until Docker says
  ``healthy``, against the anchor ``docker run <base> true`` (container start alone);
  then every container of both bundles, from its ``start`` event to its first
  ``health_status: healthy`` (``docker events``; Docker runs the first check one
  interval, 5 s in the test bundle, after the start);
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
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

from exporters.docker_state import parse_time
from fleetobs.testing.docker.cli import Docker, compose_binary, docker_binary
from fleetobs.testing.docker.compose import health
from fleetobs.testing.docker.daemon import DockerDaemon
from fleetobs.testing.docker.fleet import DockerSession, Fleet, bring_up, tear_down
from fleetobs.testing.docker.images import build_all, cache_dir, daemon_marker
from fleetobs.testing.docker.runs import Run
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
    anchor, ready, from_start, healthy, stops = [], [], [], [], []
    for i in range(runs):
        t = time.perf_counter()
        d("run", "--rm", session.images.base, "true", timeout=60)
        anchor.append(time.perf_counter() - t)
        name = session.run.project(f"bench-hub-{i}")
        d("rm", "-f", name, check=False, timeout=60)
        t = time.perf_counter()
        d("run", "-d", "--name", name, "--label", f"com.docker.compose.project={name}", "-p", "127.0.0.1::9000",
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
            ready_wall = time.time()
            started = parse_time(d.inspect(name)[0]["State"]["StartedAt"]).timestamp()
            from_start.append(ready_wall - started)
            while health(d.inspect(name)[0]) != "healthy" and time.perf_counter() - t < 90:
                time.sleep(0.1)
            healthy.append(time.perf_counter() - t)
            t = time.perf_counter()
            d("stop", "--time", "10", name, timeout=60)
            stops.append(time.perf_counter() - t)
        finally:
            d("rm", "-f", name, check=False, timeout=60)
    a, r = statistics.median(anchor), statistics.median(ready)
    print(f"lone hub container, median of {runs}: container start (StartedAt) to /ready "
          f"{statistics.median(from_start):.2f} s (plan < 2 s); from `docker run -d` {r:.2f} s, anchor "
          f"`docker run base true` {a:.2f} s (x{r / a:.1f}); to Docker 'healthy' "
          f"{statistics.median(healthy):.2f} s (the image's HEALTHCHECK polls every 5 s)")
    print(f"docker stop of the hub: median {statistics.median(stops):.2f} s, max {max(stops):.2f} s "
          f"(without an init passing SIGTERM on: the 10 s SIGKILL)")


class HealthEvents:
    """``docker events`` streamed while the bundle comes up: when each container started and
    when Docker first called it healthy (dockerd keeps only its last 256 events, and every
    healthcheck adds three exec events, so they must be read live)."""

    def __init__(self, docker: Docker) -> None:
        self._proc = subprocess.Popen(  # --since: also what happened before it subscribed
            [docker.binary, "events", "--since", f"{time.time():.3f}", "--filter", "type=container",
             "--filter", "event=start",
             "--filter", "event=health_status", "--format", "{{json .}}"],
            stdout=subprocess.PIPE, text=True)
        self.started: dict[str, float] = {}
        self.healthy: dict[str, float] = {}
        self.names: dict[str, str] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            event = json.loads(line)
            cid, when = event["id"], event["timeNano"] / 1e9
            attributes = event.get("Actor", {}).get("Attributes", {})
            project = str(attributes.get("com.docker.compose.project", "")).rsplit("-", 1)[-1]  # the machine
            service = attributes.get("com.docker.compose.service") or attributes.get("name", cid[:12])
            self.names[cid] = f"{project}/{service}" if project else str(service)
            if event["Action"] == "start":
                self.started.setdefault(cid, when)
            elif event["Action"] == "health_status: healthy":
                self.healthy.setdefault(cid, when)

    def stop(self) -> dict[str, float]:
        """Service -> seconds from start to first healthy."""
        self._proc.terminate()
        self._proc.wait(10)
        self._thread.join(5)
        return {self.names[c]: self.healthy[c] - self.started[c] for c in self.healthy if c in self.started}


def bundle(fleet: Fleet, per_container: dict[str, float]) -> None:
    print(f"whole bundle up to all healthy: {fleet.healthy_seconds:.1f} s (plan < 30 s); compose up -d: "
          + ", ".join(f"{m} {s:.1f} s" for m, s in fleet.up_seconds.items())
          + "; retries of up after a transiently unhealthy dependency: "
          + str({m: len(p.up_retries) for m, p in fleet.projects.items()}))
    if per_container:
        worst = max(per_container, key=lambda k: per_container[k])
        best = min(per_container, key=lambda k: per_container[k])
        print(f"  start to healthy per container (docker events), {len(per_container)} containers: median "
              f"{statistics.median(per_container.values()):.1f} s, min {per_container[best]:.1f} s ({best}), "
              f"max {per_container[worst]:.1f} s ({worst}); Docker runs the first check one interval "
              "(5 s in the test bundle) after start")


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
    run = Run.new(cache_dir() / "docker-runs")
    try:
        t = time.monotonic()
        images = build_all(d)
        print(f"images ready in {time.monotonic() - t:.0f} s (cached parts reused) "
              f"at {datetime.now().isoformat(timespec='seconds')}; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} (other work on this host slows every figure)")
        session = DockerSession(d, compose, images, daemon, time.monotonic() - t, run)
        image_sizes(d, session)
        lone_hub(d, session, args.runs)
        topology = load_topology(None)
        with tempfile.TemporaryDirectory(prefix="fleetobs-bench-") as tmp:
            root = stage_bundles(topology, Path(tmp))
            try:
                events = HealthEvents(d)
                fleet = bring_up(session, topology, root)
                per_container = events.stop()
                time.sleep(15)  # a few probe and sync rounds: every agent in both views
                bundle(fleet, per_container)
                hub_memory(fleet)
                print(f"load average at the end: {os.getloadavg()[0]:.1f}")
            finally:
                tear_down(session, root)
    finally:
        run.sweep(d)
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
