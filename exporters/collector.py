"""Background collection: NVML -> immutable :class:`Snapshot`, at an interval.

A scrape reads :meth:`GpuCollector.snapshot` and never calls NVML. Three threads:

* the collector (``interval``): device readings, process lists, attribution;
* the PCIe sampler: each ``nvmlDeviceGetPcieThroughput`` blocks ~20 ms in the driver,
  so it runs apart and the collector takes its latest figures;
* the XID watcher: waits on an NVML event set and counts XID errors by code.

Capabilities are probed once per device when NVML comes up; an unsupported call is
logged once, listed in the snapshot and never called again. A fatal NVML error (no
library, no driver, GPU lost) takes NVML "down" with a reason; the collector keeps
producing snapshots and retries init with exponential backoff.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from exporters.attribution import Attribution, Attributor
from exporters.containers import ContainerMonitor, ContainersView
from exporters.docker_api import DockerDirectory
from exporters.nvml import (
    CLOCKS,
    PCIE_COUNTERS,
    DeviceHandle,
    GpuProcess,
    MemoryInfo,
    Nvml,
    NvmlCallError,
)
from fleetobs.catalog import LATENCY_BUCKETS

#: Reading key -> the NVML call behind it (the ``call`` label of unsupported/errors).
READINGS: dict[str, str] = {
    "memory": "nvmlDeviceGetMemoryInfo",
    "utilization": "nvmlDeviceGetUtilizationRates",
    "temperature": "nvmlDeviceGetTemperature",
    "power": "nvmlDeviceGetPowerUsage",
    "energy": "nvmlDeviceGetTotalEnergyConsumption",
    **{f"clock_{c}": f"nvmlDeviceGetClockInfo({c})" for c in CLOCKS},
    "fan": "nvmlDeviceGetFanSpeed",
    "pstate": "nvmlDeviceGetPerformanceState",
    "event_reasons": "nvmlDeviceGetCurrentClocksEventReasons",
    "ecc": "nvmlDeviceGetTotalEccErrors",
    "processes": "nvmlDeviceGetComputeRunningProcesses",
    **{f"pcie_{d}": f"nvmlDeviceGetPcieThroughput({d})" for d in PCIE_COUNTERS},
    "xid": "nvmlDeviceRegisterEvents",
}


@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    uuid: str
    name: str
    memory: MemoryInfo | None = None
    utilization: tuple[int, int] | None = None  # percent: gpu, memory bandwidth
    temperature: int | None = None
    power_mw: int | None = None
    energy_mj: int | None = None
    clocks_mhz: Mapping[str, int] = field(default_factory=dict)
    fan_percent: int | None = None
    pstate: int | None = None
    event_reasons: int | None = None
    pcie_kbps: Mapping[str, int] = field(default_factory=dict)
    ecc_uncorrected: int | None = None
    unsupported: frozenset[str] = frozenset()  # NVML call names


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: tuple[float, ...]
    counts: tuple[int, ...]  # cumulative per bucket, then +Inf
    total: float
    count: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    machine: str
    taken_at: float  # the collector clock (monotonic)
    nvml_up: bool
    nvml_reason: str | None
    versions: tuple[str, str, str] | None = None  # driver, nvml, cuda
    gpus: tuple[GpuReading, ...] = ()
    attribution: Attribution = field(default_factory=Attribution)
    docker_up: bool = False
    docker_reason: str | None = None
    errors: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (call, reason)
    xids: Mapping[tuple[int, int], int] = field(default_factory=dict)  # (gpu, xid)
    skipped: Mapping[str, int] = field(default_factory=dict)
    collect_duration: Histogram | None = None
    containers: ContainersView = field(default_factory=lambda: ContainersView(False, "not_queried"))


@dataclass
class _Device:
    handle: DeviceHandle
    uuid: str
    name: str
    unsupported: set[str]  # reading keys


class _Session:
    """One NVML init..shutdown: the devices and the side threads that use them."""

    def __init__(self, devices: list[_Device], versions: tuple[str, str, str]) -> None:
        self.devices = devices
        self.versions = versions
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.pcie: dict[tuple[int, str], int] = {}


class GpuCollector:
    def __init__(self, nvml: Nvml, attributor: Attributor, docker: DockerDirectory,
                 machine: str, *, interval: float = 1.0, pcie_interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, xid_wait_ms: int = 250,
                 containers: ContainerMonitor | None = None) -> None:
        self._nvml = nvml
        self._containers = containers
        self._containers_view = ContainersView(False, "not_configured")
        self._attributor = attributor
        self._docker = docker
        self._machine = machine
        self._interval = interval
        self._pcie_interval = pcie_interval or interval
        self._clock = clock
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._xid_wait_ms = xid_wait_ms
        self._lock = threading.Lock()  # counters shared with the side threads
        self._session: _Session | None = None
        self._reason: str | None = "starting"
        self._retry_at = 0.0
        self._backoff = backoff_initial
        self._errors: Counter[tuple[str, str]] = Counter()
        self._xids: Counter[tuple[int, int]] = Counter()
        self._skipped: Counter[str] = Counter()
        self._hist_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._hist_sum = 0.0
        self._logged_unsupported: set[tuple[str, str]] = set()
        self._snapshot = Snapshot(machine, clock(), False, "starting")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._threads_enabled = False
        self._current: tuple[tuple[GpuReading, ...], Attribution] = ((), Attribution())

    # --- public -----------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The latest snapshot (an atomic reference read: no NVML, no lock)."""
        return self._snapshot

    def start(self) -> None:
        if self._thread is not None:
            return
        self._threads_enabled = True
        self._thread = threading.Thread(target=self._run, name="gpu-collector", daemon=True)
        self._thread.start()

    def stop(self, deadline_seconds: float = 5.0) -> None:
        """Stop every thread and shut NVML down within the deadline; idempotent."""
        end = time.monotonic() + deadline_seconds
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, end - time.monotonic()))
            self._thread = None
        self._teardown(max(0.0, end - time.monotonic()))
        self._docker.close()
        if self._containers is not None:
            self._containers.close()

    def collect_once(self) -> Snapshot:
        self._collect_containers()  # apart from NVML: a machine without a GPU still has them
        started = time.perf_counter()
        try:
            self._collect()
        except NvmlCallError as exc:
            self._count_error(exc)
            if exc.fatal or self._session is None:
                self._down(exc.reason, exc)
        except Exception as exc:  # noqa: BLE001 - telemetry must never kill its thread
            logger.exception("GPU collection failed unexpectedly")
            self._count_error(NvmlCallError("collect", 999))
            self._down("unknown", exc)
        if self._session is not None:  # time collections, not skipped retries
            self._observe(time.perf_counter() - started)
        return self._publish()

    def _collect_containers(self) -> None:
        if self._containers is None:
            return
        try:
            self._containers_view = self._containers.collect()
        except Exception:  # noqa: BLE001 - telemetry must never kill its thread
            logger.exception("container metrics collection failed unexpectedly")
            self._containers_view = ContainersView(False, "unknown")

    # --- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.collect_once()
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))

    def _collect(self) -> None:
        if self._session is None:
            if self._clock() < self._retry_at:
                return
            self._session = self._open()
            self._reason = None
            self._backoff = self._backoff_initial
        session = self._session
        readings: list[GpuReading] = []
        per_gpu: dict[int, list[GpuProcess]] = {}
        for dev in session.devices:
            reading, processes = self._read(dev, session)
            readings.append(reading)
            if processes is not None:
                per_gpu[dev.handle.index] = processes
        attribution = self._attributor.attribute(per_gpu)
        if len(per_gpu) < len(session.devices):
            # A GPU without its process list: group totals would under-report. Services
            # seen are still shown; the per-group sums are left out this round.
            attribution = dataclasses.replace(attribution, groups=())
        with self._lock:
            self._skipped.update(attribution.skipped)
        self._current = (tuple(readings), attribution)

    def _open(self) -> _Session:
        self._nvml.init()
        try:
            versions = (self._version(self._nvml.driver_version),
                        self._version(self._nvml.nvml_version),
                        self._version(self._nvml.cuda_version))
            devices = [self._probe(self._nvml.handle(i)) for i in range(self._nvml.device_count())]
        except NvmlCallError:
            self._nvml.shutdown()
            raise
        if not devices:
            self._nvml.shutdown()
            raise NvmlCallError("nvmlDeviceGetCount", 28)  # gpu_not_found: nothing to watch
        session = _Session(devices, versions)
        logger.info("NVML up: driver {}, {} GPU(s): {}", versions[0], len(devices),
                    ", ".join(f"{d.handle.index}={d.name}" for d in devices))
        if self._threads_enabled:
            self._start_side_threads(session)
        return session

    def _version(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except NvmlCallError as exc:
            if exc.fatal:
                raise
            self._count_error(exc)
            return "unknown"

    def _probe(self, h: DeviceHandle) -> _Device:
        dev = _Device(h, self._nvml.uuid(h), self._nvml.name(h), set())
        for key, call in READINGS.items():
            try:
                self._read_one(dev, key)
            except NvmlCallError as exc:
                if exc.fatal:
                    raise
                if exc.unsupported:
                    dev.unsupported.add(key)
                    if (dev.uuid, key) not in self._logged_unsupported:
                        self._logged_unsupported.add((dev.uuid, key))
                        logger.info("GPU {} ({}) does not support {} ({}): series omitted",
                                    h.index, dev.name, call, exc.reason)
                else:
                    self._count_error(exc)
        return dev

    def _read_one(self, dev: _Device, key: str) -> Any:
        n, h = self._nvml, dev.handle
        if key.startswith("clock_"):
            return n.clock_mhz(h, key.removeprefix("clock_"))
        if key.startswith("pcie_"):
            return n.pcie_kilobytes_per_second(h, key.removeprefix("pcie_"))
        if key == "xid":
            if not n.xid_events_supported(h):
                raise NvmlCallError(READINGS["xid"], 3)
            return None
        fn: Callable[[DeviceHandle], Any] = {
            "memory": n.memory, "utilization": n.utilization, "temperature": n.temperature,
            "power": n.power_milliwatts, "energy": n.energy_millijoules, "fan": n.fan_percent,
            "pstate": n.performance_state, "event_reasons": n.clock_event_reasons,
            "ecc": n.ecc_uncorrected_volatile, "processes": n.processes,
        }[key]
        return fn(h)

    def _read(self, dev: _Device, session: _Session) -> tuple[GpuReading, list[GpuProcess] | None]:
        values: dict[str, Any] = {}
        for key in READINGS:
            if key in dev.unsupported or key.startswith("pcie_") or key == "xid":
                continue
            try:
                values[key] = self._read_one(dev, key)
            except NvmlCallError as exc:
                if exc.fatal:
                    raise
                self._count_error(exc)  # transient: omit this value this round
        with self._lock:
            pcie = {d: v for (i, d), v in session.pcie.items() if i == dev.handle.index}
        reading = GpuReading(
            index=dev.handle.index, uuid=dev.uuid, name=dev.name,
            memory=values.get("memory"), utilization=values.get("utilization"),
            temperature=values.get("temperature"), power_mw=values.get("power"),
            energy_mj=values.get("energy"),
            clocks_mhz={c: values[f"clock_{c}"] for c in CLOCKS if f"clock_{c}" in values},
            fan_percent=values.get("fan"), pstate=values.get("pstate"),
            event_reasons=values.get("event_reasons"), pcie_kbps=pcie,
            ecc_uncorrected=values.get("ecc"),
            unsupported=frozenset(READINGS[k] for k in dev.unsupported),
        )
        return reading, values.get("processes")

    # --- side threads -----------------------------------------------------------------
    def _start_side_threads(self, session: _Session) -> None:
        pcie_devices = [d for d in session.devices
                        if not {f"pcie_{c}" for c in PCIE_COUNTERS} <= d.unsupported]
        if pcie_devices:
            session.threads.append(threading.Thread(
                target=self._sample_pcie, args=(session, pcie_devices), name="gpu-pcie",
                daemon=True))
        xid_devices = [d for d in session.devices if "xid" not in d.unsupported]
        if xid_devices:
            session.threads.append(threading.Thread(
                target=self._watch_xids, args=(session, xid_devices), name="gpu-xid",
                daemon=True))
        for t in session.threads:
            t.start()

    def _sample_pcie(self, session: _Session, devices: list[_Device]) -> None:
        while not session.stop.is_set():
            for dev in devices:
                for direction in PCIE_COUNTERS:
                    if f"pcie_{direction}" in dev.unsupported:
                        continue
                    try:
                        kbps = self._nvml.pcie_kilobytes_per_second(dev.handle, direction)
                    except NvmlCallError as exc:
                        self._count_error(exc)
                        with self._lock:  # no figure beats a stale one
                            session.pcie.pop((dev.handle.index, direction), None)
                        if exc.fatal:
                            return  # the collector sees it too and re-inits
                        continue
                    with self._lock:
                        session.pcie[(dev.handle.index, direction)] = kbps
            session.stop.wait(self._pcie_interval)

    def _watch_xids(self, session: _Session, devices: list[_Device]) -> None:
        try:
            events = self._nvml.event_set_create()
        except NvmlCallError as exc:
            self._count_error(exc)
            return
        try:
            by_address: dict[int, int] = {}
            for dev in devices:
                self._nvml.register_xid_events(dev.handle, events)
                by_address[dev.handle.address] = dev.handle.index
            while not session.stop.is_set():
                event = self._nvml.wait_xid(events, self._xid_wait_ms)
                if event is not None and event[0] in by_address:
                    with self._lock:
                        self._xids[(by_address[event[0]], event[1])] += 1
                    logger.warning("GPU {}: XID {}", by_address[event[0]], event[1])
        except NvmlCallError as exc:
            self._count_error(exc)
        finally:
            self._nvml.event_set_free(events)

    # --- state ------------------------------------------------------------------------
    def _down(self, reason: str, exc: BaseException) -> None:
        if self._reason != reason:
            logger.warning("NVML unavailable ({}): {}; retrying in {:.0f}s", reason, exc,
                           self._backoff)
        self._reason = reason
        self._teardown(2.0)
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        self._current = ((), Attribution())

    def _teardown(self, deadline_seconds: float) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.stop.set()
        end = time.monotonic() + deadline_seconds
        for t in session.threads:
            t.join(max(0.0, end - time.monotonic()))
        self._nvml.shutdown()

    def _count_error(self, exc: NvmlCallError) -> None:
        with self._lock:
            self._errors[(exc.call, exc.reason)] += 1

    def _observe(self, seconds: float) -> None:
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self._hist_counts[i] += 1
        self._hist_counts[-1] += 1
        self._hist_sum += seconds

    def _publish(self) -> Snapshot:
        session = self._session
        gpus, attribution = self._current if session is not None else ((), Attribution())
        with self._lock:
            errors, xids, skipped = dict(self._errors), dict(self._xids), dict(self._skipped)
        self._snapshot = Snapshot(
            machine=self._machine, taken_at=self._clock(), nvml_up=session is not None,
            nvml_reason=None if session is not None else self._reason,
            versions=session.versions if session is not None else None,
            gpus=gpus, attribution=attribution, docker_up=self._docker.up,
            docker_reason=self._docker.reason, errors=errors, xids=xids, skipped=skipped,
            collect_duration=Histogram(LATENCY_BUCKETS, tuple(self._hist_counts),
                                       self._hist_sum, self._hist_counts[-1]),
            containers=self._containers_view,
        )
        return self._snapshot
