"""What the hub learns about an agent, from any source (the shared contract).

Heartbeats (``POST /v1/heartbeats``), probes of legacy agents (ZeroMQ / HTTP),
sidecar batches and the hub's own self-report all become one ``Observation``
and feed the same liveness model, so states and metrics mean the same thing
whatever the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What the agent (or its probe) says about itself."""

    OK = "ok"
    DEGRADED = "degraded"
    ERROR = "error"


class Source(StrEnum):
    """How the observation was made."""

    HEARTBEAT = "heartbeat"  # the agent pushed it
    PROBE = "probe"  # the hub asked the agent over its health protocol and it answered
    SIDECAR = "sidecar"  # a sidecar in the agent's group probed it and pushed the result
    SELF = "self"  # the hub reporting on itself
    PEER = "peer"  # learned from another machine's hub (sync)


@dataclass(frozen=True, slots=True)
class Observation:
    """One sign of life from ``agent`` on ``machine``.

    A probe that gets no answer is *not* an Observation: silence is judged by the
    liveness model from the time since the last one.
    """

    agent: str
    machine: str
    status: Status = Status.OK
    source: Source = Source.HEARTBEAT
    interval_seconds: float | None = None
    reason: str | None = None  # why degraded/error, e.g. "health_checks.ready_signal=false"
    version: str | None = None
    pid: int | None = None  # kept for the API only; never a metric label
    endpoint: str | None = None
    container: str | None = None
    latency_seconds: float | None = None  # probe round trip, when source is probe/sidecar
    details: Mapping[str, Any] = field(default_factory=dict)
