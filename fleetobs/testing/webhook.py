"""A webhook receiver for Alertmanager: a real HTTP server on loopback that records
every notification it is posted, with helpers to wait for one.

The body is Alertmanager's webhook payload (version 4): ``status`` (firing or
resolved), ``receiver``, ``groupKey``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL`` (which node sent it) and ``alerts`` (each
with ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``,
``fingerprint``). Anything that is not JSON gets 400 and is kept in ``rejected``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One POST from Alertmanager."""

    at: float  # time.monotonic() when it arrived
    wall: float  # time.time() when it arrived
    path: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body.get("status"))

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return list(self.body.get("alerts") or [])

    @property
    def alertnames(self) -> set[str]:
        return {str(a["labels"].get("alertname")) for a in self.alerts}

    @property
    def sender(self) -> str:
        return str(self.body.get("externalURL"))

    def matches(self, alertname: str | None = None, status: str | None = None, **labels: str) -> bool:
        """Some alert of it has this name, status and labels (``status`` is the alert's)."""
        return any(_alert_matches(a, alertname, status, labels) for a in self.alerts)


def _alert_matches(alert: dict[str, Any], alertname: str | None, status: str | None,
                   labels: dict[str, str]) -> bool:
    got = alert.get("labels") or {}
    if alertname is not None and got.get("alertname") != alertname:
        return False
    if status is not None and alert.get("status") != status:
        return False
    return all(got.get(k) == v for k, v in labels.items())


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/alerts") -> None:
        self.path = path
        self._lock = threading.Condition()
        self._got: list[Notification] = []
        self.rejected: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                except ValueError:
                    with receiver._lock:
                        receiver.rejected.append(raw)
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver._add(Notification(time.monotonic(), time.time(), self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # tests read notifications, not access logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"webhook:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The ``webhook_configs[].url`` to give Alertmanager."""
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        """Another path on this receiver (every path records; ``Notification.path`` tells)."""
        return f"http://{self.host}:{self.port}{path}"

    def _add(self, n: Notification) -> None:
        with self._lock:
            self._got.append(n)
            self._lock.notify_all()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        """Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what arrived ----------------------------------------------------------------
    def mark(self) -> int:
        """A position to read from later (``since=``): what arrives after now."""
        with self._lock:
            return len(self._got)

    def notifications(self, since: int = 0, path: str | None = None) -> list[Notification]:
        """What arrived (from position ``since``), only to ``path`` when given."""
        with self._lock:
            return [n for n in self._got[since:] if path is None or n.path == path]

    def matching(self, alertname: str | None = None, status: str | None = None, since: int = 0,
                 **labels: str) -> list[Notification]:
        return [n for n in self.notifications(since) if n.matches(alertname, status, **labels)]

    def wait(self, check: Callable[[list[Notification]], bool], timeout: float, since: int = 0) -> list[Notification]:
        """Block until ``check(notifications since)`` is true; returns those notifications.
        TimeoutError (listing what did arrive) after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = list(self._got[since:])
                if check(got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no such notification within {timeout:g} s; got: {describe(got)}")
                self._lock.wait(left)

    def wait_for(self, alertname: str, status: str = "firing", timeout: float = 30.0, since: int = 0,
                 **labels: str) -> Notification:
        """The first notification (since ``since``) carrying such an alert."""
        got = self.wait(lambda ns: any(n.matches(alertname, status, **labels) for n in ns), timeout, since)
        return next(n for n in got if n.matches(alertname, status, **labels))

    def quiet(self, seconds: float, since: int | None = None) -> list[Notification]:
        """Wait ``seconds``; returns what arrived meanwhile (from ``since``, default now)."""
        start = self.mark() if since is None else since
        time.sleep(seconds)
        return self.notifications(start)


def describe(notifications: list[Notification]) -> str:
    """One line per notification: status, sender and its alerts' names and key labels."""
    lines = []
    for n in notifications:
        alerts = ", ".join(
            f"{a['labels'].get('alertname')}[{a.get('status')}]"
            + "{" + ",".join(f"{k}={a['labels'][k]}" for k in ("machine", "group", "agent", "peer")
                             if k in a["labels"]) + "}"
            for a in n.alerts)
        lines.append(f"{n.status} from {n.sender}: {alerts}")
    return "\n  " + "\n  ".join(lines) if lines else "nothing"
