"""Both machines of the real fleet, live on 127.0.0.1, for end-to-end checks of what
Prometheus and Grafana would see.

- the simulated fleet (``fleetobs simulate``, a process): every probed agent of MainPC
  and PC2 on its own sockets, answering as told;
- a GPU exporter per machine (a process each: its NVML is the fake library, through
  nvidia-ml-py's real bindings, which bind one library per process), with GPU processes
  in compose services' containers (fake /proc and Docker API) and one group over its
  budget on each machine;
- a Loki stand-in per machine;
- a hub per machine (``fleetobs hub``, a process) probing its agents every second,
  reading its exporter, shipping logs to its Loki and syncing with the other hub, and
  with a third machine in the topology whose hub nobody runs (a machine that is off),
  so sync failures and a peer that is down are real too. It must be a machine of its
  own: hubs map every peer URL to a topology machine and keep one URL per machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import yaml

from fleetobs.testing.fake_gpu_exporter import FakeGpuExporterProcess
from fleetobs.testing.loki import LokiStandIn
from fleetobs.topology.load import load_topology
from hub.sync.testing import HubProcess

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

MACHINES = ("mainpc", "pc2")
#: The machine that is off: in the topology, no agents, no hub.
OFFLINE_MACHINE = "spare"
#: GPU memory (MiB) of each compose service's processes; the rest of the plan's groups
#: hold nothing. vision_gpu (budget 6 GiB) and vision_dream_gpu (7 GiB) are over budget.
GPU_PLAN: dict[str, dict[str, tuple[int, ...]]] = {
    "mainpc": {"language_stack_gpu": (9000, 3000), "vision_gpu": (6500,), "reasoning_gpu": (2048,)},
    "pc2": {"vision_dream_gpu": (7680,), "memory_reasoning_gpu": (2048,)},
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _add_offline_machine(topology: Path, port: int) -> None:
    """Appends :data:`OFFLINE_MACHINE` (no agents) to the simulator's topology file."""
    doc = yaml.safe_load(topology.read_text())
    doc["machines"].append({"name": OFFLINE_MACHINE, "gpu_model": "RTX 3060", "gpu_memory_gib": 12.0,
                            "hub_port": port, "address": "127.0.0.1"})
    topology.write_text(yaml.safe_dump(doc, sort_keys=False))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (a clean stop), SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Hub(HubProcess):
    """A ``fleetobs hub`` on a port chosen in advance (its peer must know it first)."""

    def __init__(self, *args: object, port: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fixed_port = port

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[argv.index("--port") + 1] = str(self.fixed_port)
        return argv


class LiveFleet:
    def __init__(self, workdir: Path, behaviours: Mapping[str, str], *,
                 probe_interval_seconds: float = 1.0, base: Topology | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.behaviours = dict(behaviours)
        self.probe_interval = probe_interval_seconds
        self.base = base or load_topology(None)
        self.lokis: dict[str, LokiStandIn] = {}
        self.exporters: dict[str, FakeGpuExporterProcess] = {}
        self.hubs: dict[str, HubProcess] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LiveFleet:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    def _start(self) -> None:
        for machine in MACHINES:
            self.lokis[machine] = self._stack.enter_context(LokiStandIn().start())
            ex = self.exporters[machine] = FakeGpuExporterProcess(machine, self.workdir / f"gpu-{machine}",
                                                                  GPU_PLAN[machine]).spawn()
            self._stack.callback(ex.__exit__, None, None, None)
        args = [a for m in MACHINES for a in ("-m", m)] + ["--slow-seconds", "0.05"]
        args += [a for name, b in sorted(self.behaviours.items()) for a in ("--set", f"{name}={b}")]
        topology = self._simulate(args)  # while the exporters start
        for ex in self.exporters.values():
            ex.ready()
        ports = {m: _free_port() for m in MACHINES}
        #: A peer nobody answers (a machine that is off): each hub has one failing link.
        offline_port = _free_port()
        self.offline_peer = f"http://127.0.0.1:{offline_port}"
        _add_offline_machine(topology, offline_port)
        for machine in MACHINES:
            peers = [f"{p}=http://127.0.0.1:{ports[p]}" for p in MACHINES if p != machine]
            peers.append(f"{OFFLINE_MACHINE}={self.offline_peer}")
            hub = self.hubs[machine] = _Hub(
                machine, "127.0.0.1", topology, self.workdir / machine, peers=peers, port=ports[machine],
                env={"FLEET_PROBE_ENABLED": "true", "FLEET_PROBE_INTERVAL": f"{self.probe_interval:g}",
                     "FLEET_PROBE_TIMEOUT": "0.8", "SERVICE_DISCOVERY_MODE": "host",
                     "FLEET_LOKI_URL": self.lokis[machine].url,
                     "FLEET_GPU_EXPORTER_URL": self.exporters[machine].url})
            self._stack.callback(hub.stop)
        asyncio.run(self._start_hubs())
        self.topology = load_topology(topology)

    def _simulate(self, args: list[str]) -> Path:
        """``fleetobs simulate --ephemeral``; returns the topology with the ports it bound."""
        topology = self.workdir / "simulated-topology.yaml"
        with (self.workdir / "simulator.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "fleetobs.cli.main", "simulate", "--ephemeral",
                                     "--write-topology", str(topology), *args], stdout=log, stderr=log)
        self._stack.callback(_stop, proc)
        deadline = time.monotonic() + 60.0
        while not (topology.exists() and topology.stat().st_size):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start:\n{(self.workdir / 'simulator.log').read_text()}")
            time.sleep(0.05)
        time.sleep(0.2)  # the file is written just before the agents' last sockets open
        return topology

    async def _start_hubs(self) -> None:
        await asyncio.gather(*(h.start(timeout=60.0) for h in self.hubs.values()))

    def scrape_config(self, rule_files: tuple[str, ...] = (), interval: str = "1s") -> str:
        """A Prometheus config scraping both hubs and exporters. Every target carries its
        ``machine`` (series without one, such as the log shipper's, get it from there);
        ``honor_labels`` keeps the hub's and exporter's own ``machine`` labels as they are."""
        def job(name: str, urls: dict[str, str]) -> dict[str, object]:
            return {"job_name": name, "honor_labels": True, "static_configs": [
                {"targets": [url.removeprefix("http://")], "labels": {"machine": m}} for m, url in urls.items()]}

        return yaml.safe_dump({
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": list(rule_files),
            "scrape_configs": [job("fleet-hub", {m: h.url for m, h in self.hubs.items()}),
                               job("fleet-gpu-exporter", {m: e.url for m, e in self.exporters.items()})],
        }, sort_keys=False)
