"""A real VictoriaMetrics (Debian's ``victoria-metrics``) as a ``remote_write`` receiver.

It hides the newest 30 s of samples from queries by default
(``-search.latencyOffset``); tests start it with a small offset so what Prometheus
just wrote can be read back through its Prometheus-compatible query API.
"""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetobs.testing.binaries import require_binary
from fleetobs.testing.procs import free_port, http_json, http_ok, kill_process


class VictoriaMetricsProcess:
    def __init__(self, workdir: Path, *, latency_offset: str = "1s", extra_args: Sequence[str] = ()) -> None:
        self.workdir = Path(workdir)
        self.latency_offset = latency_offset
        self.extra_args = list(extra_args)
        self.port = free_port()  # known before start: a Prometheus config names it
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "victoria-metrics.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        """Prometheus ``remote_write`` endpoint."""
        return f"{self.url}/api/v1/write"

    def start(self, timeout: float = 30.0) -> VictoriaMetricsProcess:
        binary = require_binary("victoria-metrics")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.workdir / 'data'}",
                f"-search.latencyOffset={self.latency_offset}",
                # the response cache would serve an empty answer cached a moment ago
                "-search.disableCache", "-loggerLevel=WARN", *self.extra_args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if http_ok(f"{self.url}/health"):
                return self
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"victoria-metrics did not start:\n{tail}")

    def stop(self) -> None:
        kill_process(self.proc)

    def __enter__(self) -> VictoriaMetricsProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query through the Prometheus-compatible API; ``data.result``."""
        body = http_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body.get("status") != "success":
            raise RuntimeError(f"victoria-metrics query {expr!r}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def series_count(self, match: str) -> int:
        body = http_json(f"{self.url}/api/v1/series?" + urllib.parse.urlencode({"match[]": match}))
        return len(body.get("data") or [])
