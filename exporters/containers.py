"""Per compose service: running, CPU, memory against its limit, OOM kills, restarts.

Each round reads every container's state from the Docker API
(:mod:`exporters.docker_state`) and its cgroup files (:mod:`exporters.cgroup_stats`),
and folds them into one figure per compose service (``machine``, ``service``, ``group``
labels; the group from the topology, as for the GPU figures).

Counters stay monotonic although their sources reset: a container's cgroup (CPU time,
OOM kills) starts from zero with each run, ``RestartCount`` restarts at a manual start,
and ``docker compose up`` may replace a container by a new one. What a container or
run had counted is kept when it ends (:class:`_ContainerTotals`), and a removed
container's totals stay with its service.

OOM kills: the cgroup's ``oom_kill`` count of the current run, and Docker's
``OOMKilled`` for the run that ended (the cgroup of a run killed outright is gone
before anyone reads it). A run counts ``max(cgroup kills seen, 1 if it ended OOM-killed)``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger

from exporters.cgroup_stats import CgroupStats, CgroupTree
from exporters.docker_state import ContainerState, DockerStateError, DockerStates
from fleetobs.topology.model import Topology

NO_GROUP = ""


@dataclass(frozen=True, slots=True)
class ServiceContainers:
    service: str
    group: str
    running: bool
    cpu_seconds: float
    memory_working_set_bytes: int | None  # None: no running container readable
    memory_limit_bytes: int | None
    oom_kills: int
    restarts: int


@dataclass(frozen=True, slots=True)
class ContainersView:
    up: bool  # the Docker API answered in the last round
    reason: str | None = None
    services: tuple[ServiceContainers, ...] = ()


@dataclass
class _ContainerTotals:
    """What one container has counted, across its runs."""

    service: str
    run: datetime | None = None  # StartedAt of the run being tracked
    cpu_done: float = 0.0  # finished runs
    cpu_now: float = 0.0  # this run, last reading
    restarts_base: int = 0  # RestartCount before a reset
    restarts_now: int = 0
    oom_done: int = 0  # finished runs (and exits seen before tracking began)
    oom_cgroup: int = 0  # this run: max oom_kill read from its cgroup
    oom_exit: bool = False  # this run ended OOM-killed (seen while stopped)
    counted_exit: datetime | None = None  # the OOM exit already counted

    @property
    def cpu(self) -> float:
        return self.cpu_done + self.cpu_now

    @property
    def restarts(self) -> int:
        return self.restarts_base + self.restarts_now

    @property
    def oom(self) -> int:
        return self.oom_done + max(self.oom_cgroup, 1 if self.oom_exit else 0)

    def observe(self, state: ContainerState, stats: CgroupStats | None) -> None:
        if self.run is None:
            self.run = state.started_at
        # An OOM exit we have not counted: it ended the tracked run, or an older one.
        if state.oom_killed and state.finished_at != self.counted_exit and state.finished_at.year > 1:
            if state.finished_at >= self.run:
                self.oom_exit = True
            else:
                self.oom_done += 1
            self.counted_exit = state.finished_at
        if state.started_at != self.run:  # a new run: settle the one before
            self.cpu_done += self.cpu_now
            self.oom_done += max(self.oom_cgroup, 1 if self.oom_exit else 0)
            self.cpu_now, self.oom_cgroup, self.oom_exit = 0.0, 0, False
            self.run = state.started_at
        if state.restart_count < self.restarts_now:  # reset by a manual start
            self.restarts_base += self.restarts_now
        self.restarts_now = state.restart_count
        if stats is not None and state.running:
            if stats.cpu_seconds is not None:
                if stats.cpu_seconds < self.cpu_now:  # a new cgroup within one StartedAt
                    self.cpu_done += self.cpu_now
                self.cpu_now = stats.cpu_seconds
            if stats.oom_kills is not None:
                if stats.oom_kills < self.oom_cgroup:
                    self.oom_done += self.oom_cgroup
                    self.oom_cgroup = 0
                self.oom_cgroup = max(self.oom_cgroup, stats.oom_kills)


@dataclass
class _Retired:
    """Totals of a service's containers that no longer exist."""

    cpu: float = 0.0
    oom: int = 0
    restarts: int = 0


@dataclass
class _Round:
    running: bool = False
    cpu: float = 0.0
    working_set: int | None = None
    limit: int | None = None
    oom: int = 0
    restarts: int = 0
    seen: set[str] = field(default_factory=set)


class ContainerMonitor:
    """Collect a :class:`ContainersView` at most every ``refresh_seconds``. One thread."""

    def __init__(self, docker: DockerStates | None, cgroups: CgroupTree, topology: Topology,
                 machine: str, *, project: str | None = None, refresh_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._docker = docker
        self._cgroups = cgroups
        self._project = project
        self._refresh = refresh_seconds
        self._clock = clock
        groups = topology.groups_on(machine)
        self._group_of_service = {g.service_name: g.name for g in groups}
        self._expected = sorted(self._group_of_service)
        self._totals: dict[str, _ContainerTotals] = {}
        self._retired: dict[str, _Retired] = defaultdict(_Retired)
        self._last_at: float | None = None
        self._logged: str | None = None
        self.view = ContainersView(False, "no_socket" if docker is None else "not_queried")

    def collect(self) -> ContainersView:
        """A fresh view when ``refresh_seconds`` have passed, else the last one."""
        now = self._clock()
        if self._last_at is not None and now - self._last_at < self._refresh:
            return self.view
        self._last_at = now
        if self._docker is None:
            return self.view
        try:
            states = self._docker.states(self._project)
        except DockerStateError as exc:
            if self._logged != exc.reason:
                logger.warning("docker API unusable for container metrics ({}): series omitted", exc)
                self._logged = exc.reason
            self.view = ContainersView(False, exc.reason)
            return self.view
        self._logged = None
        self.view = ContainersView(True, None, self._fold(states))
        return self.view

    def close(self) -> None:
        if self._docker is not None:
            self._docker.close()

    def _fold(self, states: Iterable[ContainerState]) -> tuple[ServiceContainers, ...]:
        rounds: dict[str, _Round] = defaultdict(_Round)
        for s in states:
            totals = self._totals.get(s.id)
            if totals is None:
                totals = self._totals[s.id] = _ContainerTotals(s.service)
            stats = self._cgroups.stats(s.id, s.pid) if s.running else None
            totals.observe(s, stats)
            r = rounds[s.service]
            r.seen.add(s.id)
            r.running = r.running or s.running
            if s.running and stats is not None and stats.memory_working_set_bytes is not None:
                r.working_set = (r.working_set or 0) + stats.memory_working_set_bytes
                limit = stats.memory_limit_bytes
                if limit is None:
                    limit = s.memory_limit_bytes
                r.limit = (r.limit or 0) + limit
        present = {cid for r in rounds.values() for cid in r.seen}
        for cid in [c for c in self._totals if c not in present]:
            gone = self._totals.pop(cid)  # removed (compose down, or replaced by a new one)
            kept = self._retired[gone.service]
            kept.cpu += gone.cpu
            kept.oom += gone.oom
            kept.restarts += gone.restarts
        for t in self._totals.values():
            r = rounds[t.service]
            r.cpu += t.cpu
            r.oom += t.oom
            r.restarts += t.restarts
        # A group's service with no container is "not running"; a service whose containers
        # are all gone keeps its counters.
        for service in (*self._expected, *self._retired):
            rounds.setdefault(service, _Round())
        out = []
        for service, r in sorted(rounds.items()):
            kept = self._retired.get(service, _Retired())
            out.append(ServiceContainers(
                service=service, group=self._group_of_service.get(service, NO_GROUP),
                running=r.running, cpu_seconds=r.cpu + kept.cpu,
                memory_working_set_bytes=r.working_set, memory_limit_bytes=r.limit,
                oom_kills=r.oom + kept.oom, restarts=r.restarts + kept.restarts))
        return tuple(out)
