"""Every agent this hub knows about on its machine, and what it last heard from each.

Three kinds of records:

* ``expected``: in the topology on this machine (created at start, ``missing`` until seen);
* ``unknown``: sent observations but the topology has no agent of that name anywhere
  (how a misconfigured container shows up);
* ``foreign``: the topology places an agent of that name on another machine only,
  yet it beats here (a container started on the wrong machine).

Unknown and foreign agents are accepted and judged like the others with the interval
they announce; their number is capped (``max_unknown``) so junk senders cannot grow
memory without bound. Agents on other machines are not judged here (sync is separate).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fleetobs.topology.model import Agent, ProbeKind, Topology
from hub.liveness import (
    LivenessPolicy,
    StallGuard,
    State,
    Timing,
    credit_stall,
    judge,
    observe,
    restore,
)
from hub.observation import Observation, Source, Status

#: The topology name of the hub itself (one per machine, probe ``push``).
HUB_AGENT = "ObservabilityHub"
#: Persisted text -> enum member, for restoring 10,000 rows without 30,000 enum calls.
_STATES: dict[Any, State] = {m.value: m for m in State}
_STATUSES: dict[Any, Status] = {m.value: m for m in Status}
_SOURCES: dict[Any, Source] = {m.value: m for m in Source}


class Kind(StrEnum):
    EXPECTED = "expected"
    UNKNOWN = "unknown"
    FOREIGN = "foreign"


class Outcome(StrEnum):
    """What :meth:`Registry.record` did with an observation."""

    ACCEPTED = "accepted"
    OTHER_MACHINE = "other_machine"  # for another machine's hub; not judged here
    TOO_MANY_UNKNOWN = "too_many_unknown"


@dataclass(slots=True)
class Record:
    name: str
    machine: str
    kind: Kind
    timing: Timing
    agent: Agent | None = None
    #: Topology machine of a foreign agent (where it was expected to run).
    expected_machine: str | None = None
    source: Source | None = None
    reason: str | None = None
    version: str | None = None
    pid: int | None = None
    endpoint: str | None = None
    container: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    last_seen_wall: float | None = None
    state_since_wall: float | None = None
    observations: int = 0
    #: Pre-rendered Prometheus label set ``machine="..",group="..",agent=".."``:
    #: names match NAME_PATTERN, so no escaping is needed (metrics renders 10k fast).
    labels: str = ""
    #: hub.metrics' cache of this record's unchanging lines, keyed by what they show.
    rendered: tuple[Any, ...] | None = None

    @property
    def group(self) -> str | None:
        return self.agent.group if self.agent is not None else None

    @property
    def required(self) -> bool:
        return self.agent.required if self.agent is not None else False

    @property
    def state(self) -> State:
        return self.timing.state


def _labels(machine: str, group: str | None, name: str) -> str:
    return f'machine="{machine}",group="{group or ""}",agent="{name}"'


class Registry:
    """The records of one machine's hub. Call only from the event loop."""

    def __init__(self, topology: Topology, machine: str, policy: LivenessPolicy,
                 *, max_unknown: int = 10_000) -> None:
        topology.machine(machine)  # KeyError naming the known machines
        self.topology = topology
        self.machine = machine
        self.policy = policy
        self.max_unknown = max_unknown
        self._records: dict[str, Record] = {}
        self._unknown_count = 0
        #: Name -> the first topology agent of that name on another machine: a stranger
        #: is classified in O(1) (scanning the topology per name froze the loop for
        #: seconds when 10,000 strangers arrived at 10,000 agents).
        self._elsewhere: dict[str, Agent] = {}
        for agent in topology.agents:
            if agent.machine != machine:
                self._elsewhere.setdefault(agent.name, agent)
        #: Names whose persisted row is stale (store flushes and clears it).
        self.dirty: set[str] = set()
        for agent in topology.agents_on(machine):
            self._records[agent.name] = self._expected(agent)

    # --- lookups ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records.values())

    def get(self, name: str) -> Record | None:
        return self._records.get(name)

    def snapshot(self) -> list[Record]:
        """A list safe to read from another thread while the loop keeps inserting."""
        return list(self._records.values())

    @property
    def unknown_count(self) -> int:
        return self._unknown_count

    # --- writes ----------------------------------------------------------------------
    def record(self, obs: Observation, now: float, wall: float) -> tuple[Outcome, Record | None]:
        if obs.machine != self.machine:
            return Outcome.OTHER_MACHINE, None
        rec = self._records.get(obs.agent)
        if rec is None:
            if self._unknown_count >= self.max_unknown:
                return Outcome.TOO_MANY_UNKNOWN, None
            rec = self._stranger(obs.agent, obs.interval_seconds)
            self._records[obs.agent] = rec
            self._unknown_count += 1
        before = rec.timing.state
        observe(rec.timing, now, obs.status, obs.interval_seconds, self.policy)
        if rec.timing.state is not before:
            rec.state_since_wall = wall
        rec.last_seen_wall = wall
        rec.source = obs.source
        rec.reason = obs.reason
        rec.observations += 1
        if obs.version is not None:
            rec.version = obs.version
        if obs.pid is not None:
            rec.pid = obs.pid
        if obs.endpoint is not None:
            rec.endpoint = obs.endpoint
        if obs.container is not None:
            rec.container = obs.container
        if obs.details:
            rec.details = obs.details
        self.dirty.add(rec.name)
        return Outcome.ACCEPTED, rec

    def judge_all(self, now: float, wall: float, stall: float = 0.0) -> list[tuple[Record, State]]:
        """Re-judge every record; returns ``(record, previous state)`` for each change."""
        return self.judge_records(self._records.values(), now, wall, stall, {})

    def judge_records(self, records: Iterable[Record], now: float, wall: float, stall: float,
                      limits: dict[float, tuple[float, float]]) -> list[tuple[Record, State]]:
        """:meth:`judge_all` for some records (a pass in steps: hub.service's judge loop).

        ``limits`` caches thresholds per distinct interval (a handful), not per agent;
        pass the same dict to every step of one pass.
        """
        changed: list[tuple[Record, State]] = []
        policy = self.policy
        for rec in records:
            t = rec.timing
            if stall > 0.0:
                credit_stall(t, stall, now)
            lim = limits.get(t.interval)
            if lim is None:
                lim = limits[t.interval] = policy.limits(t.interval)
            new = judge(t, now, policy, lim)
            if new is not t.state:
                changed.append((rec, t.state))
                t.state = new
                rec.state_since_wall = wall
                self.dirty.add(rec.name)
        return changed

    def tick(self, guard: StallGuard, now: float, wall: float) -> list[tuple[Record, State]]:
        """One judge pass with the pause guard applied first."""
        return self.judge_all(now, wall, guard.check(now))

    def restore_rows(self, rows: Iterable[Mapping[str, Any]], now: float, wall: float) -> int:
        """Load rows persisted by a previous run (see hub.store); returns how many."""
        n = 0
        for row in rows:
            try:
                n += self._restore_row(row, now, wall)
            except (KeyError, TypeError, ValueError):
                continue  # hub.store decodes rows first; this is the backstop
        return n

    def _restore_row(self, row: Mapping[str, Any], now: float, wall: float) -> int:
        name = str(row["name"])
        state, status = _STATES.get(row["state"]), _STATUSES.get(row["status"])
        if state is None or status is None:
            return 0
        interval = row.get("interval_seconds")
        rec = self._records.get(name)
        if rec is None:
            if self._unknown_count >= self.max_unknown:
                return 0
            rec = self._stranger(name, interval)
            self._records[name] = rec
            self._unknown_count += 1
        if interval:
            # Restore announced intervals too: the agent judged by the same rule as before.
            rec.timing.interval = self.policy.clamp_interval(float(interval))
        last_wall = row.get("last_seen_wall")
        age = wall - float(last_wall) if last_wall is not None else 0.0
        if last_wall is None:
            state = State.MISSING
        restore(rec.timing, now, age, state, status)
        rec.last_seen_wall = float(last_wall) if last_wall is not None else None
        rec.state_since_wall = row.get("state_since_wall")
        for key in ("reason", "version", "pid", "endpoint", "container"):
            setattr(rec, key, row.get(key))
        src = row.get("source")
        rec.source = _SOURCES.get(src) if isinstance(src, str) else None
        rec.details = row.get("details") or {}
        return 1

    # --- construction ----------------------------------------------------------------
    def _expected(self, agent: Agent) -> Record:
        timing = Timing(interval=self.policy.clamp_interval(agent.heartbeat_interval_seconds),
                        monitored=agent.probe is not ProbeKind.NONE)
        if not timing.monitored:
            timing.state = State.UNMONITORED
        return Record(name=agent.name, machine=self.machine, kind=Kind.EXPECTED, timing=timing,
                      agent=agent, labels=_labels(self.machine, agent.group, agent.name))

    def _stranger(self, name: str, interval: float | None) -> Record:
        elsewhere = self._elsewhere.get(name)
        kind = Kind.FOREIGN if elsewhere is not None else Kind.UNKNOWN
        default = (elsewhere.heartbeat_interval_seconds if elsewhere is not None
                   else self.topology.defaults.heartbeat_interval_seconds)
        timing = Timing(interval=self.policy.clamp_interval(float(interval or default)))
        return Record(name=name, machine=self.machine, kind=kind, timing=timing,
                      expected_machine=elsewhere.machine if elsewhere is not None else None,
                      labels=_labels(self.machine, None, name))
