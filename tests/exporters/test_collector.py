"""The background collector: probing, snapshots, NVML down/up, side threads."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from exporters.attribution import Attributor
from exporters.cgroups import ProcRoot
from exporters.collector import GpuCollector, Snapshot
from exporters.docker_api import DockerDirectory
from exporters.nvml import Nvml
from exporters.testing.clock import StepClock
from exporters.testing.fake_nvml import (
    MIB,
    OLD_DRIVER_MISSING,
    FakeDevice,
    FakeNvmlLibrary,
    FakeProcess,
    rtx_3060,
    rtx_4090,
)
from exporters.testing.fake_proc import FakeProc, container_id
from fleetobs.topology.model import Topology


def _collector(lib: FakeNvmlLibrary, fake_proc: FakeProc, fleet: Topology, clock: StepClock,
               machine: str = "mainpc", **kw: float) -> GpuCollector:
    docker = DockerDirectory(None)
    attributor = Attributor(ProcRoot(fake_proc.root), docker, fleet, machine)
    return GpuCollector(Nvml(lib), attributor, docker, machine, clock=clock, **kw)  # type: ignore[arg-type]


def _wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def _with_processes(dev: FakeDevice, fake_proc: FakeProc, n: int) -> FakeDevice:
    for i in range(n):
        dev.processes.append(FakeProcess(5000 + i, 10 * MIB))
        fake_proc.add_in_container(5000 + i, container_id(i % 3))
    return dev


def test_a_snapshot_holds_every_reading(fake_proc: FakeProc, fleet: Topology,
                                        clock: StepClock) -> None:
    lib = FakeNvmlLibrary([_with_processes(rtx_4090(), fake_proc, 6)])
    c = _collector(lib, fake_proc, fleet, clock)
    s = c.collect_once()
    assert (s.nvml_up, s.nvml_reason, s.versions) == (True, None, ("550.120", "12.550.120", "12.4"))
    g = s.gpus[0]
    assert (g.index, g.name, g.temperature, g.power_mw, g.pstate) == (
        0, "NVIDIA GeForce RTX 4090", 47, 64_512, 2)
    assert g.clocks_mhz == {"graphics": 2520, "sm": 2520, "memory": 10501}
    assert g.memory is not None and g.memory.reserved == 498 * MIB
    assert g.ecc_uncorrected is None and g.unsupported == {"nvmlDeviceGetTotalEccErrors"}
    assert {u.service: u.processes for u in s.attribution.services} == {
        container_id(i)[:12]: 2 for i in range(3)}
    assert s.taken_at == clock.now
    assert lib.callback_errors == []
    c.stop()


def test_unsupported_calls_are_probed_once_then_never_called(
        fake_proc: FakeProc, fleet: Topology, clock: StepClock) -> None:
    lib = FakeNvmlLibrary([rtx_3060()])
    c = _collector(lib, fake_proc, fleet, clock, machine="pc2")
    for _ in range(5):
        s = c.collect_once()
    assert lib.calls["nvmlDeviceGetTotalEccErrors"] == 1
    assert lib.calls["nvmlDeviceGetPowerUsage"] == 6  # probe + 5 collections
    assert s.errors == {}  # unsupported is not an error
    c.stop()


def test_an_old_driver_still_gives_a_full_snapshot(fake_proc: FakeProc, fleet: Topology,
                                                   clock: StepClock) -> None:
    lib = FakeNvmlLibrary([_with_processes(rtx_3060(), fake_proc, 2)],
                          driver_version="470.199.02", missing=OLD_DRIVER_MISSING)
    c = _collector(lib, fake_proc, fleet, clock, machine="pc2")
    g = c.collect_once().gpus[0]
    assert g.memory is not None and g.memory.reserved is None
    assert g.event_reasons == 0x1 and g.temperature == 41
    assert g.unsupported == {"nvmlDeviceGetTotalEccErrors"}  # fallbacks are not "unsupported"
    c.stop()


def test_no_driver_keeps_serving_and_retries_with_backoff(
        fake_proc: FakeProc, fleet: Topology, clock: StepClock) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    lib.driver_loaded = False
    c = _collector(lib, fake_proc, fleet, clock, backoff_initial=1.0, backoff_max=4.0)
    attempts = []
    for _ in range(12):  # 6 seconds in half-second steps
        s = c.collect_once()
        attempts.append(lib.calls["nvmlInitWithFlags"])
        clock.advance(0.5)
    assert (s.nvml_up, s.nvml_reason, s.gpus) == (False, "driver_not_loaded", ())
    # tries at t=0, 1, 3 (backoff 1, 2, then 4): not once per collection
    assert attempts == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert s.errors == {("nvmlInit", "driver_not_loaded"): 3}
    lib.driver_loaded = True
    clock.advance(4)
    s = c.collect_once()
    assert (s.nvml_up, len(s.gpus)) == (True, 1)
    c.stop()


def test_a_lost_gpu_takes_nvml_down_until_it_returns(fake_proc: FakeProc, fleet: Topology,
                                                     clock: StepClock) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    c = _collector(lib, fake_proc, fleet, clock)
    assert c.collect_once().nvml_up
    lib.lose(0)
    s = c.collect_once()
    assert (s.nvml_up, s.nvml_reason, s.gpus, s.attribution.groups) == (False, "gpu_lost", (), ())
    assert lib.initialized == 0  # shut down, to be re-initialised
    lib.devices[0].lost = False
    clock.advance(1.0)
    assert c.collect_once().nvml_up
    c.stop()


def test_a_transient_error_omits_the_value_and_counts_it(
        fake_proc: FakeProc, fleet: Topology, clock: StepClock) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    c = _collector(lib, fake_proc, fleet, clock)
    c.collect_once()
    lib.fail("nvmlDeviceGetPowerUsage", 10)  # timeout
    s = c.collect_once()
    assert s.nvml_up and s.gpus[0].power_mw is None and s.gpus[0].temperature == 47
    assert s.errors == {("nvmlDeviceGetPowerUsage", "timeout"): 1}
    c.stop()


def test_no_gpu_at_all_is_a_reason(fake_proc: FakeProc, fleet: Topology,
                                   clock: StepClock) -> None:
    c = _collector(FakeNvmlLibrary([]), fake_proc, fleet, clock)
    s = c.collect_once()
    assert (s.nvml_up, s.nvml_reason) == (False, "gpu_not_found")
    c.stop()


def test_the_background_threads_collect_sample_pcie_and_count_xids(
        fake_proc: FakeProc, fleet: Topology) -> None:
    lib = FakeNvmlLibrary([rtx_4090(), rtx_3060()])
    c = _collector(lib, fake_proc, fleet, StepClock(), interval=0.02, xid_wait_ms=20)
    c.start()
    try:
        _wait_for(lambda: c.snapshot().nvml_up and all(g.pcie_kbps for g in c.snapshot().gpus))
        lib.emit_xid(1, 79)
        lib.emit_xid(1, 79)
        lib.emit_xid(0, 13)
        _wait_for(lambda: c.snapshot().xids == {(1, 79): 2, (0, 13): 1})
        assert c.snapshot().gpus[0].pcie_kbps == {"tx": 1000, "rx": 2000}
    finally:
        began = time.monotonic()
        c.stop(deadline_seconds=3)
        c.stop(deadline_seconds=3)  # idempotent
    assert time.monotonic() - began < 3
    assert lib.initialized == 0 and lib.callback_errors == []


def test_the_snapshot_is_served_without_calling_nvml(
        fake_proc: FakeProc, fleet: Topology, clock: StepClock) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    c = _collector(lib, fake_proc, fleet, clock)
    first = c.collect_once()
    calls = lib.device_calls()
    seen: list[Snapshot] = [c.snapshot() for _ in range(100)]
    assert lib.device_calls() == calls
    assert all(s is first for s in seen)
    c.stop()


@pytest.mark.parametrize("gpus", [1, 4])
def test_many_processes_on_many_gpus(fake_proc: FakeProc, fleet: Topology, clock: StepClock,
                                     gpus: int) -> None:
    devices = [_with_processes(rtx_4090(f"GPU-{i}"), fake_proc, 0) for i in range(gpus)]
    for i, d in enumerate(devices):
        d.processes = [FakeProcess(10_000 * (i + 1) + j, MIB) for j in range(50)]
        for p in d.processes:
            fake_proc.add_in_container(p.pid, container_id(p.pid % 5))
    c = _collector(FakeNvmlLibrary(devices), fake_proc, fleet, clock)
    s = c.collect_once()
    assert sum(u.processes for u in s.attribution.services) == 50 * gpus
    assert sum(u.used_bytes for u in s.attribution.services) == 50 * gpus * MIB
    c.stop()


def test_without_a_process_list_group_totals_are_left_out(
        fake_proc: FakeProc, fleet: Topology, clock: StepClock) -> None:
    lib = FakeNvmlLibrary([_with_processes(rtx_4090(), fake_proc, 3), rtx_4090("GPU-b")])
    c = _collector(lib, fake_proc, fleet, clock)
    assert c.collect_once().attribution.groups  # all lists read: totals present
    lib.fail("nvmlDeviceGetComputeRunningProcesses_v3", 10)
    s = c.collect_once()
    assert s.nvml_up and s.attribution.groups == ()  # never an under-reported total
    assert s.errors == {("nvmlDeviceGetComputeRunningProcesses", "timeout"): 2}
    c.stop()
