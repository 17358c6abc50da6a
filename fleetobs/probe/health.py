"""Read the real BaseAgent's health object (see tests/fixtures/real-fleet/README.md).

``{"status": "ok"|"degraded"|"error", "health_checks": {"ready_signal": false, ...},
"message": ..., ...}``. The status field decides; the failed ``health_checks`` say why,
because "degraded" alone cannot tell a dead Redis from an expired readiness key (the
real fleet once turned all agents degraded on the latter).
"""

from __future__ import annotations

import json
from typing import Any

from fleetobs.probe.result import Outcome
from fleetobs.sanitize import clean_text

#: Status spellings seen in agents' hand-written health handlers, mapped to outcomes.
_STATUS_WORDS: dict[str, Outcome] = {
    "ok": Outcome.OK, "healthy": Outcome.OK, "up": Outcome.OK,
    "degraded": Outcome.DEGRADED, "warning": Outcome.DEGRADED,
    "error": Outcome.ERROR, "unhealthy": Outcome.ERROR, "failed": Outcome.ERROR,
    "down": Outcome.ERROR,
}

MAX_REASON = 200


def decode_health(raw: bytes) -> tuple[Outcome, str | None, dict[str, Any]]:
    """Bytes of a reply -> (outcome, reason, health object)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Outcome.INVALID_REPLY, f"reply is not JSON: {_preview(raw)}", {}
    return interpret_health(body)


def interpret_health(body: Any) -> tuple[Outcome, str | None, dict[str, Any]]:
    """A parsed reply -> (outcome, reason, health object)."""
    if not isinstance(body, dict):
        return Outcome.INVALID_REPLY, f"reply is JSON {type(body).__name__}, not an object", {}
    status = body.get("status")
    if not isinstance(status, str):
        return Outcome.INVALID_REPLY, "reply has no 'status' string", body
    outcome = _STATUS_WORDS.get(status.strip().lower())
    if outcome is None:
        return Outcome.INVALID_REPLY, f"unknown status {_clip(status)!r}", body
    if outcome is Outcome.OK:
        return outcome, None, body
    return outcome, failure_reason(body), body


def failure_reason(body: dict[str, Any]) -> str:
    """Which health_checks are false, else the agent's message, else its health_status."""
    checks = body.get("health_checks")
    if isinstance(checks, dict):
        failed = sorted(str(k) for k, v in checks.items() if v is False)
        if failed:
            return _clip(", ".join(f"health_checks.{k}=false" for k in failed))
    for key in ("message", "error", "health_status"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(f"{key}: {value}")
    return _clip(f"status={body.get('status')}")


def _clip(text: str) -> str:
    # The reply is the agent's: a lone surrogate escape or NUL in it must not reach the
    # hub's JSON, SQLite or a sidecar's request body (it broke all three).
    one_line = " ".join(clean_text(text).split())
    return one_line if len(one_line) <= MAX_REASON else one_line[: MAX_REASON - 3] + "..."


def _preview(raw: bytes) -> str:
    return repr(raw[:40]) + ("..." if len(raw) > 40 else "")
