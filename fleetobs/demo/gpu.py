"""A SIMULATED GPU exporter for ``fleetobs demo``: the real exporter on the fake NVML.

The exporter code is the production one (exporters.app.GpuExporter: nvidia-ml-py's
real bindings, /proc and Docker API attribution); only what it reads is made up: the
machine's card (RTX 4090 or RTX 3060, as the topology says) from
exporters.testing.fake_nvml, one GPU process per GPU group in a fake /proc tree, and a
fake Docker API naming each process's compose service. Each group uses a share of its
budget (one over it), so the status page has something to show.

``python -m fleetobs.demo.gpu --machine M --host H --port P --topology T --work DIR``
prints ``fleetobs demo gpu: machine M listening on http://H:P`` and serves until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

#: Share of each GPU group's budget its simulated processes use (cycled); 1.15: over budget.
SHARES = (1.15, 0.55, 0.8, 0.35, 0.65)


def main(argv: list[str] | None = None) -> int:
    from exporters.app import ExporterConfig, GpuExporter
    from exporters.testing.fake_docker import FakeDockerApi, compose_container
    from exporters.testing.fake_nvml import FakeNvmlLibrary, FakeProcess, rtx_3060, rtx_4090
    from exporters.testing.fake_proc import FakeProc, container_id
    from fleetobs.topology.load import load_topology

    ap = argparse.ArgumentParser(prog="python -m fleetobs.demo.gpu")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--topology", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args(argv)

    topo = load_topology(args.topology)
    machine = topo.machine(args.machine)
    card = rtx_4090() if (machine.gpu_memory_gib or 0) >= 16 else rtx_3060()
    args.work.mkdir(parents=True, exist_ok=True)
    proc = FakeProc(args.work / "proc")
    containers = []
    room = card.total_bytes - card.reserved_bytes - card.base_used_bytes
    for n, group in enumerate(g for g in topo.groups_on(machine.name) if g.gpu_memory_budget_bytes):
        cid = container_id(n)
        containers.append(compose_container(cid, group.service_name))
        want = int(group.gpu_memory_budget_bytes * SHARES[n % len(SHARES)])
        used = max(min(want, room), 0)  # a card cannot hand out more than it has
        room -= used
        pid = 40_000 + n
        card.processes.append(FakeProcess(pid, used))
        proc.add_in_container(pid, cid)
    docker = FakeDockerApi(args.work / "docker.sock")
    docker.containers = containers
    docker.start()
    exporter = GpuExporter(ExporterConfig(machine.name, host=args.host, port=args.port,
                                          proc_root=args.work / "proc",
                                          docker_socket=docker.socket_path),
                           topo, library=FakeNvmlLibrary([card]))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        exporter.start()
        sys.stderr.write(f"fleetobs demo gpu: machine {machine.name} listening on {exporter.url}\n")
        sys.stderr.flush()
        while not done.wait(0.5):
            pass
    finally:
        exporter.stop(0.5)  # the demo stops everything within ~2 s
        docker.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
