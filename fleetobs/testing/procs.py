"""Small helpers shared by the launchers of real binaries in tests and benchmarks."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1", udp_too: bool = False) -> int:
    """A port free on ``host`` a moment ago (the binaries take no port 0). ``udp_too``:
    free for UDP as well (Alertmanager's gossip listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if not udp_too:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((host, port))
            except OSError:
                continue
        return port
    raise OSError(f"no free TCP+UDP port on {host}")


#: Ports for listeners that restart on the same port (hubs, agents): below Linux's ephemeral
#: range (32768-60999), so no outgoing connection can take one while its listener is down.
RESTART_PORTS = range(22000, 32000)


def fixed_port(host: str = "127.0.0.1", taken: set[int] | None = None, span: int = 1) -> int:
    """A port of :data:`RESTART_PORTS` free on ``host`` (``span``: that many in a row free,
    e.g. 2 for an agent's health_check_port and its HTTP port +1); added to ``taken``."""
    taken = set() if taken is None else taken
    rng = random.Random()  # noqa: S311 - spreading ports, not secrets
    for _ in range(500):
        port = rng.randrange(RESTART_PORTS.start, RESTART_PORTS.stop - span)
        ports = range(port, port + span)
        if any(p in taken for p in ports):
            continue
        try:
            for p in ports:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((host, p))
        except OSError:
            continue
        taken.update(ports)
        return port
    raise OSError(f"no free port in {RESTART_PORTS} on {host}")


def http_json(url: str, timeout: float = 5.0, data: bytes | None = None,
              headers: dict[str, str] | None = None, method: str | None = None) -> Any:
    """GET (or POST ``data``) ``url`` and decode its JSON body (None when empty)."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def kill_process(proc: subprocess.Popen[bytes] | None, deadline: float = 10.0) -> None:
    """SIGKILL and reap (idempotent)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=deadline)


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check()`` until it returns something truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s (last: {last!r})")
        time.sleep(interval)
