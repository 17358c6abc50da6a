"""The Hub: one machine's registry, liveness judge, store and plugins, wired together.

It is the :class:`hub.plugins.HubContext` plugins receive. Background work (judge
loop, write-behind flush, plugins) runs between :meth:`Hub.start` and :meth:`Hub.stop`;
both run on the event loop, ``stop`` is idempotent and bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client.registry import CollectorRegistry

from fleetobs.settings import FleetSettings
from fleetobs.topology.model import Agent, Topology
from fleetobs.tracing import DISABLED as TRACING_DISABLED
from fleetobs.tracing import Tracing
from hub.clock import Clock, SystemClock
from hub.discovery import address_of
from hub.liveness import LivenessPolicy, StallGuard, State
from hub.metrics import HubCollector, HubCounters
from hub.observation import Observation, Source
from hub.plugins import HubPlugin
from hub.registry import HUB_AGENT, Outcome, Record, Registry
from hub.runtime import OpenFiles, freeze_after_start
from hub.store import Row, Store, StoreError, WriteReport, row_of
from hub.tasks import cancel_and_wait

#: Rows built on the event loop between two yields during a flush.
ROW_CHUNK = 2000
#: Records judged between two yields in the background judge loop.
JUDGE_CHUNK = 2500


@dataclass(frozen=True)
class HubConfig:
    """Tunables (defaults are what production runs; tests shorten nothing but the clock)."""

    policy: LivenessPolicy = field(default_factory=LivenessPolicy)
    tick_seconds: float = 1.0
    #: Judge-loop lateness beyond a tick that counts as a hub stall (pause guard).
    stall_threshold_seconds: float = 2.0
    #: Write-behind period: the bound on what a kill -9 can lose.
    flush_seconds: float = 1.0
    #: After start, unseen agents are ``missing`` but alerting may wait this long.
    startup_grace_seconds: float = 30.0
    max_unknown_agents: int = 10_000
    max_batch: int = 10_000
    max_details_bytes: int = 4096
    stop_deadline_seconds: float = 5.0
    #: Run the judge and flush loops (False: tests call tick()/flush() themselves).
    background: bool = True
    #: Freeze the garbage collector's view of start-up objects (hub.runtime); process-wide,
    #: so only the ``fleetobs hub`` command turns it on.
    freeze_gc: bool = False
    #: Freeze this long after start (0: at the first turn of the loop after /ready).
    freeze_gc_after_seconds: float = 0.0
    #: Seconds between checks of the open files in use (hub.runtime.OpenFiles).
    open_files_check_seconds: float = 5.0


class Hub:
    """The hub core of one machine."""

    def __init__(self, topology: Topology, machine: str, settings: FleetSettings,
                 data_dir: Path, *, clock: Clock | None = None,
                 config: HubConfig | None = None, tracing: Tracing | None = None) -> None:
        self._topology = topology
        self._machine = machine
        self._settings = settings
        self.clock: Clock = clock or SystemClock()
        self._tracing = tracing or TRACING_DISABLED
        self.config = config or HubConfig()
        self.registry = Registry(topology, machine, self.config.policy,
                                 max_unknown=self.config.max_unknown_agents)
        self.store = Store(data_dir, machine, wall=self.clock.wall)
        self.guard = StallGuard(self.config.tick_seconds, self.config.stall_threshold_seconds)
        self.counters = HubCounters()
        self.open_files = OpenFiles(idle_timeout_seconds=settings.http_idle_timeout_seconds,
                                    closed_idle=lambda: self.counters.timeouts["head"])
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        self.start_mono = self.clock.monotonic()
        self.start_wall = self.clock.wall()
        self.metrics_registry.register(HubCollector(
            machine, self.counters, self.guard,
            unknown_agents=lambda: self.registry.unknown_count,
            pending_writes=self._pending_writes,
            in_startup_grace=self.in_startup_grace, start_wall=self.start_wall,
            open_files=self.open_files))
        #: Flush failure kinds already logged in the current run of failures (logged once each).
        self._flush_logged: set[str] = set()
        #: Names of the flush in progress: still pending until the transaction commits.
        self._writing: frozenset[str] = frozenset()
        self._flush_failed_since_ok = 0
        self.plugins: list[HubPlugin] = []
        #: Called with a record after every accepted observation and every state change
        #: (on the event loop; keep them O(1): sync notes the name and returns).
        self.listeners: list[Callable[[Record], None]] = []
        #: Other machines' agents as ``GET /v1/agents`` rows (set by the sync plugin).
        self.peer_agents: Callable[[], list[dict[str, Any]]] | None = None
        #: This machine's GPU summary for peers (set by the GPU plugin; sync sends it).
        self.gpu_summary: Callable[[], dict[str, Any] | None] | None = None
        #: Other machines' GPU summaries as sync holds them (set by the sync plugin).
        self.peer_gpus: Callable[[], list[dict[str, Any]]] | None = None
        self.ready = False
        self._self_agent = topology.agent_by_key.get((machine, HUB_AGENT))
        self._tasks: list[asyncio.Task[None]] = []
        self._freeze: asyncio.TimerHandle | None = None
        self._started = False
        self._stopped = False

    # --- HubContext --------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def machine(self) -> str:
        return self._machine

    @property
    def settings(self) -> FleetSettings:
        return self._settings

    @property
    def tracing(self) -> Tracing:
        return self._tracing

    def now(self) -> float:
        return self.clock.monotonic()

    def record(self, obs: Observation) -> None:
        self.observe(obs)

    def address_of(self, agent: Agent) -> str:
        return address_of(agent, self._topology, self._machine, self._settings.discovery_mode)

    # --- core --------------------------------------------------------------------------
    def observe(self, obs: Observation) -> tuple[Outcome, Record | None]:
        """Record one observation; counts it as received or rejected (by reason)."""
        return self.observe_many((obs,))[0]

    def observe_many(self, batch: Sequence[Observation]) -> list[tuple[Outcome, Record | None]]:
        """Record a batch at one instant (one clock read: batches are the fast path)."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        record = self.registry.record
        received, rejected = self.counters.received, self.counters.rejected
        out: list[tuple[Outcome, Record | None]] = []
        for obs in batch:
            outcome, rec = record(obs, now, wall)
            if outcome is Outcome.ACCEPTED:
                received[obs.source] += 1
                if self.listeners and rec is not None:
                    self._notify(rec)
            else:
                rejected[outcome] += 1
            out.append((outcome, rec))
        return out

    def _notify(self, rec: Record) -> None:
        for listener in self.listeners:
            try:
                listener(rec)
            except Exception:  # noqa: BLE001 - a plugin's bug must not fail a heartbeat
                logger.exception("hub listener {!r} failed", listener)

    def in_startup_grace(self) -> bool:
        return self.clock.monotonic() - self.start_mono < self.config.startup_grace_seconds

    def tick(self) -> list[tuple[Record, object]]:
        """One judge pass: the hub reports itself alive, then every agent is judged."""
        self._observe_self()
        changed = self.registry.tick(self.guard, self.clock.monotonic(), self.clock.wall())
        self._report(changed)
        return list(changed)

    async def tick_in_steps(self) -> list[tuple[Record, object]]:
        """:meth:`tick` in steps of :data:`JUDGE_CHUNK` records with a turn of the event
        loop between (the background judge loop: ~10 ms at 10,000 agents, every second)."""
        self._observe_self()
        now, wall = self.clock.monotonic(), self.clock.wall()
        stall = self.guard.check(now)
        records = self.registry.snapshot()
        limits: dict[float, tuple[float, float]] = {}
        changed: list[tuple[Record, State]] = []
        for start in range(0, len(records), JUDGE_CHUNK):
            if start:
                await asyncio.sleep(0)
            changed += self.registry.judge_records(records[start:start + JUDGE_CHUNK], now, wall,
                                                   stall, limits)
        self._report(changed)
        return list(changed)

    def _observe_self(self) -> None:
        if self._self_agent is not None:
            self.observe(Observation(agent=HUB_AGENT, machine=self._machine, source=Source.SELF,
                                     interval_seconds=self._self_agent.heartbeat_interval_seconds))

    def _report(self, changed: Sequence[tuple[Record, State]]) -> None:
        for rec, before in changed:
            logger.info("agent {} {} -> {}", rec.name, before, rec.state)
            if self.listeners:
                self._notify(rec)

    async def flush(self) -> int:
        """Write changed records to SQLite in a worker thread; returns how many.

        Never raises (but cancellation): a failure is counted by reason
        (``fleet_hub_store_flush_failures_total``), logged once per kind until a flush
        succeeds again, and its records are retried by the next flush.
        """
        if not self.registry.dirty:
            return 0
        names, self.registry.dirty = self.registry.dirty, set()
        self._writing = frozenset(names)
        try:
            rows: list[Row] = []
            get = self.registry.get
            for i, name in enumerate(names, 1):
                if (rec := get(name)) is not None:
                    rows.append(row_of(rec))
                if i % ROW_CHUNK == 0:
                    # 10,000 new rows are ~30 ms of work: let requests in between (a
                    # record changed meanwhile is dirty again and written next time).
                    await asyncio.sleep(0)
            report: WriteReport = await asyncio.to_thread(self.store.write, rows)
        except StoreError as exc:
            self._requeue(names)
            self._flush_failed(exc.reason, str(exc))
            if exc.reason == "damaged":
                await self._recover_store(str(exc))
            return 0
        except asyncio.CancelledError:
            self._requeue(names)  # a later flush (or none, at exit) gets them
            raise
        except Exception as exc:  # noqa: BLE001 - persistence must outlive any bug
            self._requeue(names)
            self._flush_failed("other", f"{type(exc).__name__}: {exc}")
            return 0
        self._writing = frozenset()
        if report.skipped:
            # Retried when the record changes again; the rest of the flush is saved.
            name, why = report.skipped[0]
            more = f" (and {len(report.skipped) - 1} more)" if len(report.skipped) > 1 else ""
            self._flush_failed("bad_row", f"record {name!r}{more} cannot be stored ({why}); "
                                          "skipped, the other records are saved")
            return report.written
        self.counters.flushes["ok"] += 1
        if self._flush_failed_since_ok:
            logger.info("hub state saved again after {} failed flushes", self._flush_failed_since_ok)
        self._flush_failed_since_ok = 0
        self._flush_logged.clear()
        return report.written

    def _pending_writes(self) -> int:
        # A record changed again during the write is in both sets: count it once.
        writing = self._writing
        return len(self.registry.dirty) + len(writing.difference(self.registry.dirty))

    def _requeue(self, names: set[str]) -> None:
        self._writing = frozenset()
        self.registry.dirty |= names

    def _flush_failed(self, reason: str, message: str) -> None:
        self.counters.flushes["error"] += 1
        self.counters.flush_failures[reason] += 1
        self._flush_failed_since_ok += 1
        if reason not in self._flush_logged:
            self._flush_logged.add(reason)
            logger.warning("hub state not saved ({}): {}; retrying every {:g} s (logged once "
                           "until a flush succeeds)", reason, message, self.config.flush_seconds)

    async def _recover_store(self, detail: str) -> None:
        try:
            await asyncio.to_thread(self.store.recover, detail)
        except StoreError as exc:
            logger.warning("hub state: {}", exc)
            return
        self.registry.dirty |= {rec.name for rec in self.registry}  # all of it, to the new file

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self, plugins: Sequence[HubPlugin] = ()) -> None:
        if self._started:
            return
        self._started = True
        n = 0
        try:
            # An unusable file is set aside (one warning) and the hub starts empty; only
            # a data dir where nothing can be written ends up here: serve without state,
            # the flush keeps trying (counted as not_open).
            await asyncio.to_thread(self.store.open)
            rows = await asyncio.to_thread(self.store.load)
            n = self.registry.restore_rows(rows, self.clock.monotonic(), self.clock.wall())
        except StoreError as exc:
            logger.error("hub state not restored: {}", exc)
        logger.info("hub {}: {} expected agents, {} records restored from {}",
                    self._machine, len(self._topology.agents_on(self._machine)), n,
                    self.store.path)
        self.tick()
        self.open_files.check()
        self.plugins = list(plugins)
        for plugin in self.plugins:
            await plugin.start()
        if self.config.freeze_gc:
            self._freeze = asyncio.get_running_loop().call_later(
                self.config.freeze_gc_after_seconds, freeze_after_start)
        if self.config.background:
            self._tasks = [asyncio.create_task(self._judge_loop(), name="hub-judge"),
                           asyncio.create_task(self._flush_loop(), name="hub-flush")]
        self.ready = True

    async def stop(self, deadline_seconds: float | None = None) -> None:
        """Stop plugins and loops, flush, close the store; idempotent, bounded.

        Plugins and loops share one budget (``deadline_seconds``); the state flush and
        the trace export then get at least a second each, so this returns within the
        deadline plus about two seconds.
        """
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        self.ready = False
        deadline = deadline_seconds if deadline_seconds is not None else self.config.stop_deadline_seconds
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline

        def left() -> float:
            # One budget for everything; each step still gets a sliver to try.
            return max(end - loop.time(), 0.05)

        for plugin in reversed(self.plugins):
            try:
                await asyncio.wait_for(plugin.stop(left()), timeout=left())
            except (TimeoutError, Exception) as exc:  # noqa: BLE001 - a plugin must not block shutdown
                logger.warning("plugin {} did not stop cleanly: {!r}", plugin.name, exc)
        if self._freeze is not None:
            self._freeze.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:  # all cancelled above: they wind down together
            await cancel_and_wait(task, left())
        self._tasks = []
        # State is what must survive: the flush gets at least a second even when late.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=max(left(), 1.0))
        self.store.close()
        # Last: plugins' final spans (a log drain, a last sync round) go out with it; like
        # the flush it gets a second even when late, so stop() ends within deadline + 2 s.
        await asyncio.to_thread(self._tracing.shutdown, max(left(), 1.0))

    async def _judge_loop(self) -> None:
        next_files_check = self.clock.monotonic()
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            try:
                await self.tick_in_steps()
                if self.clock.monotonic() >= next_files_check:
                    next_files_check = self.clock.monotonic() + self.config.open_files_check_seconds
                    self.open_files.check()
            except Exception:  # noqa: BLE001 - one bad pass must not end judging
                logger.exception("judge pass failed")

    async def _flush_loop(self) -> None:
        failures: Counter[str] = Counter()
        while True:
            await asyncio.sleep(self.config.flush_seconds)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - flush() catches all; this is the backstop
                kind = type(exc).__name__
                failures[kind] += 1
                if failures[kind] == 1:
                    logger.exception("hub flush loop: unexpected {}; the loop goes on", kind)
