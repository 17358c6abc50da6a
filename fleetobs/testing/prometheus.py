"""A real Prometheus (Debian's ``prometheus``) for tests, on a free 127.0.0.1 port.

``with PrometheusProcess(config_yaml, files, workdir) as prom:`` writes the config
and ``files`` (rule files, ...) into ``workdir``, starts Prometheus with its TSDB in
``workdir``, waits for ``/-/ready`` and, on exit, kills it and waits for it. The
config's relative paths (``rule_files``) resolve against ``workdir``. A config that
scrapes Prometheus itself needs the port first: pass
``extra_args=["--web.listen-address=127.0.0.1:PORT"]`` (``procs.free_port()``).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetobs.testing.binaries import require_binary
from fleetobs.testing.procs import free_port, http_json, http_ok, kill_process


class PrometheusError(RuntimeError):
    """Prometheus refused a query (its error text), or never answered as asked."""


class PrometheusTimeoutError(PrometheusError, TimeoutError):
    """:meth:`PrometheusProcess.wait_for` ran out of time."""


class PrometheusProcess:
    def __init__(self, config_yaml: str, files: dict[str, str], workdir: Path,
                 extra_args: Sequence[str] = ()) -> None:
        self.config_yaml = config_yaml
        self.files = dict(files)
        self.workdir = Path(workdir)
        self.extra_args = list(extra_args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusProcess:
        binary = require_binary("prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for rel, text in self.files.items():
            path = self.workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        config = self.workdir / "prometheus.yml"
        config.write_text(self.config_yaml, encoding="utf-8")
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                "--web.enable-lifecycle"]
        given = [a for a in self.extra_args if a.startswith("--web.listen-address=")]
        if given:  # the caller chose the port (a config that scrapes Prometheus itself)
            self.port = int(given[-1].rsplit(":", 1)[1])
        else:
            self.port = free_port()
            argv.append(f"--web.listen-address=127.0.0.1:{self.port}")
        argv += self.extra_args
        with self.log.open("ab") as log:
            # cwd: rule_files given relative resolve against the config's folder anyway
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if http_ok(f"{self.url}/-/ready"):
                return self
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"prometheus did not become ready:\n{tail}")

    def stop(self) -> None:
        kill_process(self.proc)

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP API --------------------------------------------------------------------
    def _api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            body = http_json(f"{self.url}{path}" + (f"?{query}" if query else ""))
        except urllib.error.HTTPError as exc:  # 400/422: the body says why
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {"error": str(exc)}
        if body.get("status") != "success":
            raise PrometheusError(f"prometheus {path}: {body.get('errorType', '')} {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; ``data.result``."""
        data = self._api("/api/v1/query", query=expr)
        if data.get("resultType") in ("scalar", "string"):  # one [time, value] pair
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        """``query(expr)`` until it is non-empty; raises TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusTimeoutError(f"{expr!r} still empty after {timeout} s")
            time.sleep(0.2)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets."""
        data = self._api("/api/v1/targets", state="active")
        active: list[dict[str, Any]] = data["activeTargets"]
        return active
