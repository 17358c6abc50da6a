"""Peers' GPU summaries: the latest per owner machine, and the rules for accepting one.

A summary (hub.sync.protocol.GpuSummary) travels in push and reconcile bodies. Its
version is ``(sender epoch, seq)``: the owner's hub bumps ``seq`` with every new
reading of its exporter. A receiver keeps, per owner machine, only a strictly newer
version (a new epoch always wins: the body was admitted, so its epoch is the current
one), so duplicates, retries and reordering are harmless. A summary must be owned by
its sender and never claim this hub's machine (``forged_owner`` / ``self_owner``).

Like agent records, time arrives as an age: ``seen_at = now - age`` on this hub's
monotonic clock; wall clocks are never compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.sync.merge import Reject
from hub.sync.protocol import GpuSummary

Outcome = Literal["accepted", "stale"] | Reject


@dataclass(frozen=True, slots=True)
class HeldGpus:
    summary: GpuSummary
    epoch: int
    #: This hub's monotonic time of the owner's reading (None: the owner has none).
    seen_at: float | None


class GpuViews:
    """Peers' GPU summaries held by the hub on ``machine``. Call from one thread only."""

    def __init__(self, machine: str) -> None:
        self.machine = machine
        self.held: dict[str, HeldGpus] = {}

    def apply(self, sender: str, epoch: int, summary: GpuSummary, now: float) -> Outcome:
        """Take ``summary`` from an admitted body of ``sender`` (its epoch ``epoch``)."""
        if summary.machine == self.machine:
            return Reject.SELF
        if summary.machine != sender:
            return Reject.FORGED
        held = self.held.get(sender)
        if held is not None and held.epoch == epoch and summary.seq <= held.summary.seq:
            return "stale"
        seen = None if summary.age_seconds is None else now - summary.age_seconds
        self.held[sender] = HeldGpus(summary, epoch, seen)
        return "accepted"
