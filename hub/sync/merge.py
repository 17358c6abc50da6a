"""What this hub holds of its peers' records, and the rules for accepting them.

Accept rules (each one keeps retries, duplicates and reordering harmless):

* a body from this hub's own machine is refused (nobody else owns our agents);
* every record must be owned by the sender and be on the sender's machine
  (a forged owner is refused record by record);
* a body from an older epoch of the sender than the one held is stale, unless that
  epoch has gone silent for longer than ``stale_after`` (the owner came back with a
  lower epoch, e.g. a wiped disk and a clock set back);
* a record replaces the held one only if its version is strictly newer;
* a reconciliation body replaces whole buckets: a held record missing from such a
  bucket is dropped only if its version is not newer than the body's ``as_of``.

Times are this hub's monotonic seconds: a record's age at send time becomes
``seen_at = now - age`` on arrival; nothing here reads a wall clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hub.sync.records import AgentRecord, Version, bucket_digests, bucket_of


class Reject(StrEnum):
    """Why a body or record was refused (bounded: a metric label)."""

    SELF = "self_owner"  # a peer claims to be this hub or to own this hub's agents
    FORGED = "forged_owner"  # a record not owned by its sender
    STALE_EPOCH = "stale_epoch"  # a body from an older run of the sender
    BAD_VERSION = "bad_version"  # a record's version outside the body's epoch/as_of
    UNKNOWN_MACHINE = "unknown_machine"  # sender is not a machine of the topology


@dataclass(slots=True)
class Held:
    record: AgentRecord
    #: This hub's monotonic time of the owner's last observation (None: never seen).
    seen_at: float | None


@dataclass(slots=True)
class OwnerView:
    """Everything held from one owner (a peer machine)."""

    machine: str
    epoch: int
    records: dict[str, Held] = field(default_factory=dict)
    #: Monotonic time of the last valid body from this owner.
    last_heard: float = float("-inf")
    #: A reconciliation of the current epoch completed (else the owner should send one).
    synced: bool = False
    restarts: int = 0

    def versions(self) -> Iterator[tuple[str, Version]]:
        return ((n, h.record.version) for n, h in self.records.items())


@dataclass(slots=True)
class MergeResult:
    accepted: int = 0
    stale: int = 0
    removed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: The whole body was refused (reason in ``rejected``).
    refused: bool = False
    need_full: bool = False
    #: The sender runs a new epoch (it restarted and holds nothing of ours).
    restarted: bool = False

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


class FleetView:
    """The peers' records held by the hub on ``machine``. Call from one thread only."""

    def __init__(self, machine: str, stale_after: float,
                 known_machines: Iterable[str] | None = None) -> None:
        self.machine = machine
        self.stale_after = stale_after
        self.known = frozenset(known_machines) if known_machines is not None else None
        self.owners: dict[str, OwnerView] = {}

    def fresh(self, owner: str, now: float) -> bool:
        v = self.owners.get(owner)
        return v is not None and now - v.last_heard <= self.stale_after

    # --- incoming bodies -------------------------------------------------------------
    def _admit(self, machine: str, epoch: int, now: float, result: MergeResult) -> OwnerView | None:
        """The view for a body's sender, or None (and why in ``result``) if refused."""
        if machine == self.machine:
            result.rejected[Reject.SELF] += 1
        elif self.known is not None and machine not in self.known:
            result.rejected[Reject.UNKNOWN_MACHINE] += 1
        else:
            view = self.owners.get(machine)
            if view is None:
                view = self.owners[machine] = OwnerView(machine, epoch)
            elif epoch != view.epoch:
                if epoch < view.epoch and now - view.last_heard <= self.stale_after:
                    result.rejected[Reject.STALE_EPOCH] += 1
                    result.refused = True
                    return None
                # The owner restarted: its old records stay (last known) until its
                # reconciliation replaces them.
                if epoch < view.epoch:
                    # Versions of the abandoned run must not outrank the new run's.
                    floor = Version(epoch, 0)
                    for held in view.records.values():
                        held.record = replace(held.record, version=floor)
                view.epoch = epoch
                view.synced = False
                view.restarts += 1
                result.restarted = True
            view.last_heard = now
            return view
        result.refused = True
        return None

    def apply_push(self, sender: str, epoch: int, as_of: int, records: Iterable[AgentRecord],
                   now: float, *, buckets: int = 0, replace: Iterable[int] = (),
                   complete: bool = False) -> MergeResult:
        result = MergeResult()
        view = self._admit(sender, epoch, now, result)
        if view is None:
            return result
        ceiling = Version(epoch, as_of)
        present: set[str] = set()
        for rec in records:
            f = rec.facts
            if self.machine in (f.machine, rec.owner):
                result.rejected[Reject.SELF] += 1
                continue
            if rec.owner != sender or f.machine != sender:
                result.rejected[Reject.FORGED] += 1
                continue
            if rec.version.epoch != epoch or rec.version > ceiling:
                result.rejected[Reject.BAD_VERSION] += 1
                continue
            present.add(f.name)
            held = view.records.get(f.name)
            if held is not None and rec.version <= held.record.version:
                result.stale += 1
                continue
            seen = None if rec.age_seconds is None else now - rec.age_seconds
            view.records[f.name] = Held(rec, seen)
            result.accepted += 1
        wanted = set(replace)
        if buckets > 0 and wanted:
            for name in [n for n, h in view.records.items()
                         if n not in present and h.record.version <= ceiling
                         and bucket_of(n, buckets) in wanted]:
                del view.records[name]
                result.removed += 1
        if complete:
            view.synced = True
        result.need_full = not view.synced
        return result

    def differing(self, sender: str, epoch: int, digests: list[str], now: float) -> tuple[list[int], MergeResult]:
        """Buckets whose held contents differ from the owner's ``digests``."""
        result = MergeResult()
        view = self._admit(sender, epoch, now, result)
        if view is None:
            return [], result
        mine = bucket_digests(view.versions(), len(digests))
        diff = [i for i, (a, b) in enumerate(zip(mine, digests, strict=True)) if a != b]
        if not diff:
            view.synced = True
        return diff, result
