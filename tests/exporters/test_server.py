"""The exporter over real HTTP on 127.0.0.1: routes, junk, and scrapes that never touch NVML."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.app import ExporterConfig, GpuExporter
from exporters.testing.fake_nvml import FakeNvmlLibrary, FakeProcess, rtx_4090
from exporters.testing.fake_proc import FakeProc, host_v2
from fleetobs.topology.model import Topology


@pytest.fixture
def lib(fake_proc: FakeProc) -> FakeNvmlLibrary:
    dev = rtx_4090()
    dev.processes = [FakeProcess(77, 1024**3)]
    fake_proc.add(77, host_v2())
    return FakeNvmlLibrary([dev])


@pytest.fixture
def exporter(lib: FakeNvmlLibrary, fake_proc: FakeProc, fleet: Topology) -> Iterator[GpuExporter]:
    """Served, with one collection made by hand and no background thread."""
    ex = GpuExporter(ExporterConfig("mainpc", proc_root=fake_proc.root), fleet, library=lib)
    ex.collector.collect_once()
    ex.server.start()
    yield ex
    ex.stop()


def test_metrics_are_prometheus_text(exporter: GpuExporter) -> None:
    r = httpx.get(exporter.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert fams["fleet_gpu_exporter_nvml_up"].samples[0].value == 1
    assert fams["fleet_gpu_service_memory_used_bytes"].samples[0].labels["service"] == "host"


def test_openmetrics_when_asked(exporter: GpuExporter) -> None:
    r = httpx.get(exporter.url + "/metrics",
                  headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    assert "# TYPE fleet_gpu_clock_event_reasons stateset" in r.text


def test_scrapes_never_call_nvml(exporter: GpuExporter, lib: FakeNvmlLibrary) -> None:
    before = lib.device_calls()
    with httpx.Client(base_url=exporter.url) as client:
        for path in ("/metrics", "/v1/gpus", "/healthz") * 10:
            assert client.get(path).status_code == 200
    assert lib.device_calls() == before


def test_json_and_health(exporter: GpuExporter) -> None:
    gpus = httpx.get(exporter.url + "/v1/gpus").json()
    assert gpus["machine"] == "mainpc" and gpus["nvml"]["up"] is True
    assert gpus["gpus"][0]["memory_free_bytes"] > 0
    health = httpx.get(exporter.url + "/healthz").json()
    assert health["status"] == "ok" and health["snapshot_age_seconds"] >= 0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nope", 404), ("GET", "/metrics/extra", 404), ("GET", "/metrics?x=1", 400),
    ("POST", "/metrics", 405), ("DELETE", "/v1/gpus", 405), ("PUT", "/healthz", 405),
    ("HEAD", "/metrics", 405),
])
def test_junk_is_a_precise_4xx(exporter: GpuExporter, method: str, path: str,
                               status: int) -> None:
    r = httpx.request(method, exporter.url + path, content=b"junk")
    assert r.status_code == status
    if method != "HEAD":
        assert "error" in r.json()


def test_serves_before_nvml_and_stops_within_its_deadline(
        fake_proc: FakeProc, fleet: Topology) -> None:
    lib = FakeNvmlLibrary([rtx_4090()])
    lib.driver_loaded = False
    ex = GpuExporter(ExporterConfig("mainpc", proc_root=fake_proc.root, interval_seconds=0.05),
                     fleet, library=lib).start()
    url = ex.url
    try:
        text = httpx.get(url + "/metrics").text
        assert 'fleet_gpu_exporter_nvml_up{machine="mainpc"} 0.0' in text
    finally:
        began = time.monotonic()
        ex.stop(deadline_seconds=3)
        ex.stop(deadline_seconds=3)
    assert time.monotonic() - began < 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/metrics", timeout=1)


def test_an_unknown_machine_is_refused(fake_proc: FakeProc, fleet: Topology,
                                       tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown machine 'nope'"):
        GpuExporter(ExporterConfig("nope", proc_root=tmp_path), fleet)
