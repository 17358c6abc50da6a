"""The exporter's HTTP server (stdlib, threads: small and dependency-light).

``GET /metrics``  Prometheus text or OpenMetrics (by ``Accept``), from the snapshot
``GET /v1/gpus``  the snapshot as JSON (what the hub's GPU view reads)
``GET /healthz``  200 while serving, with the snapshot's age

Anything else: 404 (unknown path) or 405 (other methods). A request never waits
on NVML: handlers only render the latest snapshot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporters.collector import Snapshot
from exporters.exposition import SnapshotCollector, gpus_json

ROUTES = ("/metrics", "/v1/gpus", "/healthz")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ExporterServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "fleetobs-gpu-exporter"
    # Headers and body go out in two writes: with Nagle on, a keep-alive client waits
    # for the delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        if url.path not in ROUTES:
            self._send(404, "application/json",
                       _json({"error": f"no such path {url.path!r}", "paths": list(ROUTES)}))
            return
        if url.query:
            self._send(400, "application/json",
                       _json({"error": f"{url.path} takes no query parameters"}))
            return
        snapshot, now = app.snapshot(), app.clock()
        if url.path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept") or "")
            self._send(200, content_type, encoder(app.registry))
        elif url.path == "/v1/gpus":
            self._send(200, "application/json", _json(gpus_json(snapshot, now)))
        else:
            self._send(200, "application/json", _json({
                "status": "ok", "nvml_up": snapshot.nvml_up,
                "snapshot_age_seconds": round(max(0.0, now - snapshot.taken_at), 3)}))

    def do_HEAD(self) -> None:
        self._not_allowed()

    def do_POST(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def _not_allowed(self) -> None:
        body = _json({"error": f"method {self.command} not allowed; use GET"})
        self.send_response(405)
        self.send_header("Allow", "GET")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The scraper gave up (its timeout on a loaded host): nothing to answer, no traceback.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would flood the log


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class ExporterServer:
    def __init__(self, snapshot: Callable[[], Snapshot], *, host: str = "127.0.0.1",
                 port: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.snapshot = snapshot
        self.clock = clock
        self.registry = CollectorRegistry()
        self.registry.register(SnapshotCollector(snapshot, clock))
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> ExporterServer:
        server = _Server((self._host, self._port), _Handler)
        server.app = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="gpu-exporter-http",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self, deadline_seconds: float = 5.0) -> None:
        """Idempotent; waits at most ``deadline_seconds`` for the serving thread."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(deadline_seconds)
            self._thread = None
