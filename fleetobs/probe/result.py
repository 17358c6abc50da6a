"""What one probe found: an answer mapped to up/degraded/error, or no answer and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Protocol(StrEnum):
    ZMQ = "zmq"  # REQ to health_check_port (the real BaseAgent default)
    HTTP = "http"  # GET /health on health_check_port + 1


class Outcome(StrEnum):
    """Bounded (a metric label): what came back."""

    OK = "ok"
    DEGRADED = "degraded"
    ERROR = "error"  # the agent says so, or an HTTP error status
    INVALID_REPLY = "invalid_reply"  # it answered, but not with a health object
    TIMEOUT = "timeout"  # no answer within the timeout
    REFUSED = "refused"  # nothing listens on the port
    UNREACHABLE = "unreachable"  # name does not resolve, network down, ...

    @property
    def answered(self) -> bool:
        return self in _ANSWERED

    @property
    def status(self) -> str | None:
        """The agent's status ("ok" | "degraded" | "error", the hub's Status values);
        ``None`` when it did not answer."""
        return _STATUS.get(self)


_ANSWERED = frozenset({Outcome.OK, Outcome.DEGRADED, Outcome.ERROR, Outcome.INVALID_REPLY})
_STATUS = {Outcome.OK: "ok", Outcome.DEGRADED: "degraded", Outcome.ERROR: "error",
           Outcome.INVALID_REPLY: "error"}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: Outcome
    protocol: Protocol
    endpoint: str  # what was asked, e.g. tcp://127.0.0.1:6572 or http://127.0.0.1:6573/health
    latency_seconds: float | None = None  # round trip, when it answered
    reason: str | None = None  # why not ok, one line (free text: never a metric label)
    health: dict[str, Any] = field(default_factory=dict)  # the health object, when there was one

    @property
    def answered(self) -> bool:
        return self.outcome.answered

    @property
    def status(self) -> str | None:
        return self.outcome.status

    def summary(self) -> str:
        """One line for humans (the CLI prints it)."""
        name = self.outcome.value
        if self.outcome is Outcome.OK:
            return f"ok {self.endpoint} ({_ms(self.latency_seconds)})"
        extra = f": {self.reason}" if self.reason else ""
        took = f" ({_ms(self.latency_seconds)})" if self.latency_seconds is not None else ""
        return f"{name} {self.endpoint}{took}{extra}"


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.1f} ms"
