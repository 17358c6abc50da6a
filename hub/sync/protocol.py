"""Wire models of the sync endpoints: every field bounded, unknown fields refused.

Two requests, both sent by a record's owner to a peer:

* ``POST /v1/sync/push`` (:class:`PushRequest`): records changed since the last
  acknowledged push, or (during reconciliation) the whole contents of some buckets;
* ``POST /v1/sync/reconcile`` (:class:`ReconcileRequest`): one digest per bucket of
  the owner's records; the peer answers which buckets differ, and only those are sent.

Either may carry the sender's :class:`GpuSummary` (its machine's GPUs and groups).

Every body names its sender (:class:`HubIdentity`: machine and boot epoch), so a
receiver sees a peer restart as a new epoch. Bodies are JSON; a hub also bounds the
body size before parsing (:data:`MAX_BODY_BYTES`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleetobs.topology.model import NAME_PATTERN
from hub.api.models import WHOLE, CleanText
from hub.sync.records import AgentFacts, AgentRecord, Version

#: Most records in one push (the sender splits bigger batches).
MAX_RECORDS = 5_000
#: Most buckets a reconciliation may use.
MAX_BUCKETS = 4_096
#: Biggest request body a sync endpoint reads (a full push of MAX_RECORDS fits).
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Epochs and sequence numbers are non-negative integers a JSON reader keeps exact
#: (2**53 - 1: JavaScript's and any float-based validator's limit; epochs are Unix
#: milliseconds, ~1.8e12). Above it, a schema-valid number could round onto another.
MAX_COUNTER = 2**53 - 1
#: No age beyond ten years (junk, not an agent).
MAX_AGE_SECONDS = 10 * 365 * 86_400.0
#: Most GPUs and container groups one machine's GPU summary may list.
MAX_GPUS = 16
MAX_GPU_GROUPS = 256

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Counter64 = Annotated[int, Field(ge=0, le=MAX_COUNTER), WHOLE]
State = Literal["missing", "up", "degraded", "suspect", "down", "unmonitored"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class HubIdentity(_Wire):
    machine: Name = Field(description="the hub's machine: also the owner of its records")
    epoch: Counter64 = Field(description="grows with every start of that hub")


class WireRecord(_Wire):
    name: Name
    owner: Name = Field(description="machine of the hub that observes the agent")
    machine: Name
    epoch: Counter64
    seq: Counter64
    state: State = Field(description="the owner's judgement")
    status: Literal["ok", "degraded", "error"] | None = None
    reason: CleanText | None = Field(None, max_length=256)
    source: Literal["heartbeat", "probe", "sidecar", "self"] | None = None
    group: Name | None = None
    required: bool = False
    kind: Literal["expected", "unknown", "foreign"] = "expected"
    endpoint: CleanText | None = Field(None, max_length=512)
    interval_seconds: float = Field(gt=0, le=3600)
    age_seconds: float | None = Field(None, ge=0, le=MAX_AGE_SECONDS,
                                      description="seconds since the owner last observed it")

    @classmethod
    def of(cls, r: AgentRecord) -> WireRecord:
        f = r.facts
        # Built from our own records: already valid, so skip validation (10k fast).
        values: dict[str, Any] = dict(
            name=f.name, owner=r.owner, machine=f.machine, epoch=r.version.epoch,
            seq=r.version.seq, state=f.state, status=f.status, reason=f.reason,
            source=f.source, group=f.group, required=f.required, kind=f.kind,
            endpoint=f.endpoint, interval_seconds=f.interval_seconds,
            age_seconds=None if r.age_seconds is None else round(r.age_seconds, 3))
        return cls.model_construct(**values)

    def record(self) -> AgentRecord:
        facts = AgentFacts(name=self.name, machine=self.machine, state=self.state,
                           status=self.status, reason=self.reason, source=self.source,
                           group=self.group, required=self.required, kind=self.kind,
                           endpoint=self.endpoint, interval_seconds=self.interval_seconds)
        return AgentRecord(self.owner, Version(self.epoch, self.seq), facts, self.age_seconds)


class WireGpu(_Wire):
    index: Annotated[int, Field(ge=0, le=1024), WHOLE]
    uuid: CleanText = Field(max_length=96)
    name: CleanText = Field(max_length=96)
    memory_total_bytes: Counter64 | None = None
    memory_used_bytes: Counter64 | None = None
    memory_reserved_bytes: Counter64 | None = None
    memory_free_bytes: Counter64 | None = None
    utilization_ratio: float | None = Field(None, ge=0, le=1)


class WireGpuGroup(_Wire):
    group: Name
    service: Name | None = None
    used_bytes: Counter64 | None = Field(None, description="None: unknown (NVML down, no data)")
    budget_bytes: Counter64 = 0


class GpuSummary(_Wire):
    """The sender machine's GPUs and groups, as its hub last read its GPU exporter."""

    machine: Name = Field(description="owner: must be the sender's machine")
    seq: Counter64 = Field(description="grows with every new reading by the owner (per epoch)")
    age_seconds: float | None = Field(None, ge=0, le=MAX_AGE_SECONDS,
                                      description="age of the reading at send time (None: none yet)")
    error: CleanText | None = Field(None, max_length=256, description="why the owner has no fresh reading")
    nvml_up: bool | None = None
    nvml_reason: CleanText | None = Field(None, max_length=128)
    gpus: list[WireGpu] = Field(default_factory=list, max_length=MAX_GPUS)
    groups: list[WireGpuGroup] = Field(default_factory=list, max_length=MAX_GPU_GROUPS)


class PushRequest(_Wire):
    sender: HubIdentity
    as_of: Counter64 = Field(description="the sender's seq when it built this body")
    records: list[WireRecord] = Field(default_factory=list, max_length=MAX_RECORDS)
    buckets: Annotated[int, Field(ge=0, le=MAX_BUCKETS), WHOLE] = Field(0,
                         description="bucket count of replace_buckets (0: a plain delta)")
    replace_buckets: list[Annotated[int, Field(ge=0, lt=MAX_BUCKETS), WHOLE]] = Field(
        default_factory=list, max_length=MAX_BUCKETS,
        description="buckets whose complete contents this body carries (reconciliation)")
    complete: bool = Field(False, description="the last body of a reconciliation")
    gpus: GpuSummary | None = Field(
        None, description="the sender's GPU summary when new to this peer (omitted otherwise)")

    @field_validator("replace_buckets")
    @classmethod
    def _in_range(cls, v: list[int]) -> list[int]:
        if any(b < 0 or b >= MAX_BUCKETS for b in v):
            raise ValueError(f"bucket indexes are 0..{MAX_BUCKETS - 1}")
        return v


class PushReply(_Wire):
    receiver: HubIdentity
    accepted: int
    stale: int
    rejected: int
    need_full: bool = Field(description="the receiver lacks a full reconciliation from the sender")


class ReconcileRequest(_Wire):
    sender: HubIdentity
    as_of: Counter64
    count: Annotated[int, Field(ge=0, le=10_000_000), WHOLE] = Field(description="records the sender owns")
    digests: list[Annotated[str, Field(max_length=32, pattern=r"^[0-9a-f]*$")]] = Field(
        min_length=1, max_length=MAX_BUCKETS)
    gpus: GpuSummary | None = Field(None, description="the sender's GPU summary (optional)")


class ReconcileReply(_Wire):
    receiver: HubIdentity
    differing: list[int] = Field(max_length=MAX_BUCKETS)


class SyncError(_Wire):
    detail: CleanText
