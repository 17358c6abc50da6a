"""The sync plugin: versions this hub's agent records and syncs them with its peers.

Peers come from ``--peer`` / FLEET_PEERS / the plan's endpoint variables
(:meth:`fleetobs.settings.FleetSettings.peer_urls`), else every other machine of the
topology; each is mapped to its machine at start (hub.sync.peers). The plugin is always
on: with no peers (``FLEET_PEERS=none``) it still answers ``GET /v1/fleet`` (other machines' agents show as
``unknown``) and accepts pushes from hubs that list this one.

Local records reach the engine two ways: all of them after start (restored state),
then every change through the hub's change listeners (``Hub.listeners``). A listener
only notes the name (a set insert on the heartbeat hot path); a task hands the noted
records to the engine within ``coalesce_seconds``, 1,000 at a time. The restored
records are handed over the same way, by that task, after ``/ready``; the links to the
peers start once they are all in, so a peer's first reconcile sees the whole set.

GPU summaries: the engine sends this machine's (``Hub.gpu_summary``, set by the GPU
plugin, read at send time) and the plugin offers the peers' as ``Hub.peer_gpus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from prometheus_client.registry import Collector

from hub.plugins import HubContext, HubPlugin
from hub.registry import Record
from hub.service import Hub
from hub.sync.api import sync_router
from hub.sync.engine import UNKNOWN, SyncEngine
from hub.sync.metrics import SyncCollector
from hub.sync.peer import SyncConfig
from hub.sync.peers import resolve_peers
from hub.sync.protocol import MAX_BODY_BYTES
from hub.sync.records import AgentFacts, next_epoch
from hub.sync.transport import HttpxTransport, Transport
from hub.tasks import cancel_and_wait


def facts_of(rec: Record) -> AgentFacts:
    t = rec.timing
    return AgentFacts(
        name=rec.name, machine=rec.machine, state=str(t.state),
        status=str(t.status) if t.last_seen is not None else None,
        reason=rec.reason, source=str(rec.source) if rec.source is not None else None,
        group=rec.group, required=rec.required, kind=str(rec.kind), endpoint=rec.endpoint,
        interval_seconds=t.interval)


#: Records handed to the engine between two turns of the event loop (~5 ms of work).
HAND_OVER_STEP = 1000


class SyncPlugin:
    name = "sync"

    def __init__(self, ctx: Hub, engine: SyncEngine,
                 records: Callable[[], Iterable[Record]],
                 coalesce_seconds: float = 0.02, background: bool = True) -> None:
        self.ctx = ctx
        #: False (tests on a fake clock): no tasks; call hand_over()/scan() and step links.
        self.background = background
        self.engine = engine
        self.records = records
        self.coalesce_seconds = coalesce_seconds
        self._dirty: dict[str, Record] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._started = False
        self._stopped = False

    # --- local records -------------------------------------------------------------------
    def changed(self, rec: Record) -> None:
        """A hub listener: one local record changed (called on the event loop; cheap)."""
        self._dirty[rec.name] = rec
        self._wake.set()

    def hand_over(self, limit: int | None = None) -> int:
        """Give the engine the records noted since the last call (the ``limit`` oldest
        notes, or all); returns how many."""
        if limit is None or len(self._dirty) <= limit:
            dirty, self._dirty = self._dirty, {}
        else:
            dirty = {name: self._dirty.pop(name) for name in list(itertools.islice(self._dirty, limit))}
        for rec in dirty.values():
            self.engine.put(facts_of(rec), rec.timing.last_seen)
        return len(dirty)

    def scan(self) -> None:
        for rec in list(self.records()):
            self.engine.put(facts_of(rec), rec.timing.last_seen)

    def peer_rows(self) -> list[dict[str, Any]]:
        """Other machines' agents as ``GET /v1/agents`` rows (hub.api.models.AgentView).

        ``source`` is ``peer`` (how this hub knows); how the owner observed the agent is
        ``owner_source``. ``last_seen`` is this hub's wall clock minus the age.
        """
        wall = self.ctx.clock.wall()
        by_key = self.ctx.topology.agent_by_key
        rows: list[dict[str, Any]] = []
        for p in self.engine.peer_agents():
            f = p.facts
            agent = by_key.get((f.machine, f.name))
            elsewhere = None
            if f.kind == "foreign":
                elsewhere = next((a.machine for a in self.ctx.topology.agents if a.name == f.name), None)
            age = None if p.age_seconds is None else round(p.age_seconds, 3)
            rows.append({
                "name": f.name, "machine": f.machine, "group": f.group, "kind": f.kind,
                "expected_machine": elsewhere, "state": p.state, "last_status": f.status,
                "reason": f.reason, "source": "peer", "required": f.required,
                "probe": str(agent.probe) if agent is not None else None,
                "interval_seconds": f.interval_seconds, "age_seconds": age,
                "last_seen": None if age is None else round(wall - age, 3), "state_since": None,
                "endpoint": f.endpoint, "version": None, "pid": None, "container": None,
                "details": {}, "owner": p.owner, "last_state": p.last_state,
                "owner_source": f.source,
            })
        # With peers configured, machines whose hub was never heard from show their
        # topology agents, all unknown (without peers this hub lists only what it knows).
        heard = set(self.engine.fleet.owners) | {self.ctx.machine}
        for a in self.ctx.topology.agents if self.engine.links else ():
            if a.machine not in heard:
                rows.append({
                    "name": a.name, "machine": a.machine, "group": a.group, "kind": "expected",
                    "expected_machine": None, "state": UNKNOWN, "last_status": None, "reason": None,
                    "source": None, "required": a.required, "probe": str(a.probe),
                    "interval_seconds": a.heartbeat_interval_seconds, "age_seconds": None,
                    "last_seen": None, "state_since": None, "endpoint": None, "version": None,
                    "pid": None, "container": None, "details": {}, "owner": a.machine,
                    "last_state": None, "owner_source": None,
                })
        return rows

    def peer_gpu_rows(self) -> list[dict[str, Any]]:
        """Other machines' GPU summaries for ``GET /v1/gpus`` (hub.gpu builds the rows).

        ``summary`` is None for a GPU machine of the topology whose hub sent none (listed
        only with peers configured, as in :meth:`peer_rows`); ``fresh``: its hub is heard.
        """
        rows: list[dict[str, Any]] = [
            {"machine": p.summary.machine, "fresh": p.fresh,
             "age_seconds": None if p.age_seconds is None else round(p.age_seconds, 3),
             "summary": p.summary.model_dump()}
            for p in self.engine.peer_gpus()]
        heard = {r["machine"] for r in rows} | {self.ctx.machine}
        now = self.engine.clock()
        for m in self.ctx.topology.machines if self.engine.links else ():
            if m.name not in heard and m.gpu_memory_bytes > 0:
                rows.append({"machine": m.name, "fresh": self.engine.fleet.fresh(m.name, now),
                             "age_seconds": None, "summary": None})
        return rows

    def fleet_summary(self) -> dict[str, Any]:
        """The ``GET /v1/fleet`` body (the status page reads it too)."""
        return self.engine.summary(self.local_counts(), self.topology_counts())

    def local_counts(self) -> Counter[str]:
        return Counter(str(rec.timing.state) for rec in self.records())

    def topology_counts(self) -> dict[str, int]:
        topo = self.ctx.topology
        return {m.name: len(topo.agents_on(m.name)) for m in topo.machines}

    # --- HubPlugin -----------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        return sync_router(self.engine, self.local_counts, self.topology_counts)

    def collectors(self) -> Sequence[Collector]:
        return [SyncCollector(self.engine)]

    async def start(self) -> None:
        if self._started or self._stopped:
            return
        self._started = True
        if not self.engine.links:
            # Nobody to push to: no versioning cost on the heartbeat path. Peers that
            # push to this hub are still received, and /v1/fleet still answers.
            return
        self.ctx.listeners.append(self.changed)
        self._listening = True
        # Every record is noted as changed: the hand-over loop gives them to the engine
        # in steps after /ready (10,000 records: ~100 ms of work, not in the start-up).
        for rec in self.records():
            self._dirty[rec.name] = rec
        if not self.background:
            self.hand_over()  # no loop: the caller steps the links itself
            return
        self._task = asyncio.create_task(self._hand_over_loop(), name="sync-changes")

    async def stop(self, deadline_seconds: float) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._listening:
            with contextlib.suppress(ValueError):
                self.ctx.listeners.remove(self.changed)
        await cancel_and_wait(self._task, deadline_seconds)
        await self.engine.stop(deadline_seconds)

    async def _hand_over_loop(self) -> None:
        # The restored records first; only then do the links start: their first
        # reconcile would otherwise offer the peers a partial set as complete.
        await self._drain()
        await self.engine.start()
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.coalesce_seconds)  # a batch of heartbeats, one hand-over
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        # A 10,000-heartbeat batch notes 10,000 records: hand them over in steps, with a
        # turn of the event loop between, not in one ~100 ms block.
        while self._dirty:
            self.hand_over(HAND_OVER_STEP)
            await asyncio.sleep(0)


def sync_plugin(ctx: HubContext, *, transport: Transport | None = None,
                config: SyncConfig | None = None) -> HubPlugin | None:
    """Factory (hub/plugins.py). ``transport``/``config``: for tests and benchmarks.

    Sync needs the whole hub (its registry, store, clock and change listeners), not
    just the plugin context: on anything else (a plugin test's small context) it is off.
    """
    if not isinstance(ctx, Hub):
        return None
    settings = ctx.settings
    registry = ctx.registry
    data_dir: Path = ctx.store.path.parent
    wall = ctx.clock.wall()
    epoch = next_epoch(data_dir / f"sync-epoch-{ctx.machine}", wall)
    # Our bodies fit a peer configured like us (a smaller peer limit halves them on 413).
    limit = min(MAX_BODY_BYTES, settings.max_body_bytes)
    cfg = config or SyncConfig(stale_after_seconds=settings.sync_stale_after_seconds,
                               max_body_bytes=max(limit - 64 * 1024, 16 * 1024))
    engine = SyncEngine(
        ctx.machine, epoch, clock=ctx.now,
        transport=transport or HttpxTransport(cfg.timeout_seconds),
        peers=resolve_peers(ctx.topology, ctx.machine, settings.peer_urls()),
        token=settings.token, config=cfg,
        known_machines=[m.name for m in ctx.topology.machines], tracing=ctx.tracing)
    engine.server.max_body_bytes = limit
    plugin = SyncPlugin(ctx, engine, lambda: registry, background=ctx.config.background)
    ctx.peer_agents = plugin.peer_rows
    ctx.peer_gpus = plugin.peer_gpu_rows
    hub = ctx

    def local_gpus() -> dict[str, Any] | None:
        # Read at send time: the GPU plugin may be created after this one, or not at all.
        return hub.gpu_summary() if hub.gpu_summary is not None else None

    engine.local_gpus = local_gpus
    return plugin
