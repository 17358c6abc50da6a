"""Request and response bodies of the hub API (the OpenAPI schema comes from these)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from fleetobs.sanitize import clean_json, clean_text, non_finite_path
from fleetobs.topology.model import NAME_PATTERN
from hub.liveness import State

#: Biggest ``details`` object accepted, as compact JSON.
MAX_DETAILS_BYTES = 4096
#: Most heartbeats in one batch.
MAX_BATCH = 10_000

AgentName = Annotated[str, Field(pattern=NAME_PATTERN,
                                 description="[A-Za-z0-9_.-]{1,128}, not starting with . or -")]


def _integral(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


#: For strict ``int`` fields: JSON Schema's "integer" includes ``7613.0`` (a number with a
#: zero fraction), so take it as 7613. Put it after the ``Field`` constraints inside
#: ``Annotated`` (else the schema loses minimum/maximum).
WHOLE = BeforeValidator(_integral)


#: Free text from outside: NUL (and, from parsers that allow them, lone surrogates)
#: becomes U+FFFD. pydantic's JSON parser already refuses lone surrogate escapes.
CleanText = Annotated[str, AfterValidator(clean_text)]
Text = CleanText


class Heartbeat(BaseModel):
    """One sign of life, pushed by an agent or a sidecar on its behalf."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    agent: AgentName
    status: Literal["ok", "degraded", "error"] = "ok"
    interval_seconds: float | None = Field(
        None, gt=0, le=3600, description="the sender's period; default: the topology's")
    reason: Text | None = Field(None, max_length=256, description="why degraded or error")
    version: Text | None = Field(None, max_length=128)
    pid: Annotated[int, Field(ge=1, le=2**31 - 1), WHOLE] | None = Field(
        None, description="shown in the API, never a label")
    endpoint: Text | None = Field(None, max_length=512)
    container: str | None = Field(None, pattern=NAME_PATTERN)
    source: Literal["agent", "sidecar"] = Field(
        "agent", description="who sent it: the agent itself, or a sidecar that probed it")
    latency_seconds: float | None = Field(
        None, ge=0, le=3600, description="the sidecar's probe round trip")
    details: dict[str, Any] = Field(
        default_factory=dict, description=f"small object, at most {MAX_DETAILS_BYTES} bytes as JSON")

    @field_validator("details")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            return v
        try:
            text = json.dumps(v, separators=(",", ":"), allow_nan=False)
        except ValueError:
            # 1e400 parses as inf, NaN as nan: neither can be written back as JSON.
            raise ValueError(f"details{non_finite_path(v) or ''} is not a finite number") from None
        if len(text) > MAX_DETAILS_BYTES:
            raise ValueError(f"details is {len(text)} bytes as JSON; at most {MAX_DETAILS_BYTES}")
        # json.dumps escapes NUL as \u0000: only then is a cleaning pass needed.
        return clean_json(v) if "\\u0000" in text else v


class Rejected(BaseModel):
    index: int
    agent: str
    reason: Literal["other_machine", "too_many_unknown"]


class HeartbeatResult(BaseModel):
    accepted: list[str] = Field(description="agents whose heartbeat was recorded, in order")
    unknown: list[str] = Field(description="accepted, but no agent of that name in the topology")
    foreign: list[str] = Field(
        description="accepted, but the topology places that agent on another machine only")
    rejected: list[Rejected] = Field(default_factory=list)


class AgentView(BaseModel):
    name: str
    machine: str
    group: str | None
    kind: Literal["expected", "unknown", "foreign"]
    expected_machine: str | None = Field(description="for foreign agents: where the topology puts it")
    state: State | Literal["unknown"] = Field(
        description="unknown: another machine's agent whose hub cannot be heard (see last_state)")
    last_status: Literal["ok", "degraded", "error"] | None = Field(
        description="the status it last reported (or its probe answered), however long ago: "
                    "a down agent keeps the ok it said before it fell silent; null: never heard")
    reason: str | None
    source: str | None = Field(description="heartbeat, probe, sidecar, self or peer")
    required: bool
    probe: str | None
    interval_seconds: float
    age_seconds: float | None = Field(description="seconds since last heard; null: never")
    last_seen: float | None = Field(description="unix time last heard")
    state_since: float | None
    endpoint: str | None
    version: str | None
    pid: int | None
    container: str | None
    details: dict[str, Any]
    owner: str | None = Field(None, description="another machine's agent: the hub that judges it")
    last_state: State | None = Field(None, description="another machine's agent: its hub's last judgement")
    owner_source: str | None = Field(None, description="another machine's agent: how its hub observed it")


class AgentList(BaseModel):
    machine: str
    agents: list[AgentView]


class LocationView(BaseModel):
    agent: str
    machine: str
    group: str | None
    mode: str
    host: str
    port: int
    health_check_port: int
    metrics_port: int
    zmq: str = Field(description="main ZeroMQ REP socket, e.g. tcp://language-stack-gpu:5709")
    health: str = Field(description="ZeroMQ health socket")
    metrics: str = Field(description="HTTP /metrics URL")


class SDTarget(BaseModel):
    targets: list[str]
    labels: dict[str, str]


class Problem(BaseModel):
    detail: Any
    message: str | None = None
