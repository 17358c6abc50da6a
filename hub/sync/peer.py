"""One peer link: a small state machine that keeps a peer's copy of our records right.

What :meth:`PeerLink.step` does, in order of priority:

1. back off after a failure (0.25 s doubling to 0.5 s: a healed link is used again
   within a second) and do nothing until then;
2. reconcile when needed: first contact, after any failure (a reconnect), when the
   peer restarted (its epoch changed) or said it lacks a full sync, and every
   ``full_seconds``. Reconciliation sends one digest per bucket and then only the
   buckets that differ (a whole bucket at a time, so deletions reach the peer too);
3. push material changes (a state, status or reason changed), at most one push per
   ``push_min_interval`` so bursts coalesce;
4. push refreshes (ages) and keep the peer informed we are alive every
   ``refresh_seconds``, even with nothing to say.

This machine's GPU summary rides along: in every reconciliation, and in a push when
the peer has not acknowledged its current ``seq`` yet. A peer that refuses the field
(an older hub: 422 on ``gpus``) gets none until it restarts.

A push is acknowledged by a 200 reply; until then its records stay pending (they are
everything after ``cursor``), so a lost request or a lost reply only means a resend,
which the receiver ignores as stale. The link never judges anything: whether a
peer's agents are fresh is the receiver side's business (hub.sync.merge).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from loguru import logger
from pydantic import BaseModel, ValidationError

from fleetobs import catalog
from fleetobs.tracing import DISABLED as TRACING_DISABLED
from fleetobs.tracing import Tracing
from hub.sync.protocol import (
    GpuSummary,
    HubIdentity,
    PushReply,
    PushRequest,
    ReconcileReply,
    ReconcileRequest,
    SyncError,
    WireRecord,
)
from hub.sync.records import AgentRecord, OwnedRecords, bucket_of
from hub.sync.server import PUSH_PATH, RECONCILE_PATH
from hub.sync.transport import Transport, TransportError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class SyncConfig:
    """Timings of sync (production defaults; tests drive a fake clock, not shorter ones)."""

    push_min_interval: float = 0.2
    refresh_seconds: float = 2.0
    full_seconds: float = 60.0
    #: A peer silent this long is stale: its agents show as ``unknown``, peer_up 0.
    stale_after_seconds: float = 8.0
    backoff_initial_seconds: float = 0.25
    backoff_max_seconds: float = 0.5
    buckets: int = 256
    max_records_per_push: int = 2_000
    #: Bodies stay under this (the hub's FLEET_MAX_BODY_BYTES defaults to 1 MiB).
    max_body_bytes: int = 960 * 1024
    timeout_seconds: float = 1.0


@dataclass
class LinkStats:
    """Outbound figures of one link (read by hub.sync.metrics)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    exchanges: Counter[str] = field(default_factory=Counter)  # push/reconcile that succeeded
    #: Histogram of exchange durations by kind: bucket counts, +Inf, sum.
    durations: dict[str, list[float]] = field(default_factory=dict)

    def observe(self, kind: str, seconds: float) -> None:
        row = self.durations.get(kind)
        if row is None:
            row = self.durations[kind] = [0.0] * (len(catalog.LATENCY_BUCKETS) + 2)
        row[bisect.bisect_left(catalog.LATENCY_BUCKETS, seconds)] += 1
        row[-1] += seconds


def _encode(rec: AgentRecord) -> bytes:
    return WireRecord.of(rec).model_dump_json().encode()


class _FailedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PeerLink:
    def __init__(self, url: str, owned: OwnedRecords, identity: Callable[[], HubIdentity],
                 transport: Transport, clock: Callable[[], float], config: SyncConfig,
                 token: str | None = None, tracing: Tracing = TRACING_DISABLED,
                 gpus: Callable[[], GpuSummary | None] | None = None, *, machine: str) -> None:
        self.url = url
        #: The peer's machine, from configuration (hub.sync.peers): the ``peer`` label from
        #: the first second, whether or not it ever answers.
        self.machine = machine
        self.netloc = urlsplit(url).netloc or url
        self.owned = owned
        self.identity = identity
        self.transport = transport
        self.clock = clock
        self.config = config
        self.tracing = tracing
        #: This machine's GPU summary now (None: nothing to send).
        self.gpus = gpus or (lambda: None)
        #: False once the peer refused the field (an older hub); True again when it restarts.
        self.send_gpus = True
        #: The GPU summary ``seq`` the peer acknowledged (reset when the peer changes).
        self.gpus_acked: int | None = None
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        #: The peer as it answered last (machine, epoch); None before first contact.
        self.peer: HubIdentity | None = None
        #: Our seq up to which the peer acknowledged everything.
        self.cursor = 0
        self.needs_full = True
        self.ok = False
        self.last_ok = float("-inf")
        self.last_push = float("-inf")
        self.last_full = float("-inf")
        self.next_attempt = float("-inf")
        self.last_error: str | None = None
        self._backoff = 0.0
        #: Bodies are kept under this; halved on a 413 (the peer's limit is lower than ours).
        self.body_budget = config.max_body_bytes
        self.stats = LinkStats()

    @property
    def label(self) -> str:
        """The ``peer`` label: the peer's machine (configured, never learned)."""
        return self.machine

    def pending_material(self) -> bool:
        return self.owned.material_seq > self.cursor

    def delay(self) -> float:
        """Seconds until :meth:`step` has something to do (0: now)."""
        now = self.clock()
        if now < self.next_attempt:
            return self.next_attempt - now
        c = self.config
        if self.needs_full:
            return 0.0
        if self.pending_material():
            return max(self.last_push + c.push_min_interval - now, 0.0)
        due = min(self.last_push + c.refresh_seconds, self.last_full + c.full_seconds)
        return max(due - now, 0.0)

    async def step(self) -> str | None:
        """At most one exchange with the peer; returns which (``push``/``reconcile``)."""
        now = self.clock()
        if now < self.next_attempt:
            return None
        c = self.config
        if self.needs_full or now - self.last_full >= c.full_seconds:
            kind = "reconcile"
        elif ((self.pending_material() and now - self.last_push >= c.push_min_interval)
              or now - self.last_push >= c.refresh_seconds):
            kind = "push"
        else:
            return None
        with self.tracing.sync_round(self.label) as span:
            span.set_attribute("fleet.sync.kind", kind)
            try:
                if kind == "reconcile":
                    await self._reconcile()
                else:
                    await self._push()
            except _FailedError as exc:
                span.set_attribute("fleet.sync.failure", exc.reason)
                self._failed(exc.reason)
                return None
        self.stats.exchanges[kind] += 1
        self.stats.observe(kind, self.clock() - now)
        self.ok = True
        self.last_ok = self.clock()
        self.last_error = None
        self._backoff = 0.0
        return kind

    def _failed(self, reason: str) -> None:
        if self.ok:
            logger.warning("sync to {} failing: {}", self.url, reason)
        self.stats.failures[reason] += 1
        self.ok = False
        self.last_error = reason
        self.needs_full = True  # whatever happened, the next contact is a reconnect
        c = self.config
        self._backoff = min(max(self._backoff * 2, c.backoff_initial_seconds), c.backoff_max_seconds)
        self.next_attempt = self.clock() + self._backoff

    # --- exchanges ---------------------------------------------------------------------
    async def _post(self, path: str, body: BaseModel | bytes, reply_model: type[M]) -> M:
        data = body if isinstance(body, bytes) else body.model_dump_json(exclude_none=True).encode()
        self.stats.bytes_sent += len(data)
        self.stats.requests += 1
        try:
            reply = await self.transport.post(self.url, path, data, self._headers)
        except TransportError as exc:
            raise _FailedError(exc.reason) from None
        self.stats.bytes_received += len(reply.body)
        if reply.status == 413:
            self.body_budget = max(self.body_budget // 2, 16 * 1024)
        if reply.status != 200:
            reason = f"http_{reply.status}" if reply.status in (401, 404, 413, 422) else (
                f"http_{reply.status // 100}xx")
            if reply.status == 409:
                try:
                    reason = SyncError.model_validate_json(reply.body).detail.rpartition(": ")[2]
                except ValidationError:
                    reason = "http_4xx"
                reason = reason if reason in ("stale_epoch", "self_owner", "unknown_machine") else "http_4xx"
            if reply.status == 422:
                self._refused_field(reply.body)
            raise _FailedError(reason)
        try:
            parsed = reply_model.model_validate_json(reply.body)
        except ValidationError:
            raise _FailedError("bad_reply") from None
        return parsed

    def _met(self, receiver: HubIdentity) -> bool:
        """Note who answered; True (and a reconciliation due) when the peer changed."""
        if receiver.machine == self.owned.owner:
            raise _FailedError("self_owner")  # a URL that points back at this hub
        if receiver.machine != self.machine:
            # The URL reaches another machine's hub than configured: never count it as this
            # peer (its records still merge by their owner, on the receiving side).
            if self.last_error != "wrong_machine":
                logger.warning("sync: {} answers as {}, configured as {}'s hub", self.url,
                               receiver.machine, self.machine)
            raise _FailedError("wrong_machine")
        changed = self.peer is not None and (receiver.machine, receiver.epoch) != (
            self.peer.machine, self.peer.epoch)
        if changed:
            logger.info("peer {} is now {} epoch {}", self.url, receiver.machine, receiver.epoch)
            self.needs_full = True
            self.send_gpus, self.gpus_acked = True, None
        self.peer = receiver
        return changed

    def _refused_field(self, body: bytes) -> None:
        try:
            detail = SyncError.model_validate_json(body).detail
        except ValidationError:
            return
        if detail.startswith("gpus") and self.send_gpus:
            logger.warning("sync to {}: peer refuses GPU summaries ({}); not sending them",
                           self.url, detail)
            self.send_gpus = False

    def _gpus_now(self, *, unless_acked: bool) -> GpuSummary | None:
        """The GPU summary to send, or None (none, refused, or already acknowledged)."""
        if not self.send_gpus:
            return None
        summary = self.gpus()
        if summary is None or (unless_acked and summary.seq == self.gpus_acked):
            return None
        return summary

    def _body(self, records: list[bytes], *, buckets: int = 0, replace: Sequence[int] = (),
              complete: bool = False, gpus: GpuSummary | None = None) -> bytes:
        """A PushRequest body from records already encoded (each encoded once)."""
        # "records" is the first list in the JSON and strings escape quotes: the
        # partition below cannot match inside the GPU summary.
        head = PushRequest.model_construct(
            sender=self.identity(), as_of=self.owned.seq, records=[], buckets=buckets,
            replace_buckets=list(replace), complete=complete,
            gpus=gpus).model_dump_json(exclude_none=True).encode()
        before, _, after = head.partition(b'"records":[]')
        return before + b'"records":[' + b",".join(records) + b"]" + after

    def _fits(self, count: int, size: int) -> bool:
        return count < self.config.max_records_per_push and size < self.body_budget - 1024

    async def _push(self) -> None:
        self.last_push = self.clock()
        records = self.owned.since(self.cursor, self.clock())
        gpus = self._gpus_now(unless_acked=True)
        head: list[bytes] = []
        size = 0 if gpus is None else len(gpus.model_dump_json(exclude_none=True))
        for rec in records:
            data = _encode(rec)
            if head and not self._fits(len(head) + 1, size + len(data) + 1):
                break
            head.append(data)
            size += len(data) + 1
        more = len(head) < len(records)
        top = records[len(head) - 1].version.seq if more else self.owned.seq
        reply = await self._post(PUSH_PATH, self._body(head, gpus=gpus), PushReply)
        self._met(reply.receiver)
        if gpus is not None:  # whoever answered applied this body
            self.gpus_acked = gpus.seq
        self.cursor = max(self.cursor, top)
        if reply.need_full:
            self.needs_full = True

    async def _reconcile(self) -> None:
        now = self.clock()
        self.last_push = self.last_full = now
        buckets = self.config.buckets
        as_of = self.owned.seq
        gpus = self._gpus_now(unless_acked=False)
        req = ReconcileRequest.model_construct(
            sender=self.identity(), as_of=as_of, count=len(self.owned),
            digests=await self.owned.digests_in_steps(buckets), gpus=gpus)
        reply = await self._post(RECONCILE_PATH, req, ReconcileReply)
        self._met(reply.receiver)
        if gpus is not None:
            self.gpus_acked = gpus.seq
        restarted = False
        differing = sorted({b for b in reply.differing if 0 <= b < buckets})
        if differing:
            # Whole buckets per body (a bucket's absentees are deletions), bodies bounded.
            by_bucket: dict[int, list[bytes]] = {b: [] for b in differing}
            for rec in self.owned.in_buckets(set(differing), buckets, self.clock()):
                by_bucket[bucket_of(rec.name, buckets)].append(_encode(rec))
            chunks: list[tuple[list[int], list[bytes], int]] = [([], [], 0)]
            for b in differing:
                recs = by_bucket[b]
                size = sum(len(r) + 1 for r in recs)
                bs, cur, cur_size = chunks[-1]
                if bs and not self._fits(len(cur) + len(recs), cur_size + size):
                    chunks.append(([], [], 0))
                    bs, cur, cur_size = chunks[-1]
                bs.append(b)
                cur.extend(recs)
                chunks[-1] = (bs, cur, cur_size + size)
            for i, (bs, recs, _) in enumerate(chunks):
                last = i == len(chunks) - 1
                push = await self._post(PUSH_PATH, self._body(
                    recs, buckets=buckets, replace=bs, complete=last), PushReply)
                restarted |= self._met(push.receiver)
        self.cursor = max(self.cursor, as_of)
        self.needs_full = restarted
