"""The group relay in front of a real Redis: what BaseAgent's hard-coded localhost:6379 meets."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.container import healthcheck
from fleetobs.container.relay import Relay, Route, main, parse_route
from fleetobs.simulator import resp
from fleetobs.testing.redis import RedisProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path / "redis") as r:
        yield r


@pytest.mark.asyncio
async def test_commands_pass_through_to_redis(redis: RedisProcess) -> None:
    listen = free_port()
    # The upstream by name, as in compose (resolved for each new connection).
    relay = Relay([Route("127.0.0.1", listen, "localhost", redis.port)])
    await relay.start()
    try:
        assert await resp.command("127.0.0.1", listen, "SET", "agent:ready:A", "1", "EX", 300) == "OK"
        assert await resp.command("127.0.0.1", listen, "EXISTS", "agent:ready:A") == 1
        # Through the relay and directly: one Redis, the same keys.
        assert await resp.command("127.0.0.1", redis.port, "TTL", "agent:ready:A") in range(295, 301)
    finally:
        await relay.close()
        await relay.close()  # idempotent


@pytest.mark.asyncio
async def test_a_down_upstream_closes_the_client_connection(tmp_path: Path) -> None:
    listen = free_port()
    relay = Relay([Route("127.0.0.1", listen, "127.0.0.1", free_port())], connect_timeout=1)
    await relay.start()
    try:
        with pytest.raises(resp.RedisError, match="closed"):
            await resp.command("127.0.0.1", listen, "PING")
    finally:
        await relay.close()


def check(*routes: str) -> int:
    return healthcheck.main(["relay", *routes, "--timeout", "2"])


def test_check_is_0_through_a_live_relay_and_1_otherwise(redis: RedisProcess) -> None:
    listen = free_port()
    route = f"127.0.0.1:{listen}=127.0.0.1:{redis.port}"
    with subprocess.Popen([sys.executable, "-m", "fleetobs.container.relay", route],
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("relay: ")
            assert check(route) == 0
            redis.stop()
            assert check(route) == 1
        finally:
            proc.terminate()  # SIGTERM: the relay handles it and exits cleanly
            assert proc.wait(10) == 0
    assert check(route) == 1  # nothing listens


@pytest.mark.parametrize("text", ["127.0.0.1:6379", "127.0.0.1:6379=redis", ":1=redis:2", "h:0=redis:1"])
def test_bad_routes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_route(text)
    assert main([text]) == 2


@pytest.mark.parametrize("text", ["127.0.0.1:6379", "127.0.0.1:x=redis:1"])
def test_a_bad_route_in_the_healthcheck_is_unhealthy_not_2(text: str) -> None:
    assert check(text) == 1


def test_route_round_trips() -> None:
    assert str(parse_route("127.0.0.1:6379=redis:6379")) == "127.0.0.1:6379=redis:6379"

