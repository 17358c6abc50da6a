"""Where batches wait while Loki cannot take them: on disk (:class:`DiskSpool`), or
in memory when no spool directory is configured (:class:`MemoryOutbox`).

Both are FIFO queues of batches capped in bytes; when full, the oldest batches
go first (their lines are counted as dropped). A batch split after a 413 takes
its parent's place at the head, so lines leave in the order they came.
On disk each batch is one file ``<seq>.batch`` (a JSON header line, then the
gzip body exactly as it will be POSTed), written to a temporary name and renamed,
so a crash leaves whole batches only. Files left by an earlier run are replayed.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from fleetobs.logs.batch import Batch


class Outbox(Protocol):
    @property
    def nbytes(self) -> int: ...

    def __len__(self) -> int: ...

    def append(self, batch: Batch) -> int:
        """Queue ``batch`` at the tail; return the number of lines dropped to fit it."""

    def peek(self) -> Batch | None:
        """The head batch, or None when empty (unreadable heads are discarded)."""

    def pop(self) -> None: ...

    def replace_head(self, parts: Sequence[Batch]) -> None:
        """Put ``parts`` (in order) where the head batch was."""

    def close(self) -> None:
        """Release what the outbox holds open (the spool's lock); what it queued stays."""


class SpoolBusyError(OSError):
    pass


class MemoryOutbox:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._q: deque[Batch] = deque()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._q)

    def append(self, batch: Batch) -> int:
        size = len(batch.body)
        if size > self.max_bytes:
            return batch.lines
        dropped = 0
        while self._q and self._bytes + size > self.max_bytes:
            dropped += self._q[0].lines
            self.pop()
        self._q.append(batch)
        self._bytes += size
        return dropped

    def peek(self) -> Batch | None:
        return self._q[0] if self._q else None

    def pop(self) -> None:
        if self._q:
            self._bytes -= len(self._q.popleft().body)

    def replace_head(self, parts: Sequence[Batch]) -> None:
        self.pop()
        for b in reversed(parts):
            self._q.appendleft(b)
            self._bytes += len(b.body)

    def close(self) -> None:
        pass


class DiskSpool:
    """A directory of batch files, oldest first by name."""

    SUFFIX = ".batch"

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        # One process per spool: a second one would replay (and delete) the first's files.
        self._lock_file: IO[bytes] | None = open(directory / ".lock", "ab")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise SpoolBusyError(f"{directory} is in use by another process") from None
        for tmp in directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # a write cut short by a crash
        files = sorted(directory.glob(f"*{self.SUFFIX}"), key=lambda p: p.name)
        self._names: deque[str] = deque(p.name for p in files)
        self._sizes: dict[str, int] = {p.name: p.stat().st_size for p in files}
        self._bytes = sum(self._sizes.values())
        self._seq = 1 + max((int(n.split(".")[0]) for n in self._names if n.split(".")[0].isdigit()),
                            default=0)
        self._head: Batch | None = None
        #: Lines in files that could not be read back (counted, then deleted).
        self.corrupt_lines = 0
        # The sender thread owns the spool, except when shutdown abandons a stuck sender.
        self._mutex = threading.RLock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._names)

    def _append(self, batch: Batch) -> int:
        body = batch.body
        header = json.dumps({"lines": batch.lines, "oldest_ns": batch.oldest_ns,
                             "newest_ns": batch.newest_ns}).encode() + b"\n"
        size = len(header) + len(body)
        if size > self.max_bytes:
            return batch.lines
        dropped = 0
        while self._names and self._bytes + size > self.max_bytes:
            head = self.peek()
            dropped += head.lines if head is not None else 0
            self.pop()
        name = f"{self._seq:016d}{self.SUFFIX}"
        self._seq += 1
        self._write(name, header + body)
        self._names.append(name)
        return dropped

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.directory / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.directory / name)
        self._sizes[name] = len(data)
        self._bytes += len(data)

    def _peek(self) -> Batch | None:
        while self._head is None and self._names:
            name = self._names[0]
            try:
                raw = (self.directory / name).read_bytes()
                header_raw, body = raw.split(b"\n", 1)
                h = json.loads(header_raw)
                self._head = Batch.from_body(body, int(h["lines"]), int(h["oldest_ns"]),
                                             int(h["newest_ns"]))
            except (OSError, ValueError, KeyError, TypeError):
                self.corrupt_lines += 1  # the line count is unknowable; count the file
                self.pop()
        return self._head

    def _pop(self) -> None:
        if not self._names:
            return
        name = self._names.popleft()
        self._head = None
        (self.directory / name).unlink(missing_ok=True)
        self._bytes -= self._sizes.pop(name, 0)

    def _replace_head(self, parts: Sequence[Batch]) -> None:
        if not self._names:
            return
        stem = self._names[0].removesuffix(self.SUFFIX)
        self.pop()
        # "<stem>.0" and "<stem>.1" sort after nothing older and before "<stem+1>".
        for i, b in reversed(list(enumerate(parts))):
            name = f"{stem}.{i}{self.SUFFIX}"
            header = json.dumps({"lines": b.lines, "oldest_ns": b.oldest_ns,
                                 "newest_ns": b.newest_ns}).encode() + b"\n"
            self._write(name, header + b.body)
            self._names.appendleft(name)

    def append(self, batch: Batch) -> int:
        with self._mutex:
            return self._append(batch)

    def peek(self) -> Batch | None:
        with self._mutex:
            return self._peek()

    def pop(self) -> None:
        with self._mutex:
            self._pop()

    def replace_head(self, parts: Sequence[Batch]) -> None:
        with self._mutex:
            self._replace_head(parts)

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None
