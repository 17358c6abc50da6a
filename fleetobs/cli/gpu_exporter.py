"""``fleetobs gpu-exporter``: VRAM per compose service and container group, from NVML,
and each compose service's CPU, memory, OOM kills and restarts (cgroups, Docker API).

Runs with the host's /proc (``pid: host`` or mounted at ``--proc-root``) and,
optionally, the Docker socket read-only. Serves at once; NVML may come up later
(``fleet_gpu_exporter_nvml_up`` says so).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import typer

from fleetobs.cli.errors import fail

DEFAULT_DOCKER_SOCKET = Path("/var/run/docker.sock")


def gpu_exporter(
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (env BIND_ADDRESS; default 127.0.0.1)."),
    port: int | None = typer.Option(
        None, "--port", "-p", min=0, max=65535,
        help="Port; 0 picks a free one (env FLEET_GPU_EXPORTER_PORT; default 9400)."),
    machine: str | None = typer.Option(
        None, "--machine", "-m", help="Topology machine (env MACHINE_TYPE; default mainpc)."),
    topology: Path | None = typer.Option(
        None, "--topology", "-t",
        help="Topology YAML (env FLEET_TOPOLOGY; default: the committed real fleet)."),
    proc_root: Path | None = typer.Option(
        None, "--proc-root", help="The host's /proc (env FLEET_GPU_PROC_ROOT; default /proc)."),
    docker_socket: Path | None = typer.Option(
        None, "--docker-socket",
        help="Docker Engine API socket (env FLEET_DOCKER_SOCKET; default "
             "/var/run/docker.sock when present)."),
    interval: float | None = typer.Option(
        None, "--interval", min=0.05, max=3600,
        help="Seconds between NVML collections (env FLEET_GPU_INTERVAL; default 1)."),
    cgroup_root: Path | None = typer.Option(
        None, "--cgroup-root",
        help="The host's /sys/fs/cgroup, for container metrics (env FLEET_CGROUP_ROOT)."),
    compose_project: str | None = typer.Option(
        None, "--compose-project",
        help="Container metrics for this compose project only (env FLEET_COMPOSE_PROJECT)."),
    container_interval: float | None = typer.Option(
        None, "--container-interval", min=0.05, max=3600,
        help="Seconds between container reads (env FLEET_CONTAINER_INTERVAL; default 5)."),
) -> None:
    """Export GPU metrics and VRAM use per compose service and container group."""
    # Heavy imports here so `fleetobs --help` stays fast (pynvml, prometheus_client).
    from loguru import logger

    from exporters.app import ExporterConfig, GpuExporter
    from fleetobs.settings import load_settings
    from fleetobs.topology.load import load_topology

    settings = load_settings(os.environ, machine=machine, bind_address=host, topology=topology,
                             gpu_exporter_port=port, gpu_proc_root=proc_root,
                             docker_socket=docker_socket, gpu_interval_seconds=interval,
                             cgroup_root=cgroup_root, compose_project=compose_project,
                             container_interval_seconds=container_interval)
    topo = load_topology(settings.topology)
    if settings.machine not in topo.machine_by_name:
        fail(f"--machine/MACHINE_TYPE: unknown machine {settings.machine!r} "
             f"(known: {', '.join(sorted(topo.machine_by_name))})")
    if not settings.gpu_proc_root.is_dir():
        fail(f"--proc-root/FLEET_GPU_PROC_ROOT: {settings.gpu_proc_root} is not a directory")
    socket_path = settings.docker_socket
    if socket_path is None and DEFAULT_DOCKER_SOCKET.exists():
        socket_path = DEFAULT_DOCKER_SOCKET
    logger.remove()
    logger.add(sys.stderr, level=settings.log_level.upper(),
               format="{time:YYYY-MM-DDTHH:mm:ss.SSSZ} {level} {name}: {message}")
    if socket_path is None:
        logger.warning("no Docker socket: GPU processes are attributed to container ids, "
                       "not compose services (set --docker-socket)")

    config = ExporterConfig(machine=settings.machine, host=settings.bind_address,
                            port=settings.gpu_exporter_port,
                            interval_seconds=settings.gpu_interval_seconds,
                            proc_root=settings.gpu_proc_root, docker_socket=socket_path,
                            cgroup_root=settings.cgroup_root, compose_project=settings.compose_project,
                            container_interval_seconds=settings.container_interval_seconds)
    exporter = GpuExporter(config, topo)
    try:
        exporter.start()
    except OSError as exc:
        exporter.stop(2.0)
        fail(f"--host/--port: cannot listen on {config.host}:{config.port}: "
             f"{exc.strerror or exc}")
    logger.info("GPU exporter for {} on {} (every {}s, /proc at {}, docker {})",
                config.machine, exporter.url, config.interval_seconds, config.proc_root,
                socket_path or "none")

    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        while not done.wait(0.5):
            pass
    finally:
        exporter.stop(5.0)
        logger.info("GPU exporter stopped")
