"""A fake Docker Engine API on a real unix socket.

Serves ``GET /containers/json`` (and ``/_ping``) the way dockerd does: a JSON list of
running containers with ``Id``, ``Names`` and ``Labels``, every container with
``?all=1``, filtered by ``filters={"label": ["k=v"]}``; and ``GET /containers/<id>/json``
(inspect: :attr:`FakeDockerApi.inspects`, else made from the list entry; 404 for an
unknown id). Tests change :attr:`FakeDockerApi.containers` between requests and read
:attr:`requests`.
"""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


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


def inspect(container_id: str, service: str, project: str = "fleet", *, running: bool = True,
            restarting: bool = False, restart_count: int = 0, oom_killed: bool = False,
            started_at: str = "2026-01-01T10:00:00.123456789Z",
            finished_at: str = "0001-01-01T00:00:00Z", pid: int = 4242,
            memory_limit: int = 0) -> dict[str, Any]:
    """One ``/containers/<id>/json`` answer, the fields the exporter reads, as dockerd 20.10."""
    return {
        "Id": container_id,
        "Name": f"/{project}-{service}-1",
        "RestartCount": restart_count,
        "State": {"Status": "restarting" if restarting else "running" if running else "exited",
                  "Running": running or restarting, "Restarting": restarting,
                  "OOMKilled": oom_killed, "Dead": False, "Pid": pid if running else 0,
                  "ExitCode": 137 if oom_killed and not running else 0,
                  "StartedAt": started_at, "FinishedAt": finished_at},
        "HostConfig": {"Memory": memory_limit, "RestartPolicy": {"Name": "unless-stopped"}},
        "Config": {"Labels": {"com.docker.compose.project": project,
                              "com.docker.compose.service": service}},
    }


def _matches(entry: dict[str, Any], query: dict[str, list[str]]) -> bool:
    listed_by_default = entry.get("State", "running") in ("running", "restarting")
    if query.get("all", ["0"])[0] not in ("1", "true") and not listed_by_default:
        return False
    for f in query.get("filters", []):
        labels = entry.get("Labels") or {}
        for want in json.loads(f).get("label", []):
            key, _, value = want.partition("=")
            if key not in labels or (value and labels[key] != value):
                return False
    return True


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api: FakeDockerApi


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        path = url.path
        with api.lock:
            api.requests.append(path)
            status = api.status
            body: bytes = b"OK"
            if path == "/containers/json":
                query = parse_qs(url.query)
                listed = [c for c in api.containers if _matches(c, query)]
                body = json.dumps(listed).encode() if api.raw is None else api.raw
            elif path.startswith("/containers/") and path.endswith("/json"):
                status, body = api.inspect_answer(path.split("/")[2])
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
        self.inspects: dict[str, dict[str, Any]] = {}  # id -> inspect answer
        self.vanished: set[str] = set()  # listed, but removed before their inspect (404)
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def inspect_answer(self, container_id: str) -> tuple[int, bytes]:
        """(status, body) of an inspect; call with :attr:`lock` held."""
        if self.status != 200:
            return self.status, b'{"message":"server error"}'
        if container_id in self.inspects and container_id not in self.vanished:
            return 200, json.dumps(self.inspects[container_id]).encode()
        for c in self.containers:
            if c.get("Id") == container_id and container_id not in self.vanished:
                labels = c.get("Labels") or {}
                made = inspect(container_id, labels.get("com.docker.compose.service", "x"),
                               labels.get("com.docker.compose.project", "fleet"),
                               running=c.get("State", "running") == "running")
                made["Config"]["Labels"] = labels
                made["Name"] = (c.get("Names") or [made["Name"]])[0]
                return 200, json.dumps(made).encode()
        return 404, json.dumps({"message": f"No such container: {container_id}"}).encode()

    def set(self, *inspected: dict[str, Any]) -> None:
        """The containers are exactly these inspect answers (list entries made from them)."""
        with self.lock:
            self.inspects = {i["Id"]: i for i in inspected}
            self.containers = [{"Id": i["Id"], "Names": [i["Name"]], "State": i["State"]["Status"],
                                "Labels": i["Config"]["Labels"]} for i in inspected]

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
