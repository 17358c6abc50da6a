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

4. ``alertmanager``: Debian's Alertmanager with ``fleetobs build``'s alertmanager.yml, the
   two machines' nodes a gossip cluster (each notification sent once), every receiver
   pointed at the demo's own webhook (fleetobs.demo.notifications);
5. ``prometheus``: Debian's Prometheus with the machine's generated prometheus.yml and
   the generated rules: it scrapes both hubs, its GPU exporter and its agents through
   the hub's HTTP service discovery, and alerts to both Alertmanagers.

Prometheus and Alertmanager run when Debian's ``prometheus`` and
``prometheus-alertmanager`` are installed (:func:`monitoring` says why not otherwise).
Their files are the generator's (fleetobs.generate.prometheus) for the demo topology,
with the demo's short intervals (:data:`DEMO_ALERTING`) so a failing agent pages within
a minute instead of the production ``for`` durations.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable, Mapping
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


#: ``Alerting.fast`` arguments of the demo: scrape and evaluate every 5 s, ``for`` 30 s.
DEMO_ALERTING = {"interval": "5s", "for_": "30s", "group_wait": "10s", "group_interval": "1m"}


@dataclass(frozen=True)
class Ports:
    hub: dict[str, int]
    gpu: dict[str, int]
    prometheus: dict[str, int]
    alertmanager: dict[str, int]
    cluster: dict[str, int]  # Alertmanager gossip
    notify: int  # the demo's webhook, on 127.0.0.1


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
        def free() -> dict[str, int]:
            return {m: free_port(h) for m, h in HOSTS.items()}

        return Ports(free(), free(), free(), free(), free(), free_port(HOSTS["mainpc"]))
    return Ports({m: topology.machine(m).hub_port for m in HOSTS}, dict.fromkeys(HOSTS, 9400),
                 dict.fromkeys(HOSTS, 9090), dict.fromkeys(HOSTS, 9093), dict.fromkeys(HOSTS, 9094), 9095)


def fixed_ports(ports: Ports) -> list[tuple[str, int, str]]:
    """(host, port, what) of every port the demo binds, to check they are free first."""
    out = [(HOSTS["mainpc"], ports.notify, "notification webhook")]
    for machine, host in HOSTS.items():
        out += [(host, ports.hub[machine], f"{machine} hub"), (host, ports.gpu[machine], f"{machine} GPU exporter"),
                (host, ports.prometheus[machine], f"{machine} Prometheus"),
                (host, ports.alertmanager[machine], f"{machine} Alertmanager"),
                (host, ports.cluster[machine], f"{machine} Alertmanager cluster")]
    return out


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


def prometheus_url(machine: str, ports: Ports) -> str:
    return f"http://{HOSTS[machine]}:{ports.prometheus[machine]}"


def alertmanager_url(machine: str, ports: Ports) -> str:
    return f"http://{HOSTS[machine]}:{ports.alertmanager[machine]}"


def _hosts(machine: str, ports: Ports) -> dict[str, str]:
    """Where ``machine``'s Prometheus dials each service (keys of ``prometheus_config``)."""
    out = {f"{machine}/prometheus": f"{HOSTS[machine]}:{ports.prometheus[machine]}",
           f"{machine}/gpu-exporter": f"{HOSTS[machine]}:{ports.gpu[machine]}"}
    for m, host in HOSTS.items():
        out[f"{m}/hub"] = f"{host}:{ports.hub[m]}"
        out[f"{m}/alertmanager"] = f"{host}:{ports.alertmanager[m]}"
    return out


def monitoring(topology: Topology, work: Path, ports: Ports, webhook_url: str, *,
               which: Callable[[str], str | None] = shutil.which) -> tuple[list[ProcessSpec], list[Skipped]]:
    """Alertmanager and Prometheus of both machines (start order), with their generated
    files written under ``<work>/prometheus/``, or why they do not run."""
    prometheus = which("prometheus")
    alertmanager = which("prometheus-alertmanager") or which("alertmanager")
    missing = [n for n, p in (("prometheus", prometheus), ("prometheus-alertmanager", alertmanager)) if not p]
    if prometheus is None or alertmanager is None:
        why = f"not installed (apt-get install {' '.join(missing)})"
        return [], [Skipped("prometheus", "Prometheus (scrapes the hubs, runs the alert rules)", why),
                    Skipped("alertmanager", "Alertmanager (pages once, for the right reason)", why)]
    from fleetobs.generate.prometheus.alertmanager import alertmanager_config, cluster_args
    from fleetobs.generate.prometheus.rules import rule_files
    from fleetobs.generate.prometheus.scrape import prometheus_config

    config = topology.alerting.fast(**DEMO_ALERTING)
    root = work / "prometheus"
    (root / "rules").mkdir(parents=True, exist_ok=True)
    rules = rule_files(topology, config)
    for name, text in rules.items():
        (root / "rules" / name).write_text(text, encoding="utf-8")
    (root / "alertmanager").mkdir(exist_ok=True)
    am_file = root / "alertmanager" / "alertmanager.yml"
    am_file.write_text(alertmanager_config(topology, config=config, webhook_url=webhook_url), encoding="utf-8")
    ams, proms = [], []
    for machine, host in HOSTS.items():
        url = alertmanager_url(machine, ports)
        gossip = cluster_args(topology, machine, listen=f"{host}:{ports.cluster[machine]}",
                              peers_at=[f"{HOSTS[m]}:{ports.cluster[m]}" for m in HOSTS if m != machine])
        ams.append(ProcessSpec(
            f"alertmanager-{machine}",
            [alertmanager, f"--config.file={am_file}", f"--storage.path={work / f'alertmanager-{machine}'}",
             f"--web.listen-address={host}:{ports.alertmanager[machine]}", f"--web.external-url={url}",
             *gossip, f"--cluster.advertise-address={host}:{ports.cluster[machine]}"],
            f"{machine}'s Alertmanager (a cluster with the other; pages and tickets to the demo's webhook)",
            url=url + "/", ready=r"Listening on"))
        (root / machine).mkdir(exist_ok=True)
        cfg = root / machine / "prometheus.yml"
        cfg.write_text(prometheus_config(topology, machine, config=config, hosts=_hosts(machine, ports),
                                         alertmanagers=[f"{HOSTS[m]}:{ports.alertmanager[m]}" for m in HOSTS],
                                         rule_files=[str(root / "rules" / n) for n in sorted(rules)]),
                       encoding="utf-8")
        proms.append(ProcessSpec(
            f"prometheus-{machine}",
            [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={work / f'prometheus-{machine}'}",
             f"--web.listen-address={host}:{ports.prometheus[machine]}"],
            f"{machine}'s Prometheus (fleetobs build's scrape config and rules)",
            url=prometheus_url(machine, ports) + "/", ready=r"Server is ready to receive web requests"))
    return ams + proms, []
