"""The one door to NVML: the only module that imports pynvml (nvidia-ml-py).

Everything above it sees plain values and :class:`NvmlCallError`, never pynvml
types. The library handle is a constructor argument: ``None`` loads the real
``libnvidia-ml.so.1``; tests pass a fake library object (exporters/testing) that
pynvml resolves functions from exactly as it does from the real one.

Newer NVML calls fall back to older ones when the driver lacks them
(FUNCTION_NOT_FOUND); the version that worked is remembered per call.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import pynvml

T = TypeVar("T")

#: NVML return codes -> bounded reason slugs (metric label values).
REASONS: Final[dict[int, str]] = {
    1: "uninitialized", 2: "invalid_argument", 3: "not_supported", 4: "no_permission",
    5: "already_initialized", 6: "not_found", 7: "insufficient_size",
    8: "insufficient_power", 9: "driver_not_loaded", 10: "timeout", 11: "irq_issue",
    12: "library_not_found", 13: "function_not_found", 14: "corrupted_inforom",
    15: "gpu_lost", 16: "reset_required", 17: "operating_system",
    18: "version_mismatch", 19: "in_use", 20: "memory", 21: "no_data",
    25: "argument_version_mismatch", 26: "deprecated", 27: "not_ready",
    28: "gpu_not_found", 29: "invalid_state", 999: "unknown",
}

NOT_SUPPORTED: Final = 3
FUNCTION_NOT_FOUND: Final = 13
ARGUMENT_VERSION_MISMATCH: Final = 25
TIMEOUT: Final = 10

#: Errors after which no call on the device (or NVML) can succeed until re-init.
FATAL_CODES: Final = frozenset({1, 9, 12, 15, 16, 18, 28, 999})

#: Clock-event (throttle) reason bits, nvml.h ``nvmlClocksEventReason*``.
CLOCK_EVENT_REASONS: Final[dict[int, str]] = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

#: Clock domains we export, name -> nvmlClockType_t.
CLOCKS: Final[dict[str, int]] = {"graphics": 0, "sm": 1, "memory": 2}
PCIE_COUNTERS: Final[dict[str, int]] = {"tx": 0, "rx": 1}

_XID_EVENT: Final = 0x8  # nvmlEventTypeXidCriticalError
_MEMORY_V2: Final = 0x02000028  # nvmlMemory_v2: sizeof | 2 << 24
_TEMPERATURE_V1: Final = 0x100000C


class NvmlCallError(Exception):
    """An NVML call failed: which call, the NVML code and its reason slug."""

    def __init__(self, call: str, code: int) -> None:
        self.call = call
        self.code = code
        self.reason = REASONS.get(code, "unknown")
        super().__init__(f"{call}: {self.reason} (NVML error {code})")

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES

    @property
    def unsupported(self) -> bool:
        return self.code in (NOT_SUPPORTED, FUNCTION_NOT_FOUND)


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    total: int
    used: int
    free: int
    reserved: int | None  # None: a v1-only driver cannot tell


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int
    used_bytes: int | None  # None: NVML_VALUE_NOT_AVAILABLE


class DeviceHandle:
    """An opaque device handle; ``address`` identifies it in event data."""

    __slots__ = ("address", "index", "raw")

    def __init__(self, index: int, raw: Any) -> None:
        self.index = index
        self.raw = raw
        self.address: int = ctypes.cast(raw, ctypes.c_void_p).value or 0


class EventSet:
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw


def _bind(library: object | None) -> None:
    """Point pynvml at ``library`` (None: the real one). pynvml keeps one library per
    process and caches function pointers, so both are reset together under its lock."""
    with pynvml.libLoadLock:
        if library is not None:
            pynvml.nvmlLib = library
        elif pynvml.nvmlLib is not None and not isinstance(pynvml.nvmlLib, ctypes.CDLL):
            pynvml.nvmlLib = None  # a fake from an earlier binding: load the real one
        pynvml._nvmlGetFunctionPointer_cache.clear()


class Nvml:
    """NVML calls as plain Python values. Thread-safe as NVML is."""

    def __init__(self, library: object | None = None) -> None:
        self._library = library
        self._variant: dict[str, int] = {}  # call -> index of the variant that worked
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------
    def init(self) -> None:
        _bind(self._library)
        self._variant.clear()
        self._call("nvmlInit", pynvml.nvmlInitWithFlags, 0)

    def shutdown(self) -> None:
        with contextlib.suppress(NvmlCallError):  # shutting down a dead driver is not news
            self._call("nvmlShutdown", pynvml.nvmlShutdown)

    # --- system ---------------------------------------------------------------------
    def driver_version(self) -> str:
        return str(self._call("nvmlSystemGetDriverVersion", pynvml.nvmlSystemGetDriverVersion))

    def nvml_version(self) -> str:
        return str(self._call("nvmlSystemGetNVMLVersion", pynvml.nvmlSystemGetNVMLVersion))

    def cuda_version(self) -> str:
        v = int(self._call("nvmlSystemGetCudaDriverVersion",
                           pynvml.nvmlSystemGetCudaDriverVersion))
        return f"{v // 1000}.{v % 1000 // 10}"

    def device_count(self) -> int:
        return int(self._call("nvmlDeviceGetCount", pynvml.nvmlDeviceGetCount))

    def handle(self, index: int) -> DeviceHandle:
        raw = self._call("nvmlDeviceGetHandleByIndex", pynvml.nvmlDeviceGetHandleByIndex, index)
        return DeviceHandle(index, raw)

    # --- device ---------------------------------------------------------------------
    def name(self, h: DeviceHandle) -> str:
        return str(self._call("nvmlDeviceGetName", pynvml.nvmlDeviceGetName, h.raw))

    def uuid(self, h: DeviceHandle) -> str:
        return str(self._call("nvmlDeviceGetUUID", pynvml.nvmlDeviceGetUUID, h.raw))

    def memory(self, h: DeviceHandle) -> MemoryInfo:
        def v2() -> MemoryInfo:
            m = pynvml.nvmlDeviceGetMemoryInfo(h.raw, version=_MEMORY_V2)
            return MemoryInfo(int(m.total), int(m.used), int(m.free), int(m.reserved))

        def v1() -> MemoryInfo:
            m = pynvml.nvmlDeviceGetMemoryInfo(h.raw)
            return MemoryInfo(int(m.total), int(m.used), int(m.free), None)

        return self._fallback("nvmlDeviceGetMemoryInfo", (v2, v1))

    def utilization(self, h: DeviceHandle) -> tuple[int, int]:
        u = self._call("nvmlDeviceGetUtilizationRates", pynvml.nvmlDeviceGetUtilizationRates,
                       h.raw)
        return int(u.gpu), int(u.memory)

    def temperature(self, h: DeviceHandle) -> int:
        return int(self._fallback("nvmlDeviceGetTemperature", (
            lambda: pynvml.nvmlDeviceGetTemperatureV(h.raw, 0, _TEMPERATURE_V1),
            lambda: pynvml.nvmlDeviceGetTemperature(h.raw, 0),
        )))

    def power_milliwatts(self, h: DeviceHandle) -> int:
        return int(self._call("nvmlDeviceGetPowerUsage", pynvml.nvmlDeviceGetPowerUsage, h.raw))

    def energy_millijoules(self, h: DeviceHandle) -> int:
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption",
                              pynvml.nvmlDeviceGetTotalEnergyConsumption, h.raw))

    def clock_mhz(self, h: DeviceHandle, clock: str) -> int:
        return int(self._call("nvmlDeviceGetClockInfo", pynvml.nvmlDeviceGetClockInfo, h.raw,
                              CLOCKS[clock]))

    def fan_percent(self, h: DeviceHandle) -> int:
        return int(self._call("nvmlDeviceGetFanSpeed", pynvml.nvmlDeviceGetFanSpeed, h.raw))

    def performance_state(self, h: DeviceHandle) -> int:
        return int(self._call("nvmlDeviceGetPerformanceState",
                              pynvml.nvmlDeviceGetPerformanceState, h.raw))

    def clock_event_reasons(self, h: DeviceHandle) -> int:
        """Bit mask; see :data:`CLOCK_EVENT_REASONS`. Older drivers call it 'throttle'."""
        return int(self._fallback("nvmlDeviceGetCurrentClocksEventReasons", (
            lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(h.raw),
            lambda: pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h.raw),
        )))

    def pcie_kilobytes_per_second(self, h: DeviceHandle, direction: str) -> int:
        """Blocks ~20 ms in the real driver: call it off the scrape path."""
        return int(self._call("nvmlDeviceGetPcieThroughput", pynvml.nvmlDeviceGetPcieThroughput,
                              h.raw, PCIE_COUNTERS[direction]))

    def ecc_uncorrected_volatile(self, h: DeviceHandle) -> int:
        # NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1, NVML_VOLATILE_ECC = 0
        return int(self._call("nvmlDeviceGetTotalEccErrors", pynvml.nvmlDeviceGetTotalEccErrors,
                              h.raw, 1, 0))

    def processes(self, h: DeviceHandle) -> list[GpuProcess]:
        """Compute and graphics contexts, one entry per pid (a process can be in both)."""
        compute = self._fallback("nvmlDeviceGetComputeRunningProcesses", (
            lambda: pynvml.nvmlDeviceGetComputeRunningProcesses_v3(h.raw),
            lambda: pynvml.nvmlDeviceGetComputeRunningProcesses_v2(h.raw),
        ))
        graphics = self._fallback("nvmlDeviceGetGraphicsRunningProcesses", (
            lambda: pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3(h.raw),
            lambda: pynvml.nvmlDeviceGetGraphicsRunningProcesses_v2(h.raw),
        ))
        by_pid: dict[int, int | None] = {}
        for p in [*compute, *graphics]:
            pid = int(p.pid)
            used = None if p.usedGpuMemory is None else int(p.usedGpuMemory)
            prev = by_pid.get(pid)
            # The same allocation shows in both lists: keep the larger, never add.
            by_pid[pid] = used if prev is None else max(prev, used or 0)
        return [GpuProcess(pid, used) for pid, used in by_pid.items()]

    # --- XID events -----------------------------------------------------------------
    def xid_events_supported(self, h: DeviceHandle) -> bool:
        mask = int(self._call("nvmlDeviceGetSupportedEventTypes",
                              pynvml.nvmlDeviceGetSupportedEventTypes, h.raw))
        return bool(mask & _XID_EVENT)

    def event_set_create(self) -> EventSet:
        return EventSet(self._call("nvmlEventSetCreate", pynvml.nvmlEventSetCreate))

    def register_xid_events(self, h: DeviceHandle, events: EventSet) -> None:
        self._call("nvmlDeviceRegisterEvents", pynvml.nvmlDeviceRegisterEvents, h.raw,
                   _XID_EVENT, events.raw)

    def wait_xid(self, events: EventSet, timeout_ms: int) -> tuple[int, int] | None:
        """(device handle address, xid) of the next XID event; None on timeout."""
        try:
            data = self._call("nvmlEventSetWait", pynvml.nvmlEventSetWait_v2, events.raw,
                              timeout_ms)
        except NvmlCallError as exc:
            if exc.code == TIMEOUT:
                return None
            raise
        if not int(data.eventType) & _XID_EVENT:
            return None
        address = ctypes.cast(data.device, ctypes.c_void_p).value or 0
        return address, int(data.eventData)

    def event_set_free(self, events: EventSet) -> None:
        with contextlib.suppress(NvmlCallError):  # on a lost GPU nothing is left to free
            self._call("nvmlEventSetFree", pynvml.nvmlEventSetFree, events.raw)

    # --- plumbing -------------------------------------------------------------------
    @staticmethod
    def _call(call: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except pynvml.NVMLError as exc:
            raise NvmlCallError(call, int(exc.value)) from None
        except pynvml.NVMLLibraryMismatchError:
            raise NvmlCallError(call, FUNCTION_NOT_FOUND) from None

    def _fallback(self, call: str, variants: tuple[Callable[[], T], ...]) -> T:
        """Try the remembered variant, else newest to oldest while the driver lacks them."""
        start = self._variant.get(call, 0)
        for i in range(start, len(variants)):
            try:
                result = variants[i]()
            except pynvml.NVMLError as exc:
                code = int(exc.value)
                if code in (FUNCTION_NOT_FOUND, ARGUMENT_VERSION_MISMATCH) and i + 1 < len(variants):
                    continue
                raise NvmlCallError(call, code) from None
            if i != start:
                with self._lock:
                    self._variant[call] = i
            return result
        raise NvmlCallError(call, FUNCTION_NOT_FOUND)  # pragma: no cover - loop always returns
