"""A fake Docker Engine API on a real unix socket.

Serves ``GET /containers/json`` (and ``/_ping``) the way dockerd does: a JSON list of
running containers with ``Id``, ``Names`` and ``Labels``. Tests change
:attr:`FakeDockerApi.containers` between requests and read :attr:`requests`.
"""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


def compose_container(container_id: str, service: str, project: str = "fleet") -> dict[str, Any]:
    """One ``/containers/json`` entry as compose v2 labels it."""
    return {
        "Id": container_id,
        "Names": [f"/{project}-{service}-1"],
        "Image": f"{project}-{service}",
        "State": "running",
        "Labels": {
            "com.docker.compose.project": project,
            "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1",
        },
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api: FakeDockerApi


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        api = self.server.api
        path = urlsplit(self.path).path
        with api.lock:
            api.requests.append(path)
            status = api.status
            body: bytes = b"OK"
            if path == "/containers/json":
                body = json.dumps(api.containers).encode() if api.raw is None else api.raw
            elif path != "/_ping":
                status, body = 404, b'{"message":"page not found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Api-Version", "1.43")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class FakeDockerApi:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.containers: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.status = 200
        self.raw: bytes | None = None  # a body to send instead of the containers
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeDockerApi:
        server = _Server(str(self.socket_path), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-docker",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> FakeDockerApi:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
