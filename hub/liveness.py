"""The liveness state machine: which state an agent is in, judged from silence.

Pure: no I/O, no clock reads. Every function takes ``now`` (monotonic seconds from
the hub's injected clock) so tests drive it with a fake clock and wall-clock jumps
cannot convict anyone.

States (docs/hub.md has the table):

* ``missing``: expected from the topology, never seen since the hub started;
* ``up`` / ``degraded``: seen recently; degraded when the agent itself says it is
  ``degraded`` or ``error``;
* ``suspect``: silent for more than ``suspect_factor`` x its interval;
* ``down``: silent for more than ``down_factor`` x its interval, or the hard cap;
* ``unmonitored``: topology ``probe: none``; listed, never judged.

Two guards keep convictions honest:

* restart grace: an agent restored as up/degraded is held in that state for one
  interval after the hub restarts (``hold_until``), as Consul's TTL checks do;
* pause guard (:class:`StallGuard`): if the judge itself ran late (event-loop lag,
  suspend, a stopped process), the stall is credited to every agent's silence
  (``ref`` moves forward), because beats during the stall could not be received.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.observation import Status


class State(StrEnum):
    MISSING = "missing"
    UP = "up"
    DEGRADED = "degraded"
    SUSPECT = "suspect"
    DOWN = "down"
    UNMONITORED = "unmonitored"


#: States in a stable order (metrics one-hot, API docs).
STATES: tuple[State, ...] = tuple(State)
ALIVE: frozenset[State] = frozenset({State.UP, State.DEGRADED})


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """Thresholds. Defaults: suspect after 2x the interval, down after 3x, capped."""

    suspect_factor: float = 2.0
    down_factor: float = 3.0
    #: No agent stays anything but down after this much silence, whatever its interval.
    down_cap_seconds: float = 600.0
    #: Intervals a sender announces are clamped into this range.
    min_interval_seconds: float = 1.0
    max_interval_seconds: float = 3600.0

    def clamp_interval(self, seconds: float) -> float:
        return min(max(seconds, self.min_interval_seconds), self.max_interval_seconds)

    def down_after(self, interval: float) -> float:
        return min(self.down_factor * interval, self.down_cap_seconds)

    def suspect_after(self, interval: float) -> float:
        # Under the cap suspect must still come before down: keep the 2:3 ratio.
        down = self.down_after(interval)
        return min(self.suspect_factor * interval, down * self.suspect_factor / self.down_factor)

    def limits(self, interval: float) -> tuple[float, float]:
        """``(suspect_after, down_after)`` of ``interval``."""
        return self.suspect_after(interval), self.down_after(interval)


@dataclass(slots=True)
class Timing:
    """The liveness-relevant part of one agent's record (mutable, owned by the registry)."""

    interval: float
    monitored: bool = True
    #: Monotonic time of the last observation; ``None``: never seen.
    last_seen: float | None = None
    #: Where silence is counted from: ``last_seen`` plus any stall credit.
    ref: float | None = None
    #: Before this monotonic time the state is held (restart grace).
    hold_until: float = float("-inf")
    status: Status = Status.OK
    state: State = State.MISSING


def alive_state(status: Status) -> State:
    return State.UP if status is Status.OK else State.DEGRADED


def observe(t: Timing, now: float, status: Status, interval: float | None,
            policy: LivenessPolicy) -> None:
    """A sign of life at ``now``: the agent is alive again, whatever it was."""
    if interval is not None:
        t.interval = policy.clamp_interval(interval)
    t.last_seen = now
    t.ref = now
    t.status = status
    t.hold_until = float("-inf")
    t.state = alive_state(status) if t.monitored else State.UNMONITORED


def judge(t: Timing, now: float, policy: LivenessPolicy,
          limits: tuple[float, float] | None = None) -> State:
    """The state ``t`` is in at ``now`` (does not modify ``t``).

    ``limits``: ``(suspect_after, down_after)`` for ``t.interval`` when the caller has
    them (a judge pass over 10,000 agents computes them once per distinct interval).
    """
    if not t.monitored:
        return State.UNMONITORED
    if t.ref is None:
        return State.MISSING
    if now < t.hold_until:
        return t.state
    suspect, down = limits if limits is not None else policy.limits(t.interval)
    silent = now - t.ref
    if silent > down:
        return State.DOWN
    if silent > suspect:
        return State.SUSPECT
    return State.UP if t.status is Status.OK else State.DEGRADED


def restore(t: Timing, now: float, age: float, state: State, status: Status) -> None:
    """Bring back a record persisted by a previous run, ``age`` seconds after it was seen.

    Agents that were alive get one interval of grace before they can be judged.
    """
    t.status = status
    if state is State.MISSING or not t.monitored:
        t.state = State.UNMONITORED if not t.monitored else State.MISSING
        return
    t.last_seen = t.ref = now - max(age, 0.0)
    t.state = state
    if state in ALIVE:
        t.hold_until = now + t.interval


class StallGuard:
    """Detects that the judge itself ran late and says by how much.

    The judge is meant to run every ``tick_seconds``. A gap longer than
    ``tick_seconds + threshold_seconds`` means the hub could not have received beats
    for the excess; :meth:`check` returns that excess (0 when on time).
    """

    def __init__(self, tick_seconds: float, threshold_seconds: float) -> None:
        self.tick_seconds = tick_seconds
        self.threshold_seconds = threshold_seconds
        self._last: float | None = None
        self.stalls = 0
        self.stalled_seconds = 0.0

    def check(self, now: float) -> float:
        last, self._last = self._last, now
        if last is None:
            return 0.0
        gap = now - last
        if gap <= self.tick_seconds + self.threshold_seconds:
            return 0.0
        stall = gap - self.tick_seconds
        self.stalls += 1
        self.stalled_seconds += stall
        return stall


def credit_stall(t: Timing, stall: float, now: float) -> None:
    """Silence during a hub stall does not count against the agent."""
    if t.ref is not None:
        t.ref = min(t.ref + stall, now)
