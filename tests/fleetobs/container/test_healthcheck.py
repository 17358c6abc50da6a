"""The group healthcheck script against real ZeroMQ peers: exit 0 or 1, never anything else.

It runs as a separate process (as Docker runs it), from the copy the bundle carries.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from fleetobs.generate.compose.bundle import healthcheck_source
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet

pytestmark = pytest.mark.asyncio


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "healthcheck.py"
    path.write_text(healthcheck_source(), encoding="utf-8")  # what the bundle mounts
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(script: Path, *args: str, python: tuple[str, ...] = (sys.executable,)) -> tuple[int, str, float]:
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*python, str(script), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), time.monotonic() - start


@pytest_asyncio.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    specs = [SimAgentSpec(n, "m", "g", 0, 0) for n in ("A", "B", "C")]
    async with SimulatedFleet(specs) as f:
        yield f


def manifest(tmp_path: Path, fleet: SimulatedFleet, **overrides: dict[str, Any]) -> Path:
    agents = [{"name": a.spec.name, "port": a.port, "health_check_port": a.health_check_port, "required": True,
               **overrides.get(a.spec.name, {})} for a in fleet.agents.values()]
    path = tmp_path / "group.json"
    path.write_text(json.dumps({"group": "g", "agents": agents}), encoding="utf-8")
    return path


async def test_every_agent_answering_ok_is_healthy(tmp_path: Path, script: Path, fleet: SimulatedFleet) -> None:
    code, out, _ = await run(script, "group", str(manifest(tmp_path, fleet)))
    assert (code, out.strip()) == (0, "group g: 3/3 healthy")


async def test_degraded_answers_count_unless_strict(tmp_path: Path, script: Path, fleet: SimulatedFleet) -> None:
    fleet.set_behaviour("B", Behaviour.DEGRADED)
    path = str(manifest(tmp_path, fleet))
    assert (await run(script, "group", path))[0] == 0
    code, out, _ = await run(script, "group", path, "--strict")
    assert code == 1
    assert "B: status degraded" in out


@pytest.mark.parametrize(("behaviour", "why"), [
    (Behaviour.ERROR, "B: status error"),
    (Behaviour.GARBAGE, "B: reply is not a health object"),
    (Behaviour.SILENT, "B: no answer on its health port"),
])
async def test_a_failing_agent_makes_the_group_unhealthy(tmp_path: Path, script: Path, fleet: SimulatedFleet,
                                                         behaviour: Behaviour, why: str) -> None:
    fleet.set_behaviour("B", behaviour)
    code, out, elapsed = await run(script, "group", str(manifest(tmp_path, fleet)), "--timeout", "1")
    assert code == 1
    assert "2/3 healthy" in out and why in out
    assert elapsed < 5  # a silent agent costs the timeout once, not per agent


async def test_main_port_not_serving_is_unhealthy(tmp_path: Path, script: Path, fleet: SimulatedFleet) -> None:
    # The health port answers but nothing listens on the main port: BaseAgent's constructor
    # has not finished, or another agent holds the port.
    path = manifest(tmp_path, fleet, C={"port": free_port()})
    code, out, _ = await run(script, "group", str(path))
    assert code == 1
    assert "C: main port not serving" in out


async def test_nothing_listening_is_unhealthy_fast(tmp_path: Path, script: Path) -> None:
    path = tmp_path / "group.json"
    path.write_text(json.dumps({"group": "g", "agents": [
        {"name": "Gone", "port": free_port(), "health_check_port": free_port()}]}), encoding="utf-8")
    code, out, elapsed = await run(script, "group", str(path), "--timeout", "10")
    assert code == 1
    assert "Gone: no answer on its health port" in out
    assert elapsed < 5  # refused at once, no waiting out the timeout


async def test_agents_not_required_never_fail_the_group(tmp_path: Path, script: Path,
                                                       fleet: SimulatedFleet) -> None:
    fleet.set_behaviour("A", Behaviour.ERROR)
    code, out, _ = await run(script, "group", str(manifest(tmp_path, fleet, A={"required": False})))
    assert code == 0
    assert "not required, not healthy: A: status error" in out


async def test_still_initializing_is_unhealthy(tmp_path: Path, script: Path) -> None:
    from fleetobs.simulator.group import GroupConfig, GroupSimulator, MemberSpec

    spec = MemberSpec("Slow", free_port(), free_port())
    sim = GroupSimulator([spec], GroupConfig(constructor_seconds=30, health_delay_seconds=0,
                                             redis=("127.0.0.1", free_port())))
    sim.start()
    try:
        await asyncio.sleep(0.3)
        path = tmp_path / "group.json"
        path.write_text(json.dumps({"group": "g", "agents": [
            {"name": "Slow", "port": spec.port, "health_check_port": spec.health_check_port}]}), encoding="utf-8")
        code, out, _ = await run(script, "group", str(path))
        assert code == 1
        assert "Slow: still initializing" in out
    finally:
        await sim.stop()


@pytest.mark.parametrize("args", [
    ["group", "/nonexistent/group.json"],
    ["group"],
    ["bogus", "x"],
    ["group", "x", "--timeout", "0"],
    ["http", "ftp://example.invalid/"],
])
async def test_bad_input_exits_1_never_2(script: Path, args: list[str]) -> None:
    code, out, _ = await run(script, *args)
    assert code == 1
    assert out.count("\n") == 1 or out.startswith("usage")


async def test_without_pyzmq_the_verdict_is_unhealthy_not_a_crash(tmp_path: Path, script: Path,
                                                                   fleet: SimulatedFleet) -> None:
    # -S -I: no site-packages, so no pyzmq (an image that lacks it).
    code, out, _ = await run(script, "group", str(manifest(tmp_path, fleet)), python=(sys.executable, "-S", "-I"))
    assert code == 1
    assert "ModuleNotFoundError" in out


class _Handler(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_http_mode_is_2xx_or_unhealthy(script: Path, http_server: str) -> None:
    assert (await run(script, "http", f"{http_server}/ready"))[:2] == (0, f"{http_server}/ready: HTTP 200\n")
    code, out, _ = await run(script, "http", f"{http_server}/starting")
    assert code == 1 and "503" in out
    code, out, _ = await run(script, "http", f"http://127.0.0.1:{free_port()}/ready")
    assert code == 1 and "refused" in out.lower()
