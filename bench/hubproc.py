"""Helpers shared by the hub benchmarks: run ``fleetobs hub`` from a chosen source tree.

``--src DIR`` lets a benchmark run the hub of another checkout (e.g. the code before a
change, unpacked with ``git archive <commit> | tar -x -C /tmp/before``) under the same
interpreter: ``PYTHONPATH=DIR`` and ``cwd=DIR`` make ``python -m fleetobs.cli.main``
import that tree instead of this one. Not a test helper: only bench/ imports it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def bench_topology(n: int, path: Path) -> None:
    """N push agents on mainpc in 20 groups (the shape bench/hub_heartbeats.py uses)."""
    groups = [{"name": f"group{g:02d}", "machine": "mainpc"} for g in range(20)]
    agents = [{"name": f"agent{i:05d}", "machine": "mainpc", "group": f"group{i % 20:02d}",
               "port": 10000 + i, "health_check_port": 30000 + i, "probe": "push",
               "heartbeat_interval_seconds": 30} for i in range(n)]
    doc = {"version": 1,
           "machines": [{"name": "mainpc", "hub_port": 9000, "address": "mainpc"},
                        {"name": "pc2", "hub_port": 9100, "address": "pc2"}],
           "groups": groups, "agents": agents}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(src: Path | None) -> dict[str, str]:
    """The bench hub's environment; ``src``: the source tree to run (None: the installed one)."""
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes) would make every start compile the
    # hub again; a user's Python caches the bytecode (and a wheel install ships it).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLEET_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"FLEET_PROBE_ENABLED": "false", "FLEET_LOG_LEVEL": "WARNING",
                "FLEET_MAX_BODY_BYTES": str(8 * 1024 * 1024)})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def hub_argv(python: str, port: int, topology: Path | None, data_dir: Path) -> list[str]:
    argv = [python, "-m", "fleetobs.cli.main", "hub", "--port", str(port),
            "--data-dir", str(data_dir)]
    return [*argv, "--topology", str(topology)] if topology else argv


@contextmanager
def hub_process(python: str, src: Path, port: int, topology: Path | None, data_dir: Path,
                ) -> Iterator[subprocess.Popen[bytes]]:
    """``fleetobs hub`` of ``src``, stopped with SIGTERM (then SIGKILL) on exit."""
    proc = subprocess.Popen(hub_argv(python, port, topology, data_dir), cwd=src,
                            env=hub_env(src), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(host: str, port: int, path: str, timeout: float = 60.0) -> float:
    """Seconds until ``path`` answers 200 (polled every 5 ms)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64)[9:12] == b"200":
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{host}:{port}{path} not ready after {timeout}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(method: str, host: str, port: int, path: str, body: bytes = b"",
            content_type: str = "application/json") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response: Content-Length or chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if m:
        body = await reader.readexactly(int(m.group(1)))
    elif re.search(rb"(?i)transfer-encoding:\s*chunked", head):
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = b""
    return status, body


def metric_value(text: str, name: str) -> float:
    """Sum of every sample of ``name`` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else float("nan")
