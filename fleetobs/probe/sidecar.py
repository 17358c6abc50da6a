"""The sidecar: probe one container group's agents locally, push the answers to the hub.

For networks where the hub cannot reach agent ports (the group's network is its own)
but the group can reach the hub. Each cycle probes the group's agents over their real
protocol and sends one batch of heartbeats; agents that did not answer are left out,
so the hub judges their silence exactly as it would judge its own probes'.

Each heartbeat says ``source: "sidecar"`` and carries the probe's latency; the
protocol and outcome ride in ``details``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fleetobs.probe.cycle import Prober, ProbeTarget
from fleetobs.probe.result import ProbeResult

log = logging.getLogger("fleetobs.sidecar")

SOURCE = "sidecar"


@dataclass(frozen=True, slots=True)
class SidecarCycle:
    probed: int
    answered: int
    delivered: bool
    error: str | None = None


def heartbeat_of(target: ProbeTarget, result: ProbeResult, interval_seconds: float,
                 container: str | None) -> dict[str, Any]:
    """The heartbeat a sidecar sends for one answered probe."""
    beat: dict[str, Any] = {
        "agent": target.agent, "status": result.status, "interval_seconds": interval_seconds,
        "endpoint": result.endpoint, "source": SOURCE,
        "latency_seconds": round(result.latency_seconds or 0.0, 6),
        "details": {"protocol": result.protocol.value, "outcome": result.outcome.value},
    }
    if result.reason:
        beat["reason"] = result.reason[:256]
    if container:
        beat["container"] = container
    return beat


class Sidecar:
    def __init__(self, targets: Sequence[ProbeTarget], hub_url: str, interval_seconds: float,
                 timeout_seconds: float = 2.0, concurrency: int = 16, token: str | None = None,
                 container: str | None = None) -> None:
        self.targets = tuple(targets)
        self.hub_url = hub_url.rstrip("/")
        self.interval_seconds = interval_seconds
        self.container = container
        self.prober = Prober(min(timeout_seconds, interval_seconds), concurrency)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(trust_env=False, timeout=min(5.0, interval_seconds))
        self.cycles = 0
        self.delivery_failures = 0
        self._closed = False

    async def run_once(self) -> SidecarCycle:
        beats: list[dict[str, Any]] = []

        def collect(target: ProbeTarget, result: ProbeResult) -> None:
            if result.answered:
                beats.append(heartbeat_of(target, result, self.interval_seconds, self.container))

        await self.prober.run_cycle(self.targets, collect)
        self.cycles += 1
        if not beats:
            return SidecarCycle(len(self.targets), 0, True)
        try:
            response = await self._http.post(self.hub_url + "/v1/heartbeats", json=beats,
                                             headers=self._headers)
            if response.status_code >= 300:
                raise httpx.HTTPStatusError(f"hub answered HTTP {response.status_code}: "
                                            f"{response.text[:200]}",
                                            request=response.request, response=response)
        except httpx.HTTPError as exc:
            # Stale probe results are worthless later: drop them, try again next cycle.
            self.delivery_failures += 1
            error = " ".join(str(exc).split())[:300] or type(exc).__name__
            log.warning("sidecar: %d heartbeats not delivered to %s: %s", len(beats), self.hub_url,
                        error)
            return SidecarCycle(len(self.targets), len(beats), False, error)
        return SidecarCycle(len(self.targets), len(beats), True)

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every interval until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("sidecar cycle failed")
            next_at = max(next_at + self.interval_seconds, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - loop.time())

    async def aclose(self) -> None:
        """Close sockets and the HTTP client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.prober.aclose()
        await self._http.aclose()
