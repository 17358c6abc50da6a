"""Probe many agents at once: bounded concurrency, one timeout per probe.

Shared by the hub's probing plugin and the sidecar; both hand in targets already
resolved to host and port, so this module knows nothing of topologies or discovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetobs.probe.result import Outcome, ProbeResult, Protocol
from fleetobs.probe.stats import ProbeStats

if TYPE_CHECKING:
    from fleetobs.probe.http_probe import HttpProber
    from fleetobs.probe.zmq_probe import ZmqProber

log = logging.getLogger("fleetobs.probe")


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    agent: str
    machine: str
    protocol: Protocol
    host: str
    port: int  # health_check_port (zmq) or its HTTP port (http)
    group: str | None = None


ResultSink = Callable[[ProbeTarget, ProbeResult], None]


@dataclass(frozen=True, slots=True)
class CycleReport:
    targets: int
    answered: int
    duration_seconds: float


class Prober:
    """Both protocols behind one call; each protocol's client is built on first use."""

    def __init__(self, timeout_seconds: float = 2.0, concurrency: int = 32,
                 stats: ProbeStats | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.stats = stats if stats is not None else ProbeStats()
        self._clock = clock
        self._zmq: ZmqProber | None = None
        self._http: HttpProber | None = None
        self._closed = False

    async def probe(self, target: ProbeTarget) -> ProbeResult:
        try:
            if target.protocol is Protocol.ZMQ:
                zmq_prober = self._zmq_prober()
                result = await zmq_prober.probe(target.host, target.port, self.timeout_seconds)
            else:
                http_prober = self._http_prober()
                result = await http_prober.probe(target.host, target.port, self.timeout_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one odd agent must not stop a cycle
            result = ProbeResult(Outcome.UNREACHABLE, target.protocol,
                                 f"{target.host}:{target.port}",
                                 reason=f"probe failed: {type(exc).__name__}: {exc}"[:200])
        self.stats.observe_result(result)
        return result

    async def run_cycle(self, targets: Sequence[ProbeTarget], sink: ResultSink) -> CycleReport:
        """Probe every target once, at most ``concurrency`` at a time; ``sink`` gets each
        result as it arrives (answered or not)."""
        started = self._clock()
        pending = iter(targets)
        answered = 0

        async def worker() -> None:
            nonlocal answered
            for target in pending:  # the shared iterator hands each target to one worker
                result = await self.probe(target)
                if result.answered:
                    answered += 1
                try:
                    sink(target, result)
                except Exception:  # one bad record must not abort the other probes
                    log.exception("probe result of %s not recorded", target.agent)

        workers = min(self.concurrency, len(targets))
        if workers:
            async with asyncio.TaskGroup() as tg:
                for _ in range(workers):
                    tg.create_task(worker())
        duration = self._clock() - started
        self.stats.observe_cycle(duration, _count_by_protocol(targets))
        return CycleReport(len(targets), answered, duration)

    def _zmq_prober(self) -> ZmqProber:
        if self._zmq is None:
            # Imported on first use: a sidecar watching only HTTP agents never loads pyzmq.
            from fleetobs.probe.zmq_probe import ZmqProber

            self._zmq = ZmqProber(clock=self._clock)
        return self._zmq

    def _http_prober(self) -> HttpProber:
        if self._http is None:
            from fleetobs.probe.http_probe import HttpProber

            self._http = HttpProber(max_connections=self.concurrency, clock=self._clock)
        return self._http

    async def aclose(self) -> None:
        """Close sockets and connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._zmq is not None:
            self._zmq.close()
        if self._http is not None:
            await self._http.aclose()


def _count_by_protocol(targets: Iterable[ProbeTarget]) -> dict[Protocol, int]:
    counts = dict.fromkeys(Protocol, 0)
    for t in targets:
        counts[t.protocol] += 1
    return counts
