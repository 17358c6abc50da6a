"""A real Prometheus (Debian's ``prometheus``) for tests, on a free 127.0.0.1 port.

``with PrometheusProcess(config_yaml, files, workdir) as prom:`` writes the config and
its side files (rule files, ...) into ``workdir``, starts the binary with its TSDB in
``workdir``, waits for ``/-/ready``, and on exit kills it and waits for it. Locally a
missing binary skips the test; under ``CI=true`` it fails it (``require_binary``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from fleetobs.testing.binaries import require_binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


class PrometheusProcess:
    def __init__(self, config_yaml: str, files: Mapping[str, str], workdir: Path,
                 extra_args: Sequence[str] = ()) -> None:
        self.config_yaml = config_yaml
        self.files = dict(files)
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusProcess:
        binary = require_binary("prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "prometheus.yml").write_text(self.config_yaml)
        for rel, text in self.files.items():
            path = self.workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            argv = [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", *self.extra_args]
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=log, stderr=log)
            if self._wait_ready(30.0):
                return self
            self._kill()
        raise PrometheusError(f"prometheus did not become ready:\n{self.log.read_text()[-3000:]}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._kill()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=10.0)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} {dict(params or {})}: {body.get('error', r.text)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query now; ``data.result`` (a list for vectors, [] when empty)."""
        data = self._get("/api/v1/query", {"query": expr})
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def wait_for(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        """Query until the result is non-empty; raises after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"{expr!r}: still empty after {timeout} s")
            time.sleep(0.2)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets (``data.activeTargets``)."""
        return list(self._get("/api/v1/targets")["activeTargets"])
