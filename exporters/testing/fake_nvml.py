"""A fake NVML shared library for nvidia-ml-py's real bindings.

pynvml resolves every C function with ``getattr(nvmlLib, name)`` and calls it with
ctypes arguments. :class:`FakeNvmlLibrary` is such an object: each attribute is a
``CFUNCTYPE`` callback that reads and fills the C structs through raw pointers, with
its own struct layouts written from nvml.h (this module does not import pynvml), so
the bindings' struct parsing, INSUFFICIENT_SIZE retries, version fields and error
codes are exercised for real. A function the simulated driver lacks is simply not an
attribute: pynvml then raises FUNCTION_NOT_FOUND exactly as with an old driver.

Device profiles: :func:`rtx_4090`, :func:`rtx_3060` (GeForce: no ECC) and
:data:`OLD_DRIVER_MISSING` (a 470-series driver without the newer calls).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_int,
    c_uint,
    c_ulonglong,
    c_void_p,
)
from dataclasses import dataclass, field
from typing import Any

MIB = 1024**2

# nvmlReturn_t (nvml.h)
SUCCESS = 0
ERROR_UNINITIALIZED = 1
ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
ERROR_INSUFFICIENT_SIZE = 7
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_GPU_IS_LOST = 15
ERROR_ARGUMENT_VERSION_MISMATCH = 25
ERROR_UNKNOWN = 999

EVENT_XID = 0x8
VALUE_NOT_AVAILABLE = 0xFFFFFFFFFFFFFFFF


# --- nvml.h struct layouts -----------------------------------------------------------
class Memory(Structure):
    _fields_ = (("total", c_ulonglong), ("free", c_ulonglong), ("used", c_ulonglong))


class MemoryV2(Structure):
    _fields_ = (("version", c_uint), ("total", c_ulonglong), ("reserved", c_ulonglong),
                ("free", c_ulonglong), ("used", c_ulonglong))


MEMORY_V2_VERSION = ctypes.sizeof(MemoryV2) | (2 << 24)


class Utilization(Structure):
    _fields_ = (("gpu", c_uint), ("memory", c_uint))


class ProcessInfo(Structure):  # nvmlProcessInfo_v2_t; _v3 calls use the same layout
    _fields_ = (("pid", c_uint), ("usedGpuMemory", c_ulonglong),
                ("gpuInstanceId", c_uint), ("computeInstanceId", c_uint))


class TemperatureV1(Structure):
    _fields_ = (("version", c_uint), ("sensorType", c_uint), ("temperature", c_int))


TEMPERATURE_V1_VERSION = ctypes.sizeof(TemperatureV1) | (1 << 24)


class EventData(Structure):
    _fields_ = (("device", c_void_p), ("eventType", c_ulonglong), ("eventData", c_ulonglong),
                ("gpuInstanceId", c_uint), ("computeInstanceId", c_uint))


# --- simulated hardware ----------------------------------------------------------------
@dataclass
class FakeProcess:
    pid: int
    used_bytes: int | None  # None: NVML_VALUE_NOT_AVAILABLE
    kind: str = "compute"  # or "graphics", or "both"


@dataclass
class FakeDevice:
    name: str
    uuid: str
    total_bytes: int
    reserved_bytes: int
    base_used_bytes: int = 0  # contexts NVML lists no process for (display, ...)
    utilization: tuple[int, int] = (0, 0)
    temperature: int = 40
    power_mw: int = 30_000
    energy_mj: int = 1_000_000
    clocks_mhz: dict[int, int] = field(default_factory=lambda: {0: 210, 1: 210, 2: 405})
    fan_percent: int = 30
    pstate: int = 8
    event_reasons: int = 0x1  # gpu_idle
    pcie_kbps: dict[int, int] = field(default_factory=lambda: {0: 1000, 1: 2000})
    ecc_uncorrected: int = 0
    #: C functions this device answers NOT_SUPPORTED to.
    unsupported: set[str] = field(default_factory=set)
    processes: list[FakeProcess] = field(default_factory=list)
    lost: bool = False

    def used_bytes(self) -> int:
        return self.base_used_bytes + sum(p.used_bytes or 0 for p in self.processes)


GEFORCE_UNSUPPORTED = frozenset({
    "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetMemoryErrorCounter",
    "nvmlDeviceGetRetiredPages", "nvmlDeviceGetRetiredPages_v2",
})

#: A 470-series driver: the newer versioned calls do not exist in its library.
OLD_DRIVER_MISSING = frozenset({
    "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetTemperatureV",
})


def rtx_4090(uuid: str = "GPU-4090aaaa-0000-4000-8000-000000000001") -> FakeDevice:
    """Ada GeForce, 24 GiB (24564 MiB visible, ~ 500 MiB reserved by the driver)."""
    return FakeDevice(name="NVIDIA GeForce RTX 4090", uuid=uuid, total_bytes=24564 * MIB,
                      reserved_bytes=498 * MIB, base_used_bytes=2 * MIB,
                      clocks_mhz={0: 2520, 1: 2520, 2: 10501}, power_mw=64_512,
                      energy_mj=123_456_789, temperature=47, fan_percent=31, pstate=2,
                      utilization=(37, 12), unsupported=set(GEFORCE_UNSUPPORTED))


def rtx_3060(uuid: str = "GPU-3060bbbb-0000-4000-8000-000000000002") -> FakeDevice:
    """Ampere GeForce, 12 GiB."""
    return FakeDevice(name="NVIDIA GeForce RTX 3060", uuid=uuid, total_bytes=12288 * MIB,
                      reserved_bytes=250 * MIB, base_used_bytes=1 * MIB,
                      clocks_mhz={0: 1777, 1: 1777, 2: 7500}, power_mw=35_250,
                      energy_mj=9_876_543, temperature=41, fan_percent=0, pstate=8,
                      utilization=(5, 1), unsupported=set(GEFORCE_UNSUPPORTED))


_Handler = Callable[..., int]


class FakeNvmlLibrary:
    """Stands where ``CDLL('libnvidia-ml.so.1')`` would. Attributes are the C functions.

    ``missing`` names functions the simulated driver does not export. Use
    :meth:`fail` to make a call return an error code, :meth:`emit_xid` to raise an
    XID event, ``devices[i].lost = True`` to drop a GPU off the bus and
    ``driver_loaded = False`` to make nvmlInit fail.
    """

    def __init__(self, devices: Iterable[FakeDevice], *, driver_version: str = "550.120",
                 cuda_version: int = 12040, missing: Iterable[str] = (),
                 pcie_delay_seconds: float = 0.0) -> None:
        self.devices = list(devices)
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.pcie_delay_seconds = pcie_delay_seconds
        self.call_delay_seconds = 0.0  # added to every call: a slow driver (benchmarks)
        self.driver_loaded = True
        self.initialized = 0
        self.calls: Counter[str] = Counter()
        self.callback_errors: list[BaseException] = []
        self._failures: dict[str, int] = {}
        self._lock = threading.Condition()
        self._events: list[tuple[int, int]] = []  # (device index, xid)
        self._registered: dict[int, set[int]] = {}  # event set address -> device indexes
        # Handles and event sets are addresses of real buffers, so pointers are valid.
        self._handle_buffers = [ctypes.create_string_buffer(8) for _ in range(16)]
        self._set_buffers: list[ctypes.Array[ctypes.c_char]] = []
        self._strings: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self._keep: list[Any] = []
        missing = frozenset(missing)
        for name, restype, argtypes, handler in self._signatures():
            if name not in missing:
                self._export(name, restype, argtypes, handler)

    # --- control ----------------------------------------------------------------------
    def fail(self, function: str, code: int | None) -> None:
        """From now on ``function`` returns ``code`` (None: works again)."""
        with self._lock:
            if code is None:
                self._failures.pop(function, None)
            else:
                self._failures[function] = code

    def emit_xid(self, index: int, xid: int) -> None:
        with self._lock:
            self._events.append((index, xid))
            self._lock.notify_all()

    def lose(self, index: int) -> None:
        """GPU ``index`` falls off the bus: every call on it answers GPU_IS_LOST."""
        with self._lock:
            self.devices[index].lost = True
            self._lock.notify_all()

    def handle_address(self, index: int) -> int:
        return ctypes.addressof(self._handle_buffers[index])

    def device_calls(self) -> int:
        """Calls made so far to any NVML function (to prove a scrape makes none)."""
        return sum(self.calls.values())

    # --- export -----------------------------------------------------------------------
    def _export(self, name: str, restype: Any, argtypes: tuple[Any, ...],
                handler: _Handler) -> None:
        def guarded(*args: Any) -> int:
            # An exception must never cross the C boundary: ctypes would print and
            # return 0 (SUCCESS). Record it and answer NVML_ERROR_UNKNOWN instead.
            try:
                self.calls[name] += 1
                if self.call_delay_seconds:
                    time.sleep(self.call_delay_seconds)
                failure = self._failures.get(name)
                if failure is not None:
                    return failure
                return handler(*args)
            except BaseException as exc:  # noqa: BLE001 - nothing may cross into C
                self.callback_errors.append(exc)
                return ERROR_UNKNOWN

        fn = CFUNCTYPE(restype, *argtypes)(guarded)
        self._keep.append(fn)
        setattr(self, name, fn)

    def _signatures(self) -> list[tuple[str, Any, tuple[Any, ...], _Handler]]:
        P, U, UL, R = c_void_p, c_uint, c_ulonglong, c_int  # noqa: N806 - C type shorthands
        dev: list[tuple[str, Any, tuple[Any, ...], _Handler]] = [
            ("nvmlDeviceGetName", R, (P, P, U), self._name),
            ("nvmlDeviceGetUUID", R, (P, P, U), self._uuid),
            ("nvmlDeviceGetMemoryInfo", R, (P, P), self._memory_v1),
            ("nvmlDeviceGetMemoryInfo_v2", R, (P, P), self._memory_v2),
            ("nvmlDeviceGetUtilizationRates", R, (P, P), self._utilization),
            ("nvmlDeviceGetTemperatureV", R, (P, P), self._temperature_v),
            ("nvmlDeviceGetTemperature", R, (P, U, P), self._temperature),
            ("nvmlDeviceGetPowerUsage", R, (P, P), self._uint(lambda d: d.power_mw)),
            ("nvmlDeviceGetTotalEnergyConsumption", R, (P, P),
             self._ull(lambda d: d.energy_mj)),
            ("nvmlDeviceGetClockInfo", R, (P, U, P), self._clock),
            ("nvmlDeviceGetFanSpeed", R, (P, P), self._uint(lambda d: d.fan_percent)),
            ("nvmlDeviceGetPerformanceState", R, (P, P), self._uint(lambda d: d.pstate)),
            ("nvmlDeviceGetCurrentClocksEventReasons", R, (P, P),
             self._ull(lambda d: d.event_reasons)),
            ("nvmlDeviceGetCurrentClocksThrottleReasons", R, (P, P),
             self._ull(lambda d: d.event_reasons)),
            ("nvmlDeviceGetPcieThroughput", R, (P, U, P), self._pcie),
            ("nvmlDeviceGetTotalEccErrors", R, (P, U, U, P), self._ecc),
            ("nvmlDeviceGetSupportedEventTypes", R, (P, P), self._ull(lambda d: EVENT_XID)),
            ("nvmlDeviceRegisterEvents", R, (P, UL, P), self._register),
        ]
        for kind in ("Compute", "Graphics"):
            for v in ("_v2", "_v3"):
                dev.append((f"nvmlDeviceGet{kind}RunningProcesses{v}", R, (P, P, P),
                            self._processes(kind.lower())))
        # Every device function checks its handle, the device's support and loss first.
        dev = [(n, r, a, self._on_device(n, h)) for n, r, a, h in dev]
        return [
            ("nvmlInitWithFlags", R, (U,), self._init),
            ("nvmlShutdown", R, (), self._shutdown),
            ("nvmlErrorString", P, (R,), self._error_string),
            ("nvmlSystemGetDriverVersion", R, (P, U),
             lambda buf, n: self._put_string(buf, n, self.driver_version)),
            ("nvmlSystemGetNVMLVersion", R, (P, U),
             lambda buf, n: self._put_string(buf, n, "12." + self.driver_version)),
            ("nvmlSystemGetCudaDriverVersion", R, (P,), self._cuda_version),
            ("nvmlDeviceGetCount_v2", R, (P,), self._count),
            ("nvmlDeviceGetHandleByIndex_v2", R, (U, P), self._handle),
            ("nvmlEventSetCreate", R, (P,), self._event_set_create),
            ("nvmlEventSetWait_v2", R, (P, P, U), self._event_wait),
            ("nvmlEventSetFree", R, (P,), self._event_set_free),
            *dev,
        ]

    # --- system -----------------------------------------------------------------------
    def _init(self, flags: int) -> int:
        if not self.driver_loaded:
            return ERROR_DRIVER_NOT_LOADED
        self.initialized += 1
        return SUCCESS

    def _shutdown(self) -> int:
        if self.initialized == 0:
            return ERROR_UNINITIALIZED
        self.initialized -= 1
        return SUCCESS

    def _error_string(self, code: int) -> int:
        buf = self._strings.get(code)
        if buf is None:
            buf = self._strings[code] = ctypes.create_string_buffer(f"Fake error {code}".encode())
        return ctypes.addressof(buf)

    def _cuda_version(self, out: int) -> int:
        ctypes.cast(out, POINTER(c_int)).contents.value = self.cuda_version
        return SUCCESS

    def _count(self, out: int) -> int:
        if not self.initialized:
            return ERROR_UNINITIALIZED
        ctypes.cast(out, POINTER(c_uint)).contents.value = len(self.devices)
        return SUCCESS

    def _handle(self, index: int, out: int) -> int:
        if not self.initialized:
            return ERROR_UNINITIALIZED
        if index >= len(self.devices):
            return ERROR_INVALID_ARGUMENT
        ctypes.cast(out, POINTER(c_void_p)).contents.value = self.handle_address(index)
        return SUCCESS

    @staticmethod
    def _put_string(buf: int, size: int, text: str) -> int:
        data = text.encode() + b"\0"
        if len(data) > size:
            return ERROR_INSUFFICIENT_SIZE
        ctypes.memmove(buf, data, len(data))
        return SUCCESS

    # --- devices ----------------------------------------------------------------------
    def _on_device(self, name: str, handler: _Handler) -> _Handler:
        def call(handle: int | None, *args: Any) -> int:
            if not self.initialized:
                return ERROR_UNINITIALIZED
            index = self._index_of(handle)
            if index is None:
                return ERROR_INVALID_ARGUMENT
            device = self.devices[index]
            if device.lost:
                return ERROR_GPU_IS_LOST
            if name in device.unsupported:
                return ERROR_NOT_SUPPORTED
            return handler(device, *args)
        return call

    def _index_of(self, handle: int | None) -> int | None:
        for i in range(len(self.devices)):
            if handle == self.handle_address(i):
                return i
        return None

    def _name(self, d: FakeDevice, buf: int, size: int) -> int:
        return self._put_string(buf, size, d.name)

    def _uuid(self, d: FakeDevice, buf: int, size: int) -> int:
        return self._put_string(buf, size, d.uuid)

    @staticmethod
    def _uint(get: Callable[[FakeDevice], int]) -> _Handler:
        def h(d: FakeDevice, out: int) -> int:
            ctypes.cast(out, POINTER(c_uint)).contents.value = get(d)
            return SUCCESS
        return h

    @staticmethod
    def _ull(get: Callable[[FakeDevice], int]) -> _Handler:
        def h(d: FakeDevice, out: int) -> int:
            ctypes.cast(out, POINTER(c_ulonglong)).contents.value = get(d)
            return SUCCESS
        return h

    @staticmethod
    def _memory_v1(d: FakeDevice, out: int) -> int:
        m = ctypes.cast(out, POINTER(Memory)).contents
        used = d.used_bytes() + d.reserved_bytes  # v1 counts reserved memory as used
        m.total, m.used, m.free = d.total_bytes, used, d.total_bytes - used
        return SUCCESS

    @staticmethod
    def _memory_v2(d: FakeDevice, out: int) -> int:
        m = ctypes.cast(out, POINTER(MemoryV2)).contents
        if m.version != MEMORY_V2_VERSION:
            return ERROR_ARGUMENT_VERSION_MISMATCH
        used = d.used_bytes()
        m.total, m.reserved, m.used = d.total_bytes, d.reserved_bytes, used
        m.free = d.total_bytes - d.reserved_bytes - used
        return SUCCESS

    @staticmethod
    def _utilization(d: FakeDevice, out: int) -> int:
        u = ctypes.cast(out, POINTER(Utilization)).contents
        u.gpu, u.memory = d.utilization
        return SUCCESS

    @staticmethod
    def _temperature_v(d: FakeDevice, out: int) -> int:
        t = ctypes.cast(out, POINTER(TemperatureV1)).contents
        if t.version != TEMPERATURE_V1_VERSION:
            return ERROR_ARGUMENT_VERSION_MISMATCH
        if t.sensorType != 0:
            return ERROR_INVALID_ARGUMENT
        t.temperature = d.temperature
        return SUCCESS

    @staticmethod
    def _temperature(d: FakeDevice, sensor: int, out: int) -> int:
        if sensor != 0:
            return ERROR_INVALID_ARGUMENT
        ctypes.cast(out, POINTER(c_uint)).contents.value = d.temperature
        return SUCCESS

    @staticmethod
    def _clock(d: FakeDevice, clock: int, out: int) -> int:
        if clock not in d.clocks_mhz:
            return ERROR_INVALID_ARGUMENT
        ctypes.cast(out, POINTER(c_uint)).contents.value = d.clocks_mhz[clock]
        return SUCCESS

    def _pcie(self, d: FakeDevice, counter: int, out: int) -> int:
        if counter not in d.pcie_kbps:
            return ERROR_INVALID_ARGUMENT
        if self.pcie_delay_seconds:
            time.sleep(self.pcie_delay_seconds)  # the real call samples a 20 ms window
        ctypes.cast(out, POINTER(c_uint)).contents.value = d.pcie_kbps[counter]
        return SUCCESS

    @staticmethod
    def _ecc(d: FakeDevice, error_type: int, counter_type: int, out: int) -> int:
        ctypes.cast(out, POINTER(c_ulonglong)).contents.value = d.ecc_uncorrected
        return SUCCESS

    @staticmethod
    def _processes(kind: str) -> _Handler:
        def h(d: FakeDevice, count_ptr: int, infos: int | None) -> int:
            procs = [p for p in d.processes if p.kind in (kind, "both")]
            count = ctypes.cast(count_ptr, POINTER(c_uint)).contents
            if not procs:
                count.value = 0
                return SUCCESS
            if infos is None or count.value < len(procs):
                count.value = len(procs)
                return ERROR_INSUFFICIENT_SIZE
            array = ctypes.cast(infos, POINTER(ProcessInfo))
            for i, p in enumerate(procs):
                array[i].pid = p.pid
                array[i].usedGpuMemory = VALUE_NOT_AVAILABLE if p.used_bytes is None else p.used_bytes
                array[i].gpuInstanceId = 0xFFFFFFFF
                array[i].computeInstanceId = 0xFFFFFFFF
            count.value = len(procs)
            return SUCCESS
        return h

    # --- events -----------------------------------------------------------------------
    def _event_set_create(self, out: int) -> int:
        if not self.initialized:
            return ERROR_UNINITIALIZED
        buf = ctypes.create_string_buffer(8)
        self._set_buffers.append(buf)
        with self._lock:
            self._registered[ctypes.addressof(buf)] = set()
        ctypes.cast(out, POINTER(c_void_p)).contents.value = ctypes.addressof(buf)
        return SUCCESS

    def _register(self, device: FakeDevice, event_types: int, event_set: int | None) -> int:
        index = next(i for i, d in enumerate(self.devices) if d is device)
        with self._lock:
            if event_set not in self._registered:
                return ERROR_INVALID_ARGUMENT
            if event_types & EVENT_XID:
                self._registered[event_set].add(index)
        return SUCCESS

    def _event_wait(self, event_set: int | None, out: int, timeout_ms: int) -> int:
        deadline = time.monotonic() + timeout_ms / 1000
        with self._lock:
            if event_set not in self._registered:
                return ERROR_INVALID_ARGUMENT
            wanted = self._registered[event_set]
            while True:
                if any(self.devices[i].lost for i in wanted):
                    return ERROR_GPU_IS_LOST
                for pos, (index, xid) in enumerate(self._events):
                    if index in wanted:
                        del self._events[pos]
                        data = ctypes.cast(out, POINTER(EventData)).contents
                        data.device = self.handle_address(index)
                        data.eventType = EVENT_XID
                        data.eventData = xid
                        data.gpuInstanceId = data.computeInstanceId = 0xFFFFFFFF
                        return SUCCESS
                left = deadline - time.monotonic()
                if left <= 0:
                    return ERROR_TIMEOUT
                self._lock.wait(left)

    def _event_set_free(self, event_set: int | None) -> int:
        with self._lock:
            if self._registered.pop(event_set or 0, None) is None:
                return ERROR_INVALID_ARGUMENT
        return SUCCESS
