"""exporters.nvml through nvidia-ml-py's real bindings over the fake NVML library."""

from __future__ import annotations

import ctypes.util
import re
from pathlib import Path

import pytest

from exporters.nvml import GpuProcess, Nvml, NvmlCallError
from exporters.testing.fake_nvml import (
    MIB,
    OLD_DRIVER_MISSING,
    FakeNvmlLibrary,
    FakeProcess,
    rtx_3060,
    rtx_4090,
)

REPO = Path(__file__).resolve().parents[2]


def _open(lib: FakeNvmlLibrary) -> Nvml:
    nvml = Nvml(lib)
    nvml.init()
    return nvml


def test_system_and_identity_strings_come_through_the_c_buffers() -> None:
    lib = FakeNvmlLibrary([rtx_4090(), rtx_3060()], driver_version="550.120", cuda_version=12040)
    nvml = _open(lib)
    assert nvml.driver_version() == "550.120"
    assert nvml.cuda_version() == "12.4"
    assert nvml.device_count() == 2
    h = nvml.handle(1)
    assert (nvml.name(h), nvml.uuid(h)) == ("NVIDIA GeForce RTX 3060",
                                           "GPU-3060bbbb-0000-4000-8000-000000000002")
    assert h.address == lib.handle_address(1)
    assert lib.callback_errors == []


def test_v2_memory_reports_used_without_the_reserved_memory() -> None:
    dev = rtx_4090()
    dev.processes = [FakeProcess(10, 3000 * MIB)]
    nvml = _open(FakeNvmlLibrary([dev]))
    m = nvml.memory(nvml.handle(0))
    assert m.reserved == 498 * MIB
    assert m.used == 3002 * MIB  # processes + base contexts, not the reserve
    assert m.total == m.used + m.free + m.reserved == 24564 * MIB


def test_an_old_driver_falls_back_to_the_v1_calls_and_remembers_it() -> None:
    dev = rtx_3060()
    dev.processes = [FakeProcess(10, 100 * MIB)]
    dev.event_reasons = 0x4
    lib = FakeNvmlLibrary([dev], driver_version="470.199.02", missing=OLD_DRIVER_MISSING)
    nvml = _open(lib)
    h = nvml.handle(0)
    m = nvml.memory(h)
    assert m.reserved is None and m.used == (101 + 250) * MIB  # v1 counts the reserve as used
    assert nvml.temperature(h) == 41
    assert nvml.clock_event_reasons(h) == 0x4
    assert nvml.processes(h) == [GpuProcess(10, 100 * MIB)]
    for _ in range(3):
        nvml.memory(h)
        nvml.processes(h)
    # The newest variant is absent from the library (pynvml: FUNCTION_NOT_FOUND) and the
    # working one is remembered: old calls were made, new ones never reached C.
    assert lib.calls["nvmlDeviceGetMemoryInfo"] == 4
    assert lib.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 8  # size + fill, 4 times
    assert "nvmlDeviceGetMemoryInfo_v2" not in lib.calls
    assert lib.callback_errors == []


def test_process_lists_grow_through_insufficient_size_and_merge_compute_and_graphics() -> None:
    dev = rtx_4090()
    dev.processes = [FakeProcess(1000 + i, (i + 1) * MIB) for i in range(60)]
    dev.processes += [FakeProcess(7, 512 * MIB, "both"), FakeProcess(8, None, "graphics")]
    lib = FakeNvmlLibrary([dev])
    nvml = _open(lib)
    procs = {p.pid: p.used_bytes for p in nvml.processes(nvml.handle(0))}
    assert len(procs) == 62
    assert procs[1059] == 60 * MIB
    assert procs[7] == 512 * MIB  # listed as compute and graphics: counted once
    assert procs[8] is None  # NVML_VALUE_NOT_AVAILABLE
    # Each list: a sizing call answered INSUFFICIENT_SIZE, then the filling call.
    assert lib.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 2
    assert lib.calls["nvmlDeviceGetGraphicsRunningProcesses_v3"] == 2


def test_an_empty_process_list_is_one_call() -> None:
    lib = FakeNvmlLibrary([rtx_3060()])
    nvml = _open(lib)
    assert nvml.processes(nvml.handle(0)) == []
    assert lib.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 1


def test_geforce_ecc_is_not_supported_and_says_so() -> None:
    nvml = _open(FakeNvmlLibrary([rtx_4090()]))
    with pytest.raises(NvmlCallError) as err:
        nvml.ecc_uncorrected_volatile(nvml.handle(0))
    assert (err.value.reason, err.value.unsupported, err.value.fatal) == ("not_supported", True,
                                                                          False)
    assert err.value.call == "nvmlDeviceGetTotalEccErrors"


@pytest.mark.parametrize(("code", "reason", "fatal"), [
    (15, "gpu_lost", True), (9, "driver_not_loaded", True), (10, "timeout", False),
    (4, "no_permission", False), (999, "unknown", True), (424242, "unknown", False),
])
def test_nvml_error_codes_become_reasons(code: int, reason: str, fatal: bool) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    nvml = _open(lib)
    lib.fail("nvmlDeviceGetPowerUsage", code)
    with pytest.raises(NvmlCallError) as err:
        nvml.power_milliwatts(nvml.handle(0))
    assert (err.value.code, err.value.reason, err.value.fatal) == (code, reason, fatal)
    lib.fail("nvmlDeviceGetPowerUsage", None)
    assert nvml.power_milliwatts(nvml.handle(0)) == 64_512


def test_a_name_longer_than_the_buffer_is_insufficient_size() -> None:
    dev = rtx_4090()
    dev.name = "N" * 200  # pynvml passes a 96-byte buffer
    nvml = _open(FakeNvmlLibrary([dev]))
    with pytest.raises(NvmlCallError, match="insufficient_size"):
        nvml.name(nvml.handle(0))


def test_a_lost_gpu_answers_gpu_lost_to_every_call() -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    nvml = _open(lib)
    h = nvml.handle(0)
    lib.lose(0)
    for call in (nvml.memory, nvml.processes, nvml.temperature):
        with pytest.raises(NvmlCallError, match="gpu_lost"):
            call(h)


def test_xid_events_arrive_with_their_device_and_code() -> None:
    lib = FakeNvmlLibrary([rtx_4090(), rtx_3060()])
    nvml = _open(lib)
    h1 = nvml.handle(1)
    assert nvml.xid_events_supported(h1)
    events = nvml.event_set_create()
    nvml.register_xid_events(h1, events)
    lib.emit_xid(0, 13)  # device 0 is not registered in this set
    lib.emit_xid(1, 79)
    assert nvml.wait_xid(events, 1000) == (h1.address, 79)
    assert nvml.wait_xid(events, 1) is None  # timeout, not an error
    nvml.event_set_free(events)
    assert lib.callback_errors == []


def test_init_fails_with_the_driver_reason() -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    lib.driver_loaded = False
    with pytest.raises(NvmlCallError, match="driver_not_loaded"):
        Nvml(lib).init()


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has a real NVML")
def test_without_a_real_library_init_says_library_not_found() -> None:
    Nvml(FakeNvmlLibrary([])).init()  # a fake bound first: the real binding must replace it
    with pytest.raises(NvmlCallError) as err:
        Nvml(None).init()
    assert err.value.reason == "library_not_found"


def test_only_exporters_nvml_imports_pynvml() -> None:
    importers = sorted(
        str(p.relative_to(REPO))
        for pkg in ("exporters", "hub", "fleetobs")
        for p in (REPO / pkg).rglob("*.py")
        if re.search(r"^\s*(import pynvml|from pynvml)", p.read_text(), re.MULTILINE)
    )
    assert importers == ["exporters/nvml.py"]
