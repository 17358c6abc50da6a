"""Where the demo's Alertmanagers send pages and tickets: a webhook on loopback.

A real deployment points the ``page`` and ``ticket`` receivers at PagerDuty, Slack or
e-mail (docs/alerting.md); the demo has none of those, so this receiver keeps what
Alertmanager posts (its webhook payload, version 4), counts it by receiver and appends
every notification to ``<work>/notifications.jsonl``, where a newcomer can read exactly
what an operator would have been sent. Junk gets 400 and is not kept.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The path every receiver of the demo's alertmanager.yml posts to.
PATH = "/fleetobs/notify"
#: The largest body kept (Alertmanager's webhook payloads are a few KiB per group).
MAX_BODY = 1 << 20


@dataclass
class Received:
    """What arrived so far: counts by receiver (``page``, ``ticket``, ...) and the last one."""

    counts: Counter[str] = field(default_factory=Counter)
    last: str = ""


def describe(body: dict[str, Any]) -> str:
    """One line for a notification: receiver, status and the alerts' names and targets."""
    alerts = body.get("alerts") or []
    names = []
    for a in alerts[:3]:
        labels = a.get("labels") or {}
        where = "/".join(str(labels[k]) for k in ("machine", "group", "agent") if labels.get(k))
        names.append(f"{labels.get('alertname', '?')} {where}".strip())
    more = f" (+{len(alerts) - 3})" if len(alerts) > 3 else ""
    return f"{body.get('receiver', '?')} {body.get('status', '?')}: {', '.join(names)}{more}"


class NotificationReceiver:
    """``with NotificationReceiver(host, port, log) as r: r.url``; port 0 picks a free one."""

    def __init__(self, host: str, port: int, log: Path) -> None:
        self.log = log
        self.received = Received()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                if self.path != PATH or not 0 < size <= MAX_BODY:
                    self._answer(404 if self.path != PATH else 400)
                    return
                try:
                    body = json.loads(self.rfile.read(size))
                except (ValueError, UnicodeDecodeError):
                    self._answer(400)
                    return
                if not isinstance(body, dict):
                    self._answer(400)
                    return
                receiver.record(body)
                self._answer(200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo has a live view
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def record(self, body: dict[str, Any]) -> None:
        line = json.dumps(body, sort_keys=True)
        with self._lock:
            self.received.counts[str(body.get("receiver", "?"))] += 1
            self.received.last = describe(body)
            with self.log.open("a", encoding="utf-8") as f:
                f.write(line + "\n")

    def snapshot(self) -> Received:
        with self._lock:
            return Received(Counter(self.received.counts), self.received.last)

    def start(self) -> NotificationReceiver:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="demo-notifications")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Idempotent; returns within the poll interval."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(2)
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> NotificationReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
