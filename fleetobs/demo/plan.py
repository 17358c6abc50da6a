"""What ``fleetobs demo`` runs, and where: the process specs of the local stack.

On one machine, loopback only: MainPC is 127.0.0.1, PC2 is 127.0.0.2 (the whole of
127.0.0.0/8 is loopback on Linux). For each machine, in start order:

1. ``simulate``: its agents of the real topology as real ZeroMQ/HTTP peers (SIMULATED),
   a few failing the ways the real fleet fails (:data:`FAILURES`);
2. ``gpu``: the real GPU exporter on the fake NVML (SIMULATED, fleetobs.demo.gpu);
3. ``hub``: the real ``fleetobs hub``, probing its simulated agents, reading its GPU
   exporter, syncing with the other machine's hub (peers from the demo topology).

The demo topology is the real one with the machines' addresses set to the loopback
addresses, the hub ports chosen, and every agent's ports as its simulator bound them.

Prometheus and Alertmanager (the seam, :func:`monitoring`): they run when Debian's
``prometheus`` and ``prometheus-alertmanager`` are installed AND ``fleetobs build``'s
Prometheus generator exists (``fleetobs.generate.prometheus``) and offers
``demo_config(topology, work_dir, hubs, alertmanager_url) -> Path`` (the prometheus.yml
to run, rules included, scraping the ``hubs`` URLs and the agents' HTTP service
discovery). Adding them is then: call it, append two :class:`ProcessSpec` s (argv in
:func:`monitoring`'s docstring) and set ``FLEET_PROMETHEUS_URL`` on the hubs (the
status page links it). Until then the table says why each is not running.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetobs.demo.stack import ProcessSpec, Skipped
from fleetobs.topology.model import Topology

HOSTS = {"mainpc": "127.0.0.1", "pc2": "127.0.0.2"}
#: Agent -> behaviour: a crash, a readiness key that expired, a hung loop, a slow
#: model, an agent that lost its model, one answering junk.
FAILURES: dict[str, dict[str, str]] = {
    "mainpc": {"FaceRecognitionAgent": "down", "NLUAgent": "degraded",
               "ChainOfThoughtAgent": "silent", "TTSService": "slow"},
    "pc2": {"DreamWorldAgent": "error", "CacheManager": "garbage"},
}
BANNER = ("SIMULATED fleet (fleetobs demo): the agents are `fleetobs simulate` peers and the "
          "GPUs a fake NVML; the hubs and the GPU exporter are the real code")
PYTHON = sys.executable


@dataclass(frozen=True)
class Ports:
    hub: dict[str, int]
    gpu: dict[str, int]


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def choose_ports(topology: Topology, ephemeral: bool) -> Ports:
    if ephemeral:
        return Ports({m: free_port(h) for m, h in HOSTS.items()},
                     {m: free_port(h) for m, h in HOSTS.items()})
    return Ports({m: topology.machine(m).hub_port for m in HOSTS}, dict.fromkeys(HOSTS, 9400))


def fleetobs(*args: str) -> list[str]:
    return [PYTHON, "-m", "fleetobs.cli.main", *args]


def simulator(machine: str, base: Path | None, work: Path, ephemeral: bool) -> ProcessSpec:
    sets = [f"{a}={b}" for a, b in FAILURES[machine].items()]
    argv = fleetobs("simulate", "--machine", machine, "--host", HOSTS[machine],
                    "--write-topology", str(work / f"sim-{machine}.yaml"),
                    *(["--topology", str(base)] if base else []),
                    *(["--ephemeral"] if ephemeral else []),
                    *[x for s in sets for x in ("--set", s)])
    return ProcessSpec(f"simulate-{machine}", argv, f"{machine}'s agents (ZeroMQ + HTTP health)",
                       url=f"tcp://{HOSTS[machine]}", ready=r"simulating \d+ agents", simulated=True)


def demo_topology(base: Topology, sims: Mapping[str, Path], ports: Ports) -> dict[str, Any]:
    """The real topology on loopback: machine addresses, hub ports, agents' bound ports."""
    doc = base.model_dump(mode="json")
    for m in doc["machines"]:
        if m["name"] in HOSTS:
            m["address"], m["hub_port"] = HOSTS[m["name"]], ports.hub[m["name"]]
    bound: dict[tuple[str, str], dict[str, Any]] = {}
    for machine, path in sims.items():
        for a in yaml.safe_load(path.read_text(encoding="utf-8"))["agents"]:
            if a["machine"] == machine:
                bound[(machine, a["name"])] = a
    for a in doc["agents"]:
        got = bound.get((a["machine"], a["name"]))
        if got is not None:
            a["port"], a["health_check_port"] = got["port"], got["health_check_port"]
        if a["name"] == "ObservabilityHub":
            a["port"] = ports.hub[a["machine"]]  # the hub is that agent
    return doc


def gpu(machine: str, topology: Path, work: Path, ports: Ports) -> ProcessSpec:
    host, port = HOSTS[machine], ports.gpu[machine]
    argv = [PYTHON, "-m", "fleetobs.demo.gpu", "--machine", machine, "--host", host,
            "--port", str(port), "--topology", str(topology), "--work", str(work / f"gpu-{machine}")]
    return ProcessSpec(f"gpu-{machine}", argv, f"{machine}'s GPU exporter on a fake NVML",
                       url=f"http://{host}:{port}/metrics", ready=r"listening on http://", simulated=True)


def hub(machine: str, topology: Path, work: Path, ports: Ports, extra_env: Mapping[str, str]) -> ProcessSpec:
    host, port = HOSTS[machine], ports.hub[machine]
    argv = fleetobs("hub", "--machine", machine, "--host", host, "--port", str(port),
                    "--topology", str(topology), "--data-dir", str(work / f"hub-{machine}"))
    env = {"SERVICE_DISCOVERY_MODE": "static",  # agents at their machine's loopback address
           "FLEET_GPU_EXPORTER_URL": f"http://{host}:{ports.gpu[machine]}",
           "FLEET_PROBE_INTERVAL": "5", "FLEET_STATUS_BANNER": BANNER, **extra_env}
    return ProcessSpec(f"hub-{machine}", argv, f"{machine}'s ObservabilityHub (status page at /)",
                       url=f"http://{host}:{port}/", ready=r"listening on http://", env=env)


def monitoring() -> list[Skipped]:
    """Prometheus and Alertmanager, or why they do not run (see the module docstring).

    Once ``fleetobs.generate.prometheus.demo_config`` exists, the specs are::

        ProcessSpec("prometheus", [prometheus, f"--config.file={cfg}",
                    "--web.listen-address=127.0.0.1:9090", f"--storage.tsdb.path={work}/prom"],
                    "Prometheus (rules from fleetobs build)", url="http://127.0.0.1:9090/",
                    ready=r"Server is ready to receive web requests")
        ProcessSpec("alertmanager", [alertmanager, f"--config.file={am_cfg}",
                    "--web.listen-address=127.0.0.1:9093", f"--storage.path={work}/am",
                    "--cluster.listen-address="], "Alertmanager", url="http://127.0.0.1:9093/")
    """
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    missing = [n for n, p in (("prometheus", prometheus), ("prometheus-alertmanager", alertmanager)) if not p]
    if missing:
        why = f"not installed (apt-get install {' '.join(missing)})"
    elif importlib.util.find_spec("fleetobs.generate") is None or \
            importlib.util.find_spec("fleetobs.generate.prometheus") is None:
        why = "not configured yet: fleetobs build does not generate a Prometheus config yet"
    else:
        why = "not configured yet: fleetobs.generate.prometheus offers no demo_config() yet"
    return [Skipped("prometheus", "Prometheus (scrapes the hubs, runs the alert rules)", why),
            Skipped("alertmanager", "Alertmanager (pages once, for the right reason)", why)]
