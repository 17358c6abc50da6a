"""The hub's GPU view, against a real GPU exporter (fake NVML) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from exporters.app import ExporterConfig, GpuExporter
from exporters.testing.fake_docker import FakeDockerApi, compose_container
from exporters.testing.fake_nvml import MIB, FakeNvmlLibrary, FakeProcess, rtx_3060, rtx_4090
from exporters.testing.fake_proc import FakeProc, container_id, host_v2
from fleetobs.settings import FleetSettings, load_settings
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import GIB, Agent, Topology
from fleetobs.tracing import DISABLED as TRACING_DISABLED
from hub.app import plugin_factories
from hub.gpu import GpuPlugin, gpu_plugin
from hub.observation import Observation
from hub.testing import HubHarness

FLEET = load_topology(None)


@dataclass
class Context:
    """The smallest HubContext: what the plugin may use of the hub."""

    machine: str = "mainpc"
    settings: FleetSettings = field(default_factory=lambda: load_settings({}))
    topology: Topology = FLEET
    clock: float = 100.0
    recorded: list[Observation] = field(default_factory=list)

    def now(self) -> float:
        return self.clock

    def record(self, obs: Observation) -> None:
        self.recorded.append(obs)

    def address_of(self, agent: Agent) -> str:
        return "127.0.0.1"

    tracing = TRACING_DISABLED


@pytest.fixture
def lib() -> FakeNvmlLibrary:
    dev = rtx_4090()
    dev.processes = [FakeProcess(10, 7 * GIB), FakeProcess(11, 100 * MIB)]
    return FakeNvmlLibrary([dev])


@pytest.fixture
def exporter(lib: FakeNvmlLibrary, tmp_path: Path) -> Iterator[GpuExporter]:
    proc = FakeProc(tmp_path / "proc")
    proc.add_in_container(10, container_id(1))
    proc.add(11, host_v2())
    ex = GpuExporter(ExporterConfig("mainpc", proc_root=proc.root), FLEET, library=lib)
    ex.collector.collect_once()
    ex.server.start()
    yield ex
    ex.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_exporter_url_defaults_to_this_host_and_off_disables() -> None:
    default = gpu_plugin(Context(settings=load_settings({"FLEET_GPU_EXPORTER_PORT": "9411"})))
    assert isinstance(default, GpuPlugin) and default.exporter_url == "http://127.0.0.1:9411"
    assert gpu_plugin(Context(settings=load_settings({"FLEET_GPU_EXPORTER_URL": "off"}))) is None
    ctx = Context(settings=load_settings({"FLEET_GPU_EXPORTER_URL": "http://127.0.0.1:9400"}))
    assert isinstance(gpu_plugin(ctx), GpuPlugin)
    assert gpu_plugin in plugin_factories()


@pytest.mark.asyncio
async def test_gpus_with_free_memory_and_groups_against_budgets(exporter: GpuExporter) -> None:
    ctx = Context()
    plugin = GpuPlugin(ctx, exporter.url)
    assert await plugin.fetch_once()
    ctx.clock += 2
    view = plugin.view()
    gpu = view["gpus"][0]
    assert gpu["name"] == "NVIDIA GeForce RTX 4090"
    assert gpu["memory_free_bytes"] == (24564 - 498 - 2 - 7 * 1024 - 100) * MIB
    groups = {g["group"]: g for g in view["groups"]}
    assert set(groups) == {g.name for g in FLEET.groups_on("mainpc")}
    # without the Docker socket the container is its short id: no group claims it
    assert groups["vision_gpu"] == {"group": "vision_gpu", "service": "vision-gpu",
                                    "used_bytes": 0, "budget_bytes": 6 * GIB,
                                    "used_ratio_of_budget": 0.0, "over_budget": False}
    assert groups["core_platform"]["used_ratio_of_budget"] is None  # no budget
    assert view["exporter"]["error"] is None and view["exporter"]["stale"] is False
    assert 2 <= view["exporter"]["age_seconds"] < 3
    assert plugin.view(min_free_bytes=30 * GIB)["gpus"] == []
    await plugin.stop(1)
    await plugin.stop(1)


@pytest.mark.asyncio
async def test_groups_over_budget_are_flagged(tmp_path: Path) -> None:
    group = max(FLEET.groups_on("pc2"), key=lambda g: g.gpu_memory_budget_bytes)
    over = group.gpu_memory_budget_bytes + GIB
    dev = rtx_3060()
    dev.total_bytes = over + 2 * GIB  # room for it, so only the budget is exceeded
    dev.processes = [FakeProcess(10, over)]
    proc = FakeProc(tmp_path / "proc")
    proc.add_in_container(10, container_id(1))
    with tempfile.TemporaryDirectory(prefix="fleetobs-docker-") as d, \
            FakeDockerApi(Path(d) / "docker.sock") as docker:
        docker.containers = [compose_container(container_id(1), group.service_name)]
        ex = GpuExporter(ExporterConfig("pc2", proc_root=proc.root,
                                        docker_socket=docker.socket_path),
                         FLEET, library=FakeNvmlLibrary([dev]))
        ex.collector.collect_once()
        ex.server.start()
        plugin = GpuPlugin(Context(machine="pc2"), ex.url)
        try:
            assert await plugin.fetch_once()
        finally:
            await plugin.stop(1)
            ex.stop()
    g = {x["group"]: x for x in plugin.view()["groups"]}[group.name]
    assert (g["used_bytes"], g["over_budget"]) == (over, True)
    assert g["used_ratio_of_budget"] == round(over / group.gpu_memory_budget_bytes, 4) > 1


@pytest.mark.asyncio
async def test_nvml_down_shows_the_reason_and_no_numbers(exporter: GpuExporter,
                                                         lib: FakeNvmlLibrary) -> None:
    lib.lose(0)
    exporter.collector.collect_once()
    plugin = GpuPlugin(Context(), exporter.url)
    assert await plugin.fetch_once()
    view = plugin.view()
    assert view["exporter"]["nvml_up"] is False and view["exporter"]["nvml_reason"] == "gpu_lost"
    assert view["gpus"] == []
    assert all(g["used_bytes"] is None for g in view["groups"])
    await plugin.stop(1)


@pytest.mark.asyncio
async def test_an_unreachable_exporter_is_an_error_not_data() -> None:
    plugin = GpuPlugin(Context(), f"http://127.0.0.1:{_closed_port()}", timeout_seconds=1)
    assert not await plugin.fetch_once()
    view = plugin.view()
    assert view["exporter"]["error"] == "exporter unreachable: ConnectError"
    assert view["exporter"]["stale"] is True and view["gpus"] == []
    await plugin.stop(1)


class _Junk(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[int, bytes]]] = []

    def do_GET(self) -> None:
        status, body = self.bodies.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.asyncio
async def test_junk_from_the_exporter_is_rejected() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Junk)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    _Junk.bodies = [
        (500, b"boom"), (200, b"not json"), (200, b'{"machine": "mainpc"}'),
        (200, b'{"machine": "pc2", "age_seconds": 0, "nvml": {"up": true}}'),
        (200, b'{"machine": "mainpc", "age_seconds": -5, "nvml": {"up": true}}'),
    ]
    plugin = GpuPlugin(Context(), f"http://127.0.0.1:{server.server_address[1]}")
    errors = []
    try:
        for _ in range(5):
            assert not await plugin.fetch_once()
            errors.append(plugin.view()["exporter"]["error"])
    finally:
        await plugin.stop(1)
        server.shutdown()
        server.server_close()
    assert errors[0] == "exporter answered HTTP 500"
    assert errors[1].startswith("exporter sent an invalid answer")
    assert errors[2].startswith("exporter sent an invalid answer")
    assert errors[3] == "exporter reports machine 'pc2', this hub is 'mainpc'"
    assert errors[4].startswith("exporter sent an invalid answer")


@pytest.mark.asyncio
async def test_through_the_real_hub_app(exporter: GpuExporter, tmp_path: Path) -> None:
    settings = load_settings({"FLEET_GPU_EXPORTER_URL": exporter.url})
    async with HubHarness.build(tmp_path, settings=settings, factories=[gpu_plugin]) as h:
        body: dict[str, Any] = {}
        for _ in range(100):  # the plugin's first poll runs at start
            body = (await h.client.get("/v1/gpus")).json()
            if body["gpus"]:
                break
            await asyncio.sleep(0.02)
        assert body["machine"] == "mainpc" and body["gpus"][0]["index"] == 0
        assert {g["group"] for g in body["groups"]} == {g.name for g in FLEET.groups_on("mainpc")}
        filtered = await h.client.get("/v1/gpus", params={"min_free_bytes": 10**15})
        assert filtered.status_code == 200 and filtered.json()["gpus"] == []
        for junk in ("-1", "lots", "1e99"):
            r = await h.client.get("/v1/gpus", params={"min_free_bytes": junk})
            assert r.status_code == 422, junk


def test_hub_json_matches_exporter_json(exporter: GpuExporter) -> None:
    """The exporter's payload validates against what the hub requires (no drift)."""
    from hub.gpu import ExporterView

    view = ExporterView.model_validate(httpx.get(exporter.url + "/v1/gpus").json())
    assert view.nvml.up and view.gpus[0].memory_total_bytes == 24564 * MIB
