"""The receiving side of sync: token, size bound, validation, then the merge.

One function (:meth:`SyncServer.handle`) answers every sync request, from the HTTP
router (hub.sync.api) and from the in-memory fake transport alike, so hostile-input
behaviour is the same in both. It never raises on junk: 401, 413, 422 or 409 with a
short JSON reason.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from hub.sync.gpus import GpuViews
from hub.sync.merge import FleetView, MergeResult
from hub.sync.protocol import (
    MAX_BODY_BYTES,
    GpuSummary,
    HubIdentity,
    PushReply,
    PushRequest,
    ReconcileReply,
    ReconcileRequest,
    SyncError,
)

PUSH_PATH = "/v1/sync/push"
RECONCILE_PATH = "/v1/sync/reconcile"


def token_ok(authorization: str | None, expected: str) -> bool:
    """Constant-time Bearer check (a missing header costs the same as a wrong one)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@dataclass
class InboundStats:
    """What arrived, by sending machine; refusals by reason (read by the collector)."""

    bytes_received: Counter[str] = field(default_factory=Counter)
    records: Counter[tuple[str, str]] = field(default_factory=Counter)  # (peer, outcome)
    rejected: Counter[str] = field(default_factory=Counter)  # by reason


class SyncServer:
    def __init__(self, fleet: FleetView, identity: Callable[[], HubIdentity],
                 clock: Callable[[], float], token: str | None,
                 max_body_bytes: int = MAX_BODY_BYTES,
                 on_restart: Callable[[str], None] | None = None,
                 gpus: GpuViews | None = None) -> None:
        self.fleet = fleet
        #: Peers' GPU summaries (taken only from bodies the fleet view admitted).
        self.gpus = gpus or GpuViews(fleet.machine)
        self.identity = identity
        self.clock = clock
        self.token = token
        self.max_body_bytes = max_body_bytes
        #: Called with a peer's machine when it shows up with a new epoch.
        self.on_restart = on_restart
        self.stats = InboundStats()

    def _error(self, status: int, reason: str, detail: str) -> tuple[int, bytes]:
        self.stats.rejected[reason] += 1
        return status, SyncError(detail=detail).model_dump_json().encode()

    def handle(self, path: str, body: bytes, authorization: str | None) -> tuple[int, bytes]:
        """Answer one request: ``(status, JSON body)``."""
        if self.token and not token_ok(authorization, self.token):
            return self._error(401, "unauthorized", "missing or wrong bearer token")
        if len(body) > self.max_body_bytes:
            return self._error(413, "too_large", f"body larger than {self.max_body_bytes} bytes")
        try:
            if path == PUSH_PATH:
                return self._push(PushRequest.model_validate_json(body), len(body))
            if path == RECONCILE_PATH:
                return self._reconcile(ReconcileRequest.model_validate_json(body), len(body))
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            return self._error(422, "invalid", f"{where}: {err['msg']}"[:300])
        return self._error(404, "not_found", f"no sync endpoint {path[:100]}")

    def _refused(self, result: MergeResult) -> tuple[int, bytes]:
        reason = next(iter(result.rejected), "refused")
        return self._error(409, str(reason), f"body refused: {reason}")

    def _take_gpus(self, sender: str, epoch: int, summary: GpuSummary | None) -> int:
        """Hold a GPU summary from an admitted body; 1 when it was rejected."""
        if summary is None:
            return 0
        outcome = self.gpus.apply(sender, epoch, summary, self.clock())
        if outcome in ("accepted", "stale"):
            return 0
        self.stats.rejected[str(outcome)] += 1
        return 1

    def _restarted(self, machine: str, result: MergeResult) -> None:
        if result.restarted and self.on_restart is not None:
            self.on_restart(machine)

    def _push(self, req: PushRequest, size: int) -> tuple[int, bytes]:
        sender = req.sender.machine
        if req.buckets and any(b >= req.buckets for b in req.replace_buckets):
            return self._error(422, "invalid", "replace_buckets: index not below buckets")
        result = self.fleet.apply_push(
            sender, req.sender.epoch, req.as_of, (r.record() for r in req.records),
            self.clock(), buckets=req.buckets, replace=req.replace_buckets,
            complete=req.complete)
        for reason, n in result.rejected.items():
            self.stats.rejected[str(reason)] += n
        if result.refused:
            return self._refused(result)
        self._restarted(sender, result)
        gpus_rejected = self._take_gpus(sender, req.sender.epoch, req.gpus)
        self.stats.bytes_received[sender] += size
        self.stats.records[(sender, "accepted")] += result.accepted
        self.stats.records[(sender, "stale")] += result.stale
        self.stats.records[(sender, "rejected")] += result.rejected_count
        reply = PushReply(receiver=self.identity(), accepted=result.accepted, stale=result.stale,
                          rejected=result.rejected_count + gpus_rejected,
                          need_full=result.need_full)
        return 200, reply.model_dump_json().encode()

    def _reconcile(self, req: ReconcileRequest, size: int) -> tuple[int, bytes]:
        diff, result = self.fleet.differing(req.sender.machine, req.sender.epoch,
                                            list(req.digests), self.clock())
        if result.refused:
            return self._refused(result)
        self._restarted(req.sender.machine, result)
        self._take_gpus(req.sender.machine, req.sender.epoch, req.gpus)
        self.stats.bytes_received[req.sender.machine] += size
        reply = ReconcileReply(receiver=self.identity(), differing=diff)
        return 200, reply.model_dump_json().encode()
