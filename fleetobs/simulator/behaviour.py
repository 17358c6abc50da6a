"""How a simulated agent answers, and the health object the real BaseAgent sends."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: The real BaseAgent's health checks (tests/fixtures/real-fleet/README.md).
HEALTH_CHECKS = ("port_accessible", "redis_connected", "ready_signal")


class Behaviour(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # status "degraded", one health check false (the reason)
    ERROR = "error"  # status "error"
    SLOW = "slow"  # ok, after a delay
    SILENT = "silent"  # takes the request, never answers (a hung agent)
    GARBAGE = "garbage"  # answers bytes that are not a health object
    DOWN = "down"  # opens no sockets at all (connection refused)

    @property
    def expected_status(self) -> str | None:
        """What a probe (with a timeout above the slow delay) should conclude:
        "ok" | "degraded" | "error", or None for no answer."""
        return _EXPECTED[self]


_EXPECTED: dict[Behaviour, str | None] = {
    Behaviour.OK: "ok", Behaviour.DEGRADED: "degraded", Behaviour.ERROR: "error",
    Behaviour.SLOW: "ok", Behaviour.SILENT: None, Behaviour.GARBAGE: "error", Behaviour.DOWN: None,
}

GARBAGE_REPLY = b"\x00\xffnot a health object <html>"


def health_object(behaviour: Behaviour, *, uptime: float, failing_check: str = "ready_signal",
                  now: datetime | None = None) -> dict[str, Any]:
    """The JSON the real BaseAgent answers, shaped by ``behaviour``."""
    checks = dict.fromkeys(HEALTH_CHECKS, True)
    status, health_status, message = "ok", "healthy", "agent is healthy"
    if behaviour is Behaviour.DEGRADED:
        checks[failing_check] = False
        status, health_status, message = "degraded", "degraded", f"{failing_check} check failed"
    elif behaviour is Behaviour.ERROR:
        checks["redis_connected"] = False
        status, health_status, message = "error", "unhealthy", "simulated failure: model not loaded"
    return {
        "status": status,
        "ready": behaviour is not Behaviour.ERROR,
        "initialized": True,
        "message": message,
        "timestamp": (now or datetime.now(UTC)).replace(tzinfo=None).isoformat(),
        "uptime": round(uptime, 3),
        "active_threads": 7,
        "health_checks": checks,
        "health_details": {},
        "health_status": health_status,
    }


def encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj).encode()


FAILURE_KINDS: tuple[Behaviour, ...] = (
    Behaviour.DEGRADED, Behaviour.ERROR, Behaviour.SILENT, Behaviour.GARBAGE, Behaviour.SLOW,
)


def plan_behaviours(names: Sequence[str], fail_rate: float, seed: int = 0,
                    kinds: Sequence[Behaviour] = FAILURE_KINDS,
                    overrides: Mapping[str, Behaviour] | None = None) -> dict[str, Behaviour]:
    """Pick ``round(fail_rate * len(names))`` agents (seeded, so runs repeat) and give
    them failure kinds in turn; the rest answer ok. ``overrides`` win."""
    if not 0 <= fail_rate <= 1:
        raise ValueError(f"fail rate must be within 0..1, got {fail_rate}")
    if not kinds:
        raise ValueError("at least one failure kind is needed")
    rng = random.Random(seed)  # noqa: S311 - repeatable choice, not security
    failing = rng.sample(list(names), round(fail_rate * len(names)))
    plan = dict.fromkeys(names, Behaviour.OK)
    for i, name in enumerate(failing):
        plan[name] = kinds[i % len(kinds)]
    plan.update(overrides or {})
    return plan
