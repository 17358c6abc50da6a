"""/metrics from a snapshot: units, omissions, labels, a golden file promtool accepts."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.attribution import Attributor
from exporters.cgroups import ProcRoot
from exporters.collector import GpuCollector, Histogram, Snapshot
from exporters.containers import ContainersView, ServiceContainers
from exporters.docker_api import DockerDirectory
from exporters.exposition import SnapshotCollector, gpus_json
from exporters.nvml import Nvml
from exporters.testing.clock import StepClock
from exporters.testing.fake_docker import FakeDockerApi, compose_container
from exporters.testing.fake_nvml import MIB, FakeNvmlLibrary, FakeProcess, rtx_4090
from exporters.testing.fake_proc import FakeProc, container_id, host_v2
from fleetobs import catalog
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.model import Topology

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
LANG, VISION = container_id(1), container_id(2)


@pytest.fixture
def snapshot(fake_proc: FakeProc, docker_api: FakeDockerApi, fleet: Topology,
             clock: StepClock) -> Snapshot:
    """A fixed MainPC snapshot: two compose services over budget and under, a host process."""
    docker_api.containers = [compose_container(LANG, "language-stack-gpu"),
                             compose_container(VISION, "vision-gpu")]
    dev = rtx_4090()
    dev.event_reasons = 0x1 | 0x4  # idle and software power cap
    dev.processes = [FakeProcess(101, 9000 * MIB), FakeProcess(102, 3000 * MIB, "both"),
                     FakeProcess(201, 6500 * MIB), FakeProcess(900, 300 * MIB, "graphics")]
    fake_proc.add_in_container(101, LANG, "v2_systemd")
    fake_proc.add_in_container(102, LANG, "v1_cgroupfs")
    fake_proc.add_in_container(201, VISION, "v2_private_namespace")
    fake_proc.add(900, host_v2())
    docker = DockerDirectory(docker_api.socket_path, clock=clock)
    collector = GpuCollector(Nvml(FakeNvmlLibrary([dev])),
                             Attributor(ProcRoot(fake_proc.root), docker, fleet, "mainpc"),
                             docker, "mainpc", clock=clock)
    s = collector.collect_once()
    collector.stop()
    # What the side threads and the clock would add, fixed so the file is stable.
    return dataclasses.replace(
        s, xids={(0, 79): 1}, errors={("nvmlDeviceGetPowerUsage", "timeout"): 2},
        skipped={"process_gone": 3},
        gpus=(dataclasses.replace(s.gpus[0], pcie_kbps={"tx": 1500, "rx": 250_000}),),
        collect_duration=Histogram(catalog.LATENCY_BUCKETS,
                                   (0, 0, 5, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10),
                                   0.0312, 10),
        containers=ContainersView(True, None, (
            ServiceContainers("hub", "", True, 12.25, 80 * MIB, 512 * MIB, 0, 0),
            ServiceContainers("vision-gpu", "vision_gpu", True, 3600.5, 3000 * MIB, 4096 * MIB, 2, 3),
            ServiceContainers("audio-emotion", "audio_emotion", False, 0.0, None, None, 0, 0))))


def _text(s: Snapshot, now: float) -> str:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: s, lambda: now))
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(smp.name, frozenset(smp.labels.items())): smp.value
            for fam in text_string_to_metric_families(text) for smp in fam.samples}


def test_golden_metrics(snapshot: Snapshot) -> None:
    text = _text(snapshot, snapshot.taken_at + 0.25)
    if os.environ.get("FLEETOBS_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "set FLEETOBS_UPDATE_GOLDEN=1 to accept a change"


@pytest.mark.binaries
def test_promtool_accepts_the_golden_metrics() -> None:
    promtool = require_binary("promtool")
    out = subprocess.run([promtool, "check", "metrics"], input=GOLDEN.read_text(),
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_values_are_in_base_units(snapshot: Snapshot) -> None:
    got = _samples(_text(snapshot, snapshot.taken_at + 0.25))
    gpu = frozenset({("machine", "mainpc"), ("gpu", "0")})
    assert got[("fleet_gpu_power_watts", gpu)] == 64.512
    assert got[("fleet_gpu_energy_consumed_joules_total", gpu)] == 123_456.789
    assert got[("fleet_gpu_clock_hertz", gpu | {("clock", "sm")})] == 2.52e9
    assert got[("fleet_gpu_fan_speed_ratio", gpu)] == 0.31
    assert got[("fleet_gpu_utilization_ratio", gpu)] == 0.37
    assert got[("fleet_gpu_pcie_throughput_bytes_per_second", gpu | {("direction", "rx")})] == \
        250_000 * 1024
    assert got[("fleet_gpu_exporter_snapshot_age_seconds", frozenset({("machine", "mainpc")}))] \
        == 0.25
    reasons = {dict(k[1])["fleet_gpu_clock_event_reasons"]: v for k, v in got.items()
               if k[0] == "fleet_gpu_clock_event_reasons"}
    assert {r for r, v in reasons.items() if v == 1} == {"gpu_idle", "sw_power_cap"}


def test_services_and_groups_against_budgets(snapshot: Snapshot) -> None:
    got = _samples(_text(snapshot, snapshot.taken_at))
    m = ("machine", "mainpc")

    def used(service: str, group: str) -> float:
        return got[("fleet_gpu_service_memory_used_bytes",
                    frozenset({m, ("gpu", "0"), ("service", service), ("group", group)}))]

    assert used("language-stack-gpu", "language_stack_gpu") == 12_000 * MIB
    assert used("vision-gpu", "vision_gpu") == 6500 * MIB
    assert used("host", "") == 300 * MIB
    vision = frozenset({m, ("group", "vision_gpu")})
    assert got[("fleet_gpu_group_memory_used_bytes", vision)] / \
        got[("fleet_gpu_group_memory_budget_bytes", vision)] == 6500 / 6144  # over budget


def test_unsupported_series_are_absent_and_listed(snapshot: Snapshot) -> None:
    got = _samples(_text(snapshot, snapshot.taken_at))
    names = {name for name, _ in got}
    assert not any(n.startswith("fleet_gpu_ecc") for n in names)
    assert got[("fleet_gpu_exporter_unsupported_call", frozenset({
        ("machine", "mainpc"), ("gpu", "0"), ("call", "nvmlDeviceGetTotalEccErrors")}))] == 1


def test_labels_are_bounded_and_names_are_in_the_catalog(snapshot: Snapshot) -> None:
    text = _text(snapshot, snapshot.taken_at)
    exposed = catalog.all_exposed_names()
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            assert smp.name in exposed, smp.name
            assert "pid" not in smp.labels
            if smp.name != "fleet_gpu_info":
                assert not {"uuid", "name"} & set(smp.labels), smp


def test_container_figures_per_compose_service(snapshot: Snapshot) -> None:
    got = _samples(_text(snapshot, snapshot.taken_at))
    m = ("machine", "mainpc")
    vision = frozenset({m, ("service", "vision-gpu"), ("group", "vision_gpu")})
    audio = frozenset({m, ("service", "audio-emotion"), ("group", "audio_emotion")})
    assert got[("fleet_container_running", vision)] == 1
    assert got[("fleet_container_cpu_seconds_total", vision)] == 3600.5
    assert got[("fleet_container_memory_working_set_bytes", vision)] / \
        got[("fleet_container_memory_limit_bytes", vision)] == 3000 / 4096
    assert got[("fleet_container_oom_kills_total", vision)] == 2
    assert got[("fleet_container_restarts_total", vision)] == 3
    assert got[("fleet_container_running", audio)] == 0
    # A stopped service has no memory series: absent, not a made-up 0.
    assert ("fleet_container_memory_working_set_bytes", audio) not in got
    assert got[("fleet_container_running", frozenset({m, ("service", "hub"), ("group", "")}))] == 1


def test_nvml_down_is_a_zero_and_a_reason() -> None:
    s = Snapshot("pc2", 10.0, False, "driver_not_loaded")
    got = _samples(_text(s, 12.0))
    assert got[("fleet_gpu_exporter_nvml_up", frozenset({("machine", "pc2")}))] == 0
    assert got[("fleet_gpu_exporter_nvml_down_reason", frozenset({
        ("machine", "pc2"), ("reason", "driver_not_loaded")}))] == 1
    assert not any(name.startswith("fleet_gpu_memory") for name, _ in got)


def test_the_json_view_has_free_memory_and_budgets(snapshot: Snapshot) -> None:
    view = gpus_json(snapshot, snapshot.taken_at + 1)
    assert view["age_seconds"] == 1
    gpu = view["gpus"][0]
    assert gpu["memory_free_bytes"] == (24564 - 498 - 2 - 12_000 - 6500 - 300) * MIB
    groups = {g["group"]: g for g in view["groups"]}
    assert groups["language_stack_gpu"]["budget_bytes"] == 20 * 1024**3
    assert {s["service"] for s in view["services"]} == {"host", "language-stack-gpu",
                                                         "vision-gpu"}
