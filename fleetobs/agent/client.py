"""Heartbeats from agent code to its machine's hub, on a background thread.

Guarantees to the agent: nothing here raises into it or blocks it. Sending happens on
a daemon thread; a hub that is down only makes the thread wait longer between
attempts (exponential backoff with jitter, capped); :meth:`HeartbeatClient.close`
sends a final heartbeat and returns within its deadline whatever the hub does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from fleetobs.agent.hub_url import HubUrlError, derive_hub_url
from fleetobs.sanitize import clean_json, clean_optional

log = logging.getLogger("fleetobs.agent")

STATUSES = ("ok", "degraded", "error")


def next_delay(interval: float, failures: int, jitter: float, max_backoff: float,
               rng: random.Random) -> float:
    """Seconds until the next attempt. Healthy: the interval +/- ``jitter`` (a fraction),
    so agents started together do not beat in lockstep. After ``failures`` failed
    attempts in a row: interval * 2**(failures - 1), capped at ``max_backoff``, drawn
    from its upper half (spread, yet never shorter than half the step)."""
    if failures <= 0:
        return float(interval * (1 + rng.uniform(-jitter, jitter)))
    step = min(max_backoff, interval * 2 ** min(failures - 1, 30))
    return float(step * rng.uniform(0.5, 1.0))


class HeartbeatClient:
    """Sends ``{"agent", "status", "interval_seconds", ...}`` to ``POST /v1/heartbeats``."""

    def __init__(self, agent: str, *, hub_url: str | None = None, interval_seconds: float = 30.0,
                 environ: Mapping[str, str] | None = None, token: str | None = None,
                 version: str | None = None, container: str | None = None,
                 endpoint: str | None = None, jitter: float = 0.1,
                 timeout_seconds: float = 2.0, max_backoff_seconds: float | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not agent:
            raise ValueError("agent name is empty")
        if not 0 < interval_seconds <= 3600:
            raise ValueError(f"interval_seconds={interval_seconds}: expected (0, 3600]")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter={jitter}: expected a fraction in [0, 1)")
        env = os.environ if environ is None else environ
        self.agent = agent
        self.interval_seconds = interval_seconds
        self.jitter = jitter
        self.timeout_seconds = timeout_seconds
        self.max_backoff_seconds = max_backoff_seconds or max(60.0, interval_seconds)
        self.version, self.container, self.endpoint = version, container, endpoint
        self.hub_url: str | None
        try:
            self.hub_url = hub_url.rstrip("/") if hub_url else derive_hub_url(env)
        except HubUrlError as exc:
            # A misconfigured environment disables heartbeats; it must not stop the agent.
            log.warning("heartbeats disabled: %s", exc)
            self.hub_url = None
        token = token if token is not None else env.get("FLEET_TOKEN") or None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock
        self._lock = threading.Lock()
        self._status = "ok"
        self._reason: str | None = None
        self._details: dict[str, Any] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._final_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False
        # Counters (read by tests and by agents that want to show them).
        self.sent = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_delay_seconds: float | None = None

    # --- what the agent calls ----------------------------------------------------------
    def start(self) -> HeartbeatClient:
        """Start the background thread (no-op when disabled, started or closed)."""
        if self.hub_url is None or self._thread is not None or self._closed:
            return self
        self._thread = threading.Thread(target=self._run, name=f"fleetobs-heartbeat-{self.agent}",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def set_status(self, status: str, reason: str | None = None,
                   details: Mapping[str, Any] | None = None, send_now: bool = True) -> None:
        """Change what the next heartbeats say; ``send_now`` wakes the thread. Never raises:
        an unknown status is reported as "error" with the word in the reason."""
        if status not in STATUSES:
            reason, status = f"unknown status {status!r}" + (f": {reason}" if reason else ""), "error"
        # What the agent passes must not stop its heartbeats: a NaN or a lone surrogate
        # would make every request body unencodable (and end the sending thread).
        with self._lock:
            self._status, self._reason = status, clean_optional(reason)
            self._details = clean_json(dict(details or {}))
        if send_now:
            self._wake.set()

    def close(self, deadline_seconds: float = 2.0) -> None:
        """Stop, sending a final heartbeat, within ``deadline_seconds``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        thread = self._thread
        if thread is None:
            return
        self._final_deadline = self._clock() + max(0.0, deadline_seconds)
        self._stopping = True
        self._wake.set()
        thread.join(timeout=max(0.0, deadline_seconds))

    def __enter__(self) -> HeartbeatClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the thread ----------------------------------------------------------------------
    def payload(self, final: bool = False) -> dict[str, Any]:
        with self._lock:
            body: dict[str, Any] = {"agent": self.agent, "status": self._status,
                                    "interval_seconds": self.interval_seconds, "pid": os.getpid()}
            details = dict(self._details)
            reason = self._reason
        if final:
            details["final"] = True
        for key, value in (("reason", reason), ("version", self.version),
                           ("container", self.container), ("endpoint", self.endpoint)):
            if value is not None:
                body[key] = value
        if details:
            body["details"] = details
        return body

    def _run(self) -> None:
        assert self.hub_url is not None
        url = self.hub_url + "/v1/heartbeats"
        try:
            with httpx.Client(timeout=self.timeout_seconds, trust_env=False,
                              headers=self._headers) as client:
                while not self._stopping:
                    self._attempt(client, url, self.payload(), self.timeout_seconds)
                    delay = next_delay(self.interval_seconds, self.consecutive_failures,
                                       self.jitter, self.max_backoff_seconds, self._rng)
                    self.last_delay_seconds = delay
                    self._wake.wait(delay)
                    self._wake.clear()
                remaining = self._final_deadline - self._clock()
                if remaining > 0.01:
                    self._attempt(client, url, self.payload(final=True),
                                  min(self.timeout_seconds, remaining))
        except Exception:
            log.exception("heartbeat thread stopped")

    def _attempt(self, client: httpx.Client, url: str, body: dict[str, Any], timeout: float) -> bool:
        try:
            response = client.post(url, json=body, timeout=timeout)
            if response.status_code >= 300:
                raise httpx.HTTPStatusError(
                    f"hub answered HTTP {response.status_code}: {response.text[:200]}",
                    request=response.request, response=response)
        except httpx.HTTPError as exc:
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = " ".join(str(exc).split())[:300] or type(exc).__name__
            if self.consecutive_failures == 1:  # once per outage, not once per attempt
                log.warning("heartbeat to %s failed (retrying with backoff): %s", url, self.last_error)
            return False
        if self.consecutive_failures:
            log.info("heartbeats to %s resumed after %d failures", url, self.consecutive_failures)
        self.consecutive_failures = 0
        self.sent += 1
        return True


def send_heartbeats(hub_url: str, beats: list[dict[str, Any]] | dict[str, Any],
                    token: str | None = None, timeout_seconds: float = 2.0,
                    client: httpx.Client | None = None) -> dict[str, Any]:
    """Send one heartbeat or a batch now and return the hub's answer
    (``{"accepted": [...], "unknown": [...], "foreign": [...], "rejected": [...]}``).

    For scripts and the sidecar; raises ``httpx.HTTPError`` when it was not delivered
    (unlike :class:`HeartbeatClient`, whose callers must never see an error).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = hub_url.rstrip("/") + "/v1/heartbeats"
    if client is None:
        with httpx.Client(trust_env=False) as own:
            response = own.post(url, json=beats, headers=headers, timeout=timeout_seconds)
    else:
        response = client.post(url, json=beats, headers=headers, timeout=timeout_seconds)
    if response.status_code >= 300:
        message = response.text[:200]
        with contextlib.suppress(ValueError, AttributeError):  # not the hub's JSON problem
            message = str(response.json().get("message") or response.json().get("detail"))[:200]
        raise httpx.HTTPStatusError(f"hub answered HTTP {response.status_code}: {message}",
                                    request=response.request, response=response)
    result: dict[str, Any] = response.json()
    return result
