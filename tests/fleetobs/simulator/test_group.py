"""The group simulator reproduces the real BaseAgent in a container, against a real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from fleetobs.generate.compose.bundle import healthcheck_source
from fleetobs.simulator import resp
from fleetobs.simulator.group import GroupConfig, GroupSimulator, MemberSpec
from fleetobs.testing.redis import RedisProcess

pytestmark = pytest.mark.asyncio


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(n: int) -> list[int]:
    """n free ports whose neighbours (port - 1, port + 1: HTTP and collision partners) are free
    too, and far enough apart not to touch each other."""
    out: list[int] = []
    while len(out) < n:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if all(abs(port - o) > 2 for o in out) and all(_free(p) for p in (port - 1, port, port + 1)):
            out.append(port)
    return out


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path / "redis") as r:
        yield r


async def ask(port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://127.0.0.1:{port}")
        await sock.send(b'{"action": "health_check"}')
        if not await sock.poll(timeout * 1000):
            return None
        body: dict[str, Any] = json.loads(await sock.recv())
        return body
    finally:
        sock.close(linger=0)
        ctx.term()


async def until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll ``condition`` (seconds on a loaded host, not a fixed sleep)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def collision_pair() -> tuple[MemberSpec, MemberSpec]:
    """Loser's HTTP port (health_check_port + 1) is Owner's health port."""
    p1, p2, h = free_ports(3)
    owner = MemberSpec("Owner", p1, h)
    loser = MemberSpec("Loser", p2, h - 1, start_after=(("Owner", h),))
    return owner, loser


def config(redis: RedisProcess | None, **kw: Any) -> GroupConfig:
    address = redis.address if redis is not None else ("127.0.0.1", free_ports(1)[0])
    return GroupConfig(**{"constructor_seconds": 0.5, "health_delay_seconds": 0.1, "redis": address, **kw})


async def healthcheck(tmp_path: Path, members: list[MemberSpec]) -> tuple[int, str]:
    script = tmp_path / "healthcheck.py"
    script.write_text(healthcheck_source(), encoding="utf-8")
    manifest = tmp_path / "group.json"
    manifest.write_text(json.dumps({"group": "g", "agents": [
        {"name": m.name, "port": m.port, "health_check_port": m.health_check_port} for m in members]}))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), "group", str(manifest),
                                                "--timeout", "1", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_owner_first_every_agent_constructs_and_the_loser_has_no_http(
        tmp_path: Path, redis: RedisProcess) -> None:
    owner, loser = collision_pair()
    sim = GroupSimulator([owner, loser], config(redis))
    sim.start()
    try:
        assert await sim.wait_constructed(10)
        assert sim.agents["Owner"].state.http_bound
        assert not sim.agents["Loser"].state.http_bound  # its HTTP port is Owner's health socket
        assert await healthcheck(tmp_path, [owner, loser]) == (0, "group g: 2/2 healthy\n")
        ttl = await resp.command(*redis.address, "TTL", "agent:ready:Loser")
        assert isinstance(ttl, int) and 295 <= ttl <= 300  # set once, 300 s expiry
    finally:
        await sim.stop()


async def test_a_wrong_start_order_hangs_the_owner_for_good(tmp_path: Path, redis: RedisProcess) -> None:
    owner, loser = collision_pair()
    sim = GroupSimulator([owner, loser], config(redis, order="reverse"))
    sim.start()
    try:
        owner_state, loser_state = sim.agents["Owner"].state, sim.agents["Loser"].state
        await until(lambda: loser_state.initialized and (owner_state.hung or owner_state.health_bound))
        hung = owner_state.hung
        assert hung is not None and "health_check_port" in hung
        assert loser_state.http_bound
        assert not await sim.wait_constructed(1)  # the owner never will
        code, out = await healthcheck(tmp_path, [owner, loser])
        assert code == 1
        assert "Owner: no answer on its health port" in out
    finally:
        await sim.stop()


async def test_health_port_first_main_port_after_the_constructor(redis: RedisProcess) -> None:
    (p, h) = free_ports(2)
    sim = GroupSimulator([MemberSpec("A", p, h)], config(redis, constructor_seconds=1.5))
    sim.start()
    try:
        await asyncio.sleep(0.5)
        early = await ask(h)
        assert early is not None
        assert (early["initialized"], early["status"]) == (False, "degraded")
        assert await ask(p, timeout=0.3) is None  # the main port does not serve yet
        assert await sim.wait_constructed(5)
        late = await ask(p)
        assert late is not None and (late["status"], late["initialized"]) == ("ok", True)
    finally:
        await sim.stop()


async def test_the_ready_key_expires_and_the_agent_turns_degraded(redis: RedisProcess) -> None:
    (p, h) = free_ports(2)
    sim = GroupSimulator([MemberSpec("A", p, h)], config(redis, ready_ttl_seconds=1))
    sim.start()
    try:
        assert await sim.wait_constructed(5)
        body = await ask(h)
        assert body is not None and body["status"] == "ok"
        await asyncio.sleep(1.6)
        body = await ask(h)
        assert body is not None and body["status"] == "degraded"
        assert body["health_checks"] == {"port_accessible": True, "redis_connected": True, "ready_signal": False}
    finally:
        await sim.stop()


async def test_without_redis_every_agent_is_degraded() -> None:
    (p, h) = free_ports(2)
    sim = GroupSimulator([MemberSpec("A", p, h)], config(None))
    sim.start()
    try:
        assert await sim.wait_constructed(5)
        body = await ask(p)
        assert body is not None and body["status"] == "degraded"
        assert body["health_checks"]["redis_connected"] is False
    finally:
        await sim.stop()


def _cli(tmp_path: Path, redis: RedisProcess, members: list[MemberSpec]) -> subprocess.Popen[str]:
    manifest = tmp_path / "group.json"
    manifest.write_text(json.dumps({"group": "g", "agents": [
        {"name": m.name, "port": m.port, "health_check_port": m.health_check_port} for m in members]}))
    return subprocess.Popen(
        [sys.executable, "-m", "fleetobs.cli.main", "simulate-group", "--manifest", str(manifest),
         "--constructor-seconds", "0.3", "--health-delay", "0.1", "--redis", f"127.0.0.1:{redis.port}"],
        env={**os.environ, "BIND_ADDRESS": "127.0.0.1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _keys(redis: RedisProcess, names: list[str]) -> list[int]:
    return [int(await resp.command(*redis.address, "EXISTS", f"agent:ready:{n}") or 0) for n in names]


async def _wait_keys(redis: RedisProcess, names: list[str]) -> None:
    for _ in range(600):  # the CLI's start-up takes seconds on a loaded host
        if await _keys(redis, names) == [1] * len(names):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("ready keys never set")


async def test_sigint_cleans_up_ready_keys_sigterm_leaves_them(tmp_path: Path, redis: RedisProcess) -> None:
    owner, loser = collision_pair()
    names = ["Owner", "Loser"]
    with _cli(tmp_path, redis, [owner, loser]) as proc:
        try:
            await _wait_keys(redis, names)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert "ready keys deleted for 2 agents" in err
    assert await _keys(redis, names) == [0, 0]

    with _cli(tmp_path, redis, [owner, loser]) as proc:
        try:
            await _wait_keys(redis, names)
            proc.send_signal(signal.SIGTERM)  # no handler: the process dies at once
            proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert await _keys(redis, names) == [1, 1]  # they linger until they expire


async def test_metrics_on_the_http_port_say_whether_the_agent_is_healthy(redis: RedisProcess) -> None:
    import httpx

    (p, h) = free_ports(2)
    sim = GroupSimulator([MemberSpec("A", p, h)], config(redis, ready_ttl_seconds=1))
    sim.start()
    try:
        assert await sim.wait_constructed(5)
        async with httpx.AsyncClient(timeout=2) as c:
            first = (await c.get(f"http://127.0.0.1:{h + 1}/metrics")).text
            await asyncio.sleep(1.6)  # the ready key expires: degraded
            later = (await c.get(f"http://127.0.0.1:{h + 1}/metrics")).text
        assert 'agent_health_status{agent="A"} 1\n' in first
        assert 'agent_health_status{agent="A"} 0\n' in later
        assert "# TYPE agent_requests_total counter" in later
    finally:
        await sim.stop()
