"""The owned, versioned agent record, and the owner's log of its own records.

An agent record belongs to the hub that observes the agent (its *owner*, named by
the owner's machine). Only the owner advances its version ``(epoch, seq)``:

* ``epoch`` is fixed for one run of the owner and grows across restarts
  (:func:`next_epoch`), so records of an older run never win over a newer one;
* ``seq`` grows by one with every change the owner makes, across all its records.

Time never crosses machines as a timestamp: a record carries the *age* of its last
observation when it is sent; the receiver turns that into its own monotonic clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class Version(NamedTuple):
    """Compared as a tuple: a later epoch wins, then a later seq."""

    epoch: int
    seq: int


ZERO = Version(0, 0)


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What the owner says about one agent (everything but time and version)."""

    name: str
    machine: str
    state: str  # the owner's judgement (hub.liveness.State value)
    status: str | None = None  # what the agent last reported (ok/degraded/error)
    reason: str | None = None
    source: str | None = None  # heartbeat, probe, sidecar, self
    group: str | None = None
    required: bool = False
    kind: str = "expected"  # expected, unknown, foreign (hub.registry.Kind)
    endpoint: str | None = None
    interval_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One record as it travels: facts, owner, version and the age at send time."""

    owner: str
    version: Version
    facts: AgentFacts
    #: Seconds since the owner last observed the agent, measured when sent; None: never.
    age_seconds: float | None

    @property
    def name(self) -> str:
        return self.facts.name


#: Records per step of :meth:`OwnedRecords.digests_in_steps` (~2 ms of work each).
DIGEST_STEP = 2000


def bucket_of(name: str, buckets: int) -> int:
    """Stable across processes (``hash()`` is salted per process)."""
    return zlib.crc32(name.encode()) % buckets


def bucket_digests(versions: Iterator[tuple[str, Version]], buckets: int) -> list[str]:
    """One short digest per bucket over ``name@epoch.seq``: equal digests, equal contents."""
    lines: list[list[str]] = [[] for _ in range(buckets)]
    for name, v in versions:
        lines[bucket_of(name, buckets)].append(_line(name, v))
    return _hash_buckets(lines)


def _line(name: str, v: Version) -> str:
    return f"{name}@{v.epoch}.{v.seq}"


def _hash_buckets(lines: list[list[str]]) -> list[str]:
    out = []
    for bucket in lines:
        bucket.sort()
        out.append(hashlib.blake2b("\n".join(bucket).encode(), digest_size=8).hexdigest()
                   if bucket else "")
    return out


@dataclass(slots=True)
class _Owned:
    facts: AgentFacts
    version: Version
    observed_at: float | None  # the owner's monotonic seconds


class OwnedRecords:
    """This hub's own records, in version order (the last change last).

    A change of facts is *material* (peers want it within about a second); a new
    observation with the same facts only refreshes the age (sent with the next
    periodic push). Both advance the version.
    """

    def __init__(self, owner: str, epoch: int) -> None:
        self.owner = owner
        self.epoch = epoch
        self.seq = 0
        #: The seq of the latest material change.
        self.material_seq = 0
        # dict order is version order: put() moves the changed entry to the end.
        self._entries: dict[str, _Owned] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def version(self) -> Version:
        return Version(self.epoch, self.seq)

    def put(self, facts: AgentFacts, observed_at: float | None) -> bool:
        """Record what is known of ``facts.name``; returns whether it was material."""
        old = self._entries.pop(facts.name, None)
        if old is not None and old.facts == facts and old.observed_at == observed_at:
            self._entries[facts.name] = old  # unchanged: keep its version and place
            return False
        material = old is None or old.facts != facts
        self.seq += 1
        if material:
            self.material_seq = self.seq
        self._entries[facts.name] = _Owned(facts, Version(self.epoch, self.seq), observed_at)
        return material

    def get(self, name: str) -> AgentRecord | None:
        e = self._entries.get(name)
        return None if e is None else self._record(e, None)

    def since(self, seq: int, now: float) -> list[AgentRecord]:
        """Records changed after ``seq`` (of this epoch), oldest change first."""
        out: list[AgentRecord] = []
        for e in reversed(self._entries.values()):
            if e.version.seq <= seq:
                break
            out.append(self._record(e, now))
        out.reverse()
        return out

    def in_buckets(self, wanted: set[int], buckets: int, now: float) -> list[AgentRecord]:
        return [self._record(e, now) for name, e in self._entries.items()
                if bucket_of(name, buckets) in wanted]

    async def digests_in_steps(self, buckets: int, step: int = DIGEST_STEP) -> list[str]:
        """:func:`bucket_digests` of the records as they are now, computed ``step`` records
        at a time with a turn of the event loop in between (20,000 records held it ~100 ms)."""
        versions = [(n, e.version) for n, e in self._entries.items()]  # one consistent snapshot
        lines: list[list[str]] = [[] for _ in range(buckets)]
        for start in range(0, len(versions), step):
            if start:
                await asyncio.sleep(0)
            for name, v in versions[start:start + step]:
                lines[bucket_of(name, buckets)].append(_line(name, v))
        await asyncio.sleep(0)
        return _hash_buckets(lines)

    def _record(self, e: _Owned, now: float | None) -> AgentRecord:
        age = None if e.observed_at is None or now is None else max(now - e.observed_at, 0.0)
        return AgentRecord(self.owner, e.version, e.facts, age)


def next_epoch(path: Path | None, wall: float) -> int:
    """This run's epoch: above every earlier run's, persisted in ``path`` when given.

    Wall-clock milliseconds keep epochs growing even without a file; the file keeps
    them growing when the wall clock goes back. Only this hub's own epochs are ever
    compared, so clock skew between machines does not matter.
    """
    previous = 0
    if path is not None:
        try:
            previous = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            previous = 0
    epoch = max(previous + 1, int(wall * 1000))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"{epoch}\n")
            tmp.replace(path)
        except OSError:
            pass  # telemetry keeps running; the wall clock still orders epochs
    return epoch
