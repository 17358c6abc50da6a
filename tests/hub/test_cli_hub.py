"""``fleetobs hub`` as a real process: embedded defaults, heartbeats, kill -9, restore."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "fleetobs.cli.main", "hub"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLEET_") and k not in ("MACHINE_TYPE", "BIND_ADDRESS",
                                                      "SERVICE_DISCOVERY_MODE")}
    # Probing would hit real 127.0.0.1 ports, where other test runs may be answering:
    # keep liveness here a function of this test's heartbeats only.
    env["FLEET_PROBE_ENABLED"] = "false"
    # No default peers: the topology's pc2 is a host name, and tests only reach loopback.
    env["FLEET_PEERS"] = "none"
    env.update(extra)
    return env


def wait_for(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def hub_process(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    log = cwd / f"hub-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "--port", "0", *args], cwd=cwd, env=clean_env(),
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        def port() -> str | None:
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())
            if m is None and proc.poll() is not None:
                raise AssertionError(f"hub exited {proc.returncode}: {log.read_text()}")
            return m.group(1) if m else None

        url = wait_for(port, "the listening line")

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, "/ready")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_runs_on_embedded_defaults_and_survives_kill_9(tmp_path: Path) -> None:
    # No configuration at all: default topology, machine mainpc, data in ./.fleetobs.
    with hub_process(tmp_path) as (proc, url):
        r = httpx.post(f"{url}/v1/heartbeats", json={"agent": "MemoryClient", "version": "9.9"})
        assert r.status_code == 200 and r.json()["accepted"] == ["MemoryClient"]
        agents = {a["name"]: a for a in httpx.get(f"{url}/v1/agents").json()["agents"]}
        assert agents["MemoryClient"]["state"] == "up"
        assert agents["KnowledgeBase"]["state"] == "missing"
        assert agents["ObservabilityHub"]["state"] == "up"
        # A newcomer is told what to do next, and / is the status page (it was a 404).
        log = next(tmp_path.glob("hub-*.log")).read_text()
        assert f"status page {url}/ , fleet at a glance {url}/v1/fleet" in log
        assert "fleetobs demo" in log and f"fleetobs status --hub {url}" in log
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and "KnowledgeBase" in page.text and "never heard" in page.text
        metrics = httpx.get(f"{url}/metrics").text
        assert 'fleet_agent_up{machine="mainpc",group="memory_stack",agent="MemoryClient"} 1' in metrics
        assert 'fleet_agent_up{machine="mainpc",group="memory_stack",agent="KnowledgeBase"} 0' in metrics
        # Wait for the write-behind flush (the documented bound: 1 s), then kill -9.
        wait_for(lambda: 'fleet_hub_store_pending_writes{machine="mainpc"} 0.0'
                 in httpx.get(f"{url}/metrics").text, "the flush")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert (tmp_path / ".fleetobs" / "hub-mainpc.sqlite3").is_file()
    with hub_process(tmp_path) as (_, url):
        a = httpx.get(f"{url}/v1/agents/MemoryClient").json()
        assert (a["state"], a["version"], a["source"]) == ("up", "9.9", "heartbeat")
        assert httpx.get(f"{url}/v1/agents/KnowledgeBase").json()["state"] == "missing"


def test_sigterm_flushes_and_exits_cleanly(tmp_path: Path) -> None:
    with hub_process(tmp_path, "--machine", "pc2", "--data-dir", "state") as (proc, url):
        httpx.post(f"{url}/v1/heartbeats", json={"agent": "ResourceManager"})
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal (exit by SIGTERM).
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
    # What was acknowledged just before SIGTERM is there: the shutdown flushed it.
    with hub_process(tmp_path, "--machine", "pc2", "--data-dir", "state") as (_, url):
        assert httpx.get(f"{url}/v1/agents/ResourceManager").json()["state"] == "up"


@pytest.mark.parametrize(("args", "message"), [
    (["--machine", "nope"], "unknown machine 'nope'"),
    (["--topology", "/no/such/file.yaml"], "/no/such/file.yaml"),
    (["--port", "70000"], "--port"),
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    r = subprocess.run([*CLI, *args], cwd=tmp_path, env=clean_env(), capture_output=True,
                       text=True, timeout=30, check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_unusable_data_dir_and_busy_port_exit_2(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    r = subprocess.run([*CLI, "--port", "0", "--data-dir", "afile/sub"], cwd=tmp_path,
                       env=clean_env(), capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2 and "FLEET_DATA_DIR" in r.stderr and "afile/sub" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        r = subprocess.run([*CLI, "--port", port, "--data-dir", "d"], cwd=tmp_path,
                           env=clean_env(), capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


@pytest.mark.asyncio
async def test_listener_gives_connections_tcp_nodelay() -> None:
    """Without TCP_NODELAY each response waited ~40 ms for a delayed ACK."""
    import asyncio

    from fleetobs.cli.hub import bind_listener

    sock = bind_listener("127.0.0.1", 0)
    nodelay: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = writer.get_extra_info("socket")
        nodelay.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_conn, sock=sock)
    async with server:
        _, w = await asyncio.open_connection(*sock.getsockname()[:2])
        await wait_async(lambda: bool(nodelay))
        w.close()
    assert nodelay and nodelay[0] != 0


async def wait_async(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


def test_bad_log_level_exits_2(tmp_path: Path) -> None:
    r = subprocess.run([*CLI, "--port", "0"], cwd=tmp_path, env=clean_env(FLEET_LOG_LEVEL="loud"),
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2 and "FLEET_LOG_LEVEL='loud'" in r.stderr
