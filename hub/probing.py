"""Probing plugin: the hub asks legacy agents how they are, over their own protocol.

The 77 real agents send no heartbeats; each answers ZeroMQ (health_check_port) or
HTTP (/health on health_check_port + 1). Every cycle this plugin probes the agents
of its machine whose topology ``probe`` is ``zmq`` or ``http`` (bounded concurrency,
a timeout per probe) and records each answer as an Observation with source
``probe``, so probes feed the same liveness model as heartbeats. No answer records
nothing: silence is judged by liveness, the outcome is counted in the metrics and
shown at ``GET /v1/probes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from loguru import logger
from prometheus_client.registry import Collector

from fleetobs.probe.collector import ProbeCollector
from fleetobs.probe.cycle import Prober, ProbeTarget
from fleetobs.probe.result import ProbeResult
from fleetobs.probe.stats import ProbeStats
from fleetobs.probe.targets import (
    MAX_DEFAULT_INTERVAL,
    auto_concurrency,
    default_interval,
    is_probed,
    probe_target,
)
from fleetobs.sanitize import clean_optional
from hub.observation import Observation, Source, Status
from hub.plugins import HubContext, HubPlugin
from hub.tasks import cancel_and_wait


@dataclass(frozen=True, slots=True)
class LastProbe:
    result: ProbeResult
    at: float  # the hub's monotonic clock (ctx.now())
    reason: str | None = None  # result.reason, cleaned (it may quote the agent's reply)


class ProbingPlugin:
    name = "probing"

    def __init__(self, ctx: HubContext, targets: Sequence[ProbeTarget], interval_seconds: float,
                 timeout_seconds: float, concurrency: int) -> None:
        self._ctx = ctx
        self.targets = tuple(targets)
        self.interval_seconds = interval_seconds
        self.stats = ProbeStats()
        # A probe outliving the cycle would pile up; cap the timeout at the interval.
        self.prober = Prober(min(timeout_seconds, interval_seconds), concurrency, self.stats)
        self.last: dict[str, LastProbe] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # --- HubPlugin ---------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        router = APIRouter(tags=["probes"])

        @router.get("/v1/probes", summary="Last probe of each probed agent (answered or not)")
        async def probes() -> dict[str, Any]:
            return self.view()

        return router

    def collectors(self) -> Sequence[Collector]:
        return [ProbeCollector(self.stats, self._ctx.machine)]

    async def start(self) -> None:
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._run(), name="hub-probing")

    async def stop(self, deadline_seconds: float) -> None:
        """Cancel the loop, close sockets; idempotent and bounded by the deadline."""
        self._stopped = True
        task, self._task = self._task, None
        await cancel_and_wait(task, deadline_seconds)
        await self.prober.aclose()

    # --- probing -----------------------------------------------------------------------
    async def probe_once(self) -> int:
        """One cycle over every target; returns how many answered."""
        with self._ctx.tracing.probe_cycle(self._ctx.machine, len(self.targets)) as span:
            report = await self.prober.run_cycle(self.targets, self._on_result)
            span.set_attribute("fleet.probe.answered", report.answered)
        return report.answered

    def _on_result(self, target: ProbeTarget, result: ProbeResult) -> None:
        # The reason may quote the agent's reply: clean it at this boundary whatever the
        # decoder did, so the API and the store can always write it.
        reason = clean_optional(result.reason)
        self.last[target.agent] = LastProbe(result, self._ctx.now(), reason)
        status = result.status
        if status is None:
            return  # silence: liveness judges it from the time since the last observation
        self._ctx.record(Observation(
            agent=target.agent, machine=target.machine, status=Status(status),
            source=Source.PROBE, interval_seconds=self.interval_seconds, reason=reason,
            endpoint=result.endpoint, latency_seconds=result.latency_seconds,
            details={"protocol": result.protocol.value, "outcome": result.outcome.value},
        ))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.probe_once()
            except Exception:  # noqa: BLE001 - one bad cycle must not end probing
                logger.exception("probe cycle failed")
            next_at += self.interval_seconds
            now = loop.time()
            if now > next_at:
                self.stats.observe_overrun()
                next_at = now  # start the next cycle now; never try to catch up in a burst
            await asyncio.sleep(next_at - now)

    def view(self) -> dict[str, Any]:
        now = self._ctx.now()
        return {
            "machine": self._ctx.machine,
            "interval_seconds": self.interval_seconds,
            "timeout_seconds": self.prober.timeout_seconds,
            "probes": [
                {"agent": t.agent, "protocol": t.protocol.value, "host": t.host, "port": t.port,
                 "outcome": last.result.outcome.value if last else None,
                 "reason": last.reason if last else None,
                 "latency_seconds": last.result.latency_seconds if last else None,
                 "age_seconds": round(now - last.at, 3) if last else None}
                for t in self.targets
                for last in [self.last.get(t.agent)]
            ],
        }


def probing_plugin(ctx: HubContext) -> HubPlugin | None:
    """The plugin, or ``None`` when probing is off or no agent of this machine is probed."""
    settings = ctx.settings
    if not settings.probe_enabled:
        return None
    agents = [a for a in ctx.topology.agents_on(ctx.machine) if is_probed(a)]
    if not agents:
        return None
    interval = settings.probe_interval_seconds or default_interval(agents)
    targets = [probe_target(a, ctx.address_of(a)) for a in agents]
    timeout = min(settings.probe_timeout_seconds, interval)
    concurrency = settings.probe_concurrency or auto_concurrency(len(targets), timeout, interval)
    return ProbingPlugin(ctx, targets, interval, timeout, concurrency)


__all__ = ["MAX_DEFAULT_INTERVAL", "ProbingPlugin", "default_interval", "probe_target", "probing_plugin"]
