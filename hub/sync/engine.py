"""Everything sync of one hub: its own records, its peers' records, links and server.

The hub core feeds :meth:`SyncEngine.put` with its own agents' facts; the engine
versions them, pushes them to every peer and answers peers' requests through
:attr:`SyncEngine.server`. Readers (the API) get peers' agents from
:meth:`SyncEngine.peer_agents`: a peer that has gone silent for ``stale_after``
seconds has its agents shown as ``unknown`` with their last state and its age.
Only the owner judges ``down``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pydantic import ValidationError

from fleetobs.tracing import DISABLED as TRACING_DISABLED
from fleetobs.tracing import Tracing
from hub.sync.gpus import GpuViews
from hub.sync.merge import FleetView
from hub.sync.peer import PeerLink, SyncConfig
from hub.sync.peers import Peer
from hub.sync.protocol import GpuSummary, HubIdentity
from hub.sync.records import AgentFacts, OwnedRecords
from hub.sync.server import SyncServer
from hub.sync.transport import Transport
from hub.tasks import cancel_and_wait

#: Shown instead of the owner's judgement while the owner cannot be heard.
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PeerAgent:
    """One agent of another machine as this hub sees it now."""

    facts: AgentFacts
    owner: str
    #: The owner's judgement, or ``unknown`` while the owner is stale.
    state: str
    #: The owner's last judgement (same as ``state`` while fresh).
    last_state: str
    #: Seconds since the owner last observed the agent (None: never observed).
    age_seconds: float | None
    fresh: bool


@dataclass(frozen=True, slots=True)
class PeerGpus:
    """Another machine's GPU summary as this hub holds it now."""

    summary: GpuSummary
    #: The owner's hub was heard within ``stale_after`` (else the summary is last known).
    fresh: bool
    #: Seconds since the owner read its exporter (None: it had no reading).
    age_seconds: float | None


class SyncEngine:
    def __init__(self, machine: str, epoch: int, *, clock: Callable[[], float],
                 transport: Transport, peers: Sequence[Peer] = (), token: str | None = None,
                 config: SyncConfig | None = None,
                 known_machines: Iterable[str] | None = None,
                 tracing: Tracing = TRACING_DISABLED) -> None:
        self.machine = machine
        self.epoch = epoch
        self.clock = clock
        self.config = config or SyncConfig()
        self.transport = transport
        self.owned = OwnedRecords(machine, epoch)
        self.fleet = FleetView(machine, self.config.stale_after_seconds, known_machines)
        self.gpus = GpuViews(machine)
        #: This machine's GPU summary as plain data (the GPU plugin's, through the hub).
        self.local_gpus: Callable[[], dict[str, Any] | None] = lambda: None
        self._gpus_invalid: str | None = None
        self.server = SyncServer(self.fleet, self.identity, clock, token,
                                 on_restart=self._peer_restarted, gpus=self.gpus)
        # One link per peer machine; its machine is known from configuration (hub.sync.peers).
        first: dict[str, Peer] = {}
        for p in peers:
            first.setdefault(p.machine, p)
        self.links = [PeerLink(p.url, self.owned, self.identity, transport, clock, self.config, token,
                               tracing=tracing, gpus=self.gpu_summary, machine=p.machine)
                      for p in first.values()]
        self._wake = [asyncio.Event() for _ in self.links]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    def identity(self) -> HubIdentity:
        return HubIdentity(machine=self.machine, epoch=self.epoch)

    # --- the owner's side ------------------------------------------------------------
    def put(self, facts: AgentFacts, observed_at: float | None) -> None:
        """A new fact or observation of one of this hub's agents (call on the loop)."""
        if self.owned.put(facts, observed_at):
            for ev in self._wake:
                ev.set()

    def gpu_summary(self) -> GpuSummary | None:
        """This machine's GPU summary as sent to peers (None: none, or it is invalid)."""
        try:
            data = self.local_gpus()
            return None if data is None else GpuSummary.model_validate(data)
        except (ValidationError, ValueError, TypeError) as exc:
            # Never send what a peer would refuse (a 422 stops our records too).
            if str(exc) != self._gpus_invalid:
                logger.warning("GPU summary not sent: {}", str(exc).splitlines()[0][:200])
                self._gpus_invalid = str(exc)
            return None

    def _peer_restarted(self, machine: str) -> None:
        """A peer restarted and lost what we sent: refill it now, not at the next push."""
        for link, ev in zip(self.links, self._wake, strict=True):
            if link.machine == machine:
                link.needs_full = True
                ev.set()

    # --- what peers told us ----------------------------------------------------------
    def peer_up(self, link: PeerLink) -> bool:
        """Both directions work: our last exchange succeeded and the peer is heard."""
        now = self.clock()
        return (link.ok and now - link.last_ok <= self.config.stale_after_seconds
                and self.fleet.fresh(link.machine, now))

    def peer_agents(self) -> list[PeerAgent]:
        now = self.clock()
        out: list[PeerAgent] = []
        for machine, view in sorted(self.fleet.owners.items()):
            fresh = self.fleet.fresh(machine, now)
            for name in sorted(view.records):
                held = view.records[name]
                f = held.record.facts
                out.append(PeerAgent(
                    facts=f, owner=held.record.owner, state=f.state if fresh else UNKNOWN,
                    last_state=f.state, fresh=fresh,
                    age_seconds=None if held.seen_at is None else max(now - held.seen_at, 0.0)))
        return out

    def peer_gpus(self) -> list[PeerGpus]:
        now = self.clock()
        return [PeerGpus(held.summary, self.fleet.fresh(machine, now),
                         None if held.seen_at is None else max(now - held.seen_at, 0.0))
                for machine, held in sorted(self.gpus.held.items())]

    def summary(self, local_counts: Counter[str], topology_counts: dict[str, int]) -> dict[str, Any]:
        """The global view per machine (``GET /v1/fleet``).

        ``topology_counts``: agents the topology places on each machine, so a machine
        never heard from still shows its agents, all ``unknown``.
        """
        now = self.clock()
        machines: list[dict[str, Any]] = [{
            "machine": self.machine, "local": True, "fresh": True, "data_age_seconds": 0.0,
            "epoch": self.epoch, "synced": True, "agents": sum(local_counts.values()),
            "counts": dict(sorted(local_counts.items())),
        }]
        for machine in sorted(set(self.fleet.owners) | set(topology_counts) - {self.machine}):
            view = self.fleet.owners.get(machine)
            if view is None:
                n = topology_counts.get(machine, 0)
                machines.append({"machine": machine, "local": False, "fresh": False,
                                 "data_age_seconds": None, "epoch": None, "synced": False,
                                 "agents": n, "counts": {UNKNOWN: n} if n else {}})
                continue
            fresh = self.fleet.fresh(machine, now)
            counts = Counter(h.record.facts.state if fresh else UNKNOWN
                             for h in view.records.values())
            machines.append({"machine": machine, "local": False, "fresh": fresh,
                             "data_age_seconds": round(now - view.last_heard, 3),
                             "epoch": view.epoch, "synced": view.synced,
                             "agents": len(view.records), "counts": dict(sorted(counts.items()))})
        peers = [{"url": link.url, "peer": link.label, "machine": link.machine,
                  "answered": link.peer is not None,
                  "up": self.peer_up(link), "last_error": link.last_error,
                  "last_success_age_seconds": (round(now - link.last_ok, 3)
                                               if link.last_ok > float("-inf") else None)}
                 for link in self.links]
        return {"machine": self.machine, "epoch": self.epoch, "machines": machines, "peers": peers}

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks or self._stopped:
            return
        self._tasks = [asyncio.create_task(self._run(link, ev), name=f"sync-{link.netloc}")
                       for link, ev in zip(self.links, self._wake, strict=True)]

    async def stop(self, deadline_seconds: float = 5.0) -> None:
        """Cancel the links and close the transport; idempotent, bounded."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:  # all cancelled above: they wind down together
            await cancel_and_wait(task, deadline_seconds)
        self._tasks = []
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.transport.aclose(), timeout=deadline_seconds)

    async def _run(self, link: PeerLink, wake: asyncio.Event) -> None:
        while True:
            delay = link.delay()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            try:
                if await link.step() is None and link.delay() <= 0:
                    await asyncio.sleep(0.01)  # never spin, whatever the float edges
            except Exception:  # noqa: BLE001 - one bad exchange must not end syncing
                logger.exception("sync step to {} failed", link.url)
                await asyncio.sleep(self.config.backoff_initial_seconds)
