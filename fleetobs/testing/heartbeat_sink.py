"""A real HTTP server that takes ``POST /v1/heartbeats`` and remembers every body.

For tests of heartbeat senders (the agent client, ``fleetobs heartbeat``, the
sidecar) where the point is what was sent and when the hub was unreachable, not the
hub's judgement (tests of that run the real hub). ``mode`` switches how it answers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["accept", "fail", "hang"]


class HeartbeatSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.mode: Mode = "accept"
        self._release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if sink.mode == "hang":
                    sink._release.wait(30)
                    return
                if self.path != "/v1/heartbeats" or sink.mode == "fail":
                    self.send_response(404 if self.path != "/v1/heartbeats" else 503)
                    self.end_headers()
                    return
                body = json.loads(raw)
                sink.bodies.append(body)
                sink.headers.append(dict(self.headers))
                names = [b["agent"] for b in (body if isinstance(body, list) else [body])]
                out = json.dumps({"accepted": names, "unknown": [], "foreign": [],
                                  "rejected": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read bodies, not logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HeartbeatSink:
        self._thread.start()
        return self

    def beats(self) -> list[dict[str, Any]]:
        """Every heartbeat received, batches flattened."""
        out: list[dict[str, Any]] = []
        for b in list(self.bodies):
            out.extend(b if isinstance(b, list) else [b])
        return out

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HeartbeatSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
