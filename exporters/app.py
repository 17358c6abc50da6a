"""The GPU exporter wired together: NVML, /proc, cgroups, Docker, topology -> collector -> HTTP.

Every side effect is an argument (NVML library, /proc root, Docker socket, clock), so
the CLI, the tests and the benchmark build the very same object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporters.attribution import Attributor
from exporters.cgroup_stats import CgroupTree
from exporters.cgroups import ProcRoot
from exporters.collector import GpuCollector
from exporters.containers import ContainerMonitor
from exporters.docker_api import DockerDirectory
from exporters.docker_state import DockerStates
from exporters.nvml import Nvml
from exporters.server import ExporterServer
from fleetobs.topology.model import Topology


@dataclass(frozen=True)
class ExporterConfig:
    machine: str
    host: str = "127.0.0.1"
    port: int = 0
    interval_seconds: float = 1.0
    proc_root: Path = Path("/proc")
    docker_socket: Path | None = None
    docker_refresh_seconds: float = 30.0
    cgroup_root: Path = Path("/sys/fs/cgroup")  # the host's (mounted read-only in compose)
    compose_project: str | None = None  # only this project's containers; None: all
    container_interval_seconds: float = 5.0


class GpuExporter:
    def __init__(self, config: ExporterConfig, topology: Topology, *,
                 library: object | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        topology.machine(config.machine)  # KeyError naming the known machines
        self.config = config
        self.nvml = Nvml(library)
        self.docker = DockerDirectory(config.docker_socket, clock=clock,
                                      refresh_seconds=config.docker_refresh_seconds)
        attributor = Attributor(ProcRoot(config.proc_root), self.docker, topology,
                                config.machine)
        self.containers = ContainerMonitor(
            None if config.docker_socket is None else DockerStates(config.docker_socket),
            CgroupTree(config.cgroup_root, config.proc_root), topology, config.machine,
            project=config.compose_project, refresh_seconds=config.container_interval_seconds,
            clock=clock)
        self.collector = GpuCollector(self.nvml, attributor, self.docker, config.machine,
                                      interval=config.interval_seconds, clock=clock,
                                      containers=self.containers)
        self.server = ExporterServer(self.collector.snapshot, host=config.host,
                                     port=config.port, clock=clock)
        self._started = False

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> GpuExporter:
        """Serve at once (NVML may still be coming up), collect in the background."""
        self.server.start()
        self.collector.start()
        self._started = True
        return self

    def stop(self, deadline_seconds: float = 5.0) -> None:
        """Idempotent; the whole stop takes at most ``deadline_seconds``."""
        end = time.monotonic() + deadline_seconds
        self.server.stop(max(0.0, end - time.monotonic()))
        self.collector.stop(max(0.0, end - time.monotonic()))
        self._started = False
