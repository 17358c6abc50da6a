"""Container figures from real containers: the exporter (in this process) reads the real
Docker API and the host's real cgroup files; the containers OOM, crash-loop and idle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.app import ExporterConfig, GpuExporter
from exporters.testing.fake_nvml import FakeNvmlLibrary, rtx_4090
from fleetobs.testing.docker.cli import SOCKET
from fleetobs.testing.docker.compose import PROJECT_LABEL, SERVICE_LABEL, sweep
from fleetobs.testing.docker.fleet import DockerSession
from fleetobs.topology.load import load_topology

MIB = 1024**2
Samples = dict[tuple[str, str], float]  # (metric, service) -> value


@pytest.fixture(scope="module")
def project(docker_session: DockerSession) -> str:
    """This run's compose project label for the containers below (the exporter reads only it)."""
    return docker_session.run.project("resources")


@pytest.fixture(scope="module")
def exporter(docker_session: DockerSession, project: str) -> Iterator[GpuExporter]:
    config = ExporterConfig(machine="mainpc", docker_socket=SOCKET, cgroup_root=Path("/sys/fs/cgroup"),
                            compose_project=project, container_interval_seconds=0.25, interval_seconds=0.25)
    exp = GpuExporter(config, load_topology(None), library=FakeNvmlLibrary([rtx_4090()])).start()
    try:
        yield exp
    finally:
        exp.stop()
        sweep(docker_session.docker, [project])


def run(session: DockerSession, service: str, *args: str, script: str) -> str:
    return session.docker("run", "-d", "--label", f"{PROJECT_LABEL}={session.run.project('resources')}",
                          "--label", f"{SERVICE_LABEL}={service}", *args,
                          session.images.base, "python3", "-c", script, timeout=60).strip()


def samples(exp: GpuExporter) -> Samples:
    text = httpx.get(f"{exp.url}/metrics", timeout=10).text
    return {(s.name, s.labels["service"]): s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name.startswith("fleet_container_")}


def wait(exp: GpuExporter, ok: object, timeout: float = 60) -> Samples:
    assert callable(ok)
    deadline = time.monotonic() + timeout
    got = samples(exp)
    while not ok(got) and time.monotonic() < deadline:
        time.sleep(0.25)
        got = samples(exp)
    return got


def test_a_container_allocating_past_its_limit_counts_an_oom_kill(
        docker_session: DockerSession, exporter: GpuExporter) -> None:
    cid = run(docker_session, "oom-eater", "--memory", "64m", "--memory-swap", "64m",
              script="b = [bytearray(8 << 20) for _ in range(64)]")
    got = wait(exporter, lambda g: g.get(("fleet_container_oom_kills_total", "oom-eater"), 0) >= 1)
    [info] = docker_session.docker.inspect(cid)
    assert info["State"]["OOMKilled"] is True  # what Docker says, for the record
    assert got[("fleet_container_oom_kills_total", "oom-eater")] == 1
    assert got[("fleet_container_running", "oom-eater")] == 0


def test_a_crash_looping_container_counts_its_restarts(
        docker_session: DockerSession, exporter: GpuExporter) -> None:
    run(docker_session, "crash-loop", "--restart", "on-failure:3", script="raise SystemExit(3)")
    got = wait(exporter, lambda g: g.get(("fleet_container_restarts_total", "crash-loop")) == 3)
    assert got[("fleet_container_restarts_total", "crash-loop")] == 3
    time.sleep(2)  # on-failure:3 gives up: no more restarts, the counter stays
    assert samples(exporter)[("fleet_container_restarts_total", "crash-loop")] == 3


def test_oom_kills_of_a_restarting_container_add_up(
        docker_session: DockerSession, exporter: GpuExporter) -> None:
    run(docker_session, "oom-loop", "--memory", "64m", "--memory-swap", "64m", "--restart", "on-failure:2",
        script="b = [bytearray(8 << 20) for _ in range(64)]")
    got = wait(exporter, lambda g: g.get(("fleet_container_restarts_total", "oom-loop")) == 2
               and g.get(("fleet_container_running", "oom-loop")) == 0)
    assert got[("fleet_container_restarts_total", "oom-loop")] == 2
    # Three runs, each OOM-killed; a run killed and restarted between two reads is seen only
    # through Docker's OOMKilled of the last exit, so at least the last one counts.
    assert 1 <= got[("fleet_container_oom_kills_total", "oom-loop")] <= 3


def test_a_running_container_has_cpu_and_a_working_set_under_its_limit(
        docker_session: DockerSession, exporter: GpuExporter) -> None:
    run(docker_session, "steady", "--memory", "128m",
        script="import time\nx = bytearray(40 << 20)\nfor i in range(len(x) // 4096): x[i * 4096] = 1\n"
               "while time.process_time() < 1.0: pass\ntime.sleep(600)")  # 1 s of CPU, then idle
    got = wait(exporter, lambda g: g.get(("fleet_container_cpu_seconds_total", "steady"), 0) > 0.5
               and g.get(("fleet_container_memory_working_set_bytes", "steady"), 0) > 40 * MIB)
    assert got[("fleet_container_running", "steady")] == 1
    assert got[("fleet_container_memory_limit_bytes", "steady")] == 128 * MIB
    assert 40 * MIB < got[("fleet_container_memory_working_set_bytes", "steady")] < 128 * MIB
    assert got[("fleet_container_cpu_seconds_total", "steady")] > 0.5
    assert got[("fleet_container_oom_kills_total", "steady")] == 0
