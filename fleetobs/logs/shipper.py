"""The log shipper: a bounded buffer in front of one background sender thread.

Callers (the loguru sink, the logging handler, the hub's ``/v1/logs``) only
:meth:`LogShipper.submit`. The sender batches what is buffered (about
``batch_max_bytes`` or ``batch_wait_seconds``, whichever comes first), POSTs it
and decides, per Loki's answer, to count it sent, drop it (400/4xx: never
retried), split it (413) or keep it for a retry (429/5xx/transport error) with
jittered exponential backoff that honours ``Retry-After``.

While a retry is pending the shipper is *offline*: the failed batch and every
batch after it go to the outbox (the disk spool, if configured) in order, and
the head of the outbox is retried when its backoff expires; once the outbox is
empty again, new lines go straight out. So lines leave in the order they came,
and no line is sent twice by us (Loki itself drops exact duplicates).
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetobs.logs import stats as reasons
from fleetobs.logs.batch import Batch, BatchEncoder
from fleetobs.logs.buffer import LogBuffer
from fleetobs.logs.model import LogEntry
from fleetobs.logs.push import LokiClient, Outcome, PushResult
from fleetobs.logs.spool import DiskSpool, MemoryOutbox, Outbox
from fleetobs.logs.stats import ShipperCollector, ShipperStats

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from fleetobs.settings import FleetSettings

MiB = 1024 * 1024
#: Loki's default reject_old_samples_max_age is 168 h; stay an hour inside it.
DEFAULT_MAX_AGE_SECONDS = 167 * 3600.0


@dataclass(frozen=True)
class ShipperConfig:
    url: str
    tenant: str | None = None
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    batch_max_bytes: int = 1 * MiB
    batch_wait_seconds: float = 1.0
    timeout_seconds: float = 10.0
    min_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 300.0
    max_retry_after_seconds: float = 600.0  # a Retry-After beyond this is capped here
    buffer_max_bytes: int = 16 * MiB
    buffer_max_lines: int = 100_000
    spool_dir: Path | None = None  # None: failed batches wait in memory instead
    spool_max_bytes: int = 256 * MiB
    memory_outbox_max_bytes: int = 16 * MiB
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    structured_metadata: bool = False
    summary_interval_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: FleetSettings, *, spool_name: str | None = None,
                      **overrides: Any) -> ShipperConfig | None:
        """None without FLEET_LOKI_URL: then nothing is shipped and nothing buffered.

        The disk spool is ``FLEET_DATA_DIR/loki-spool/<spool_name>`` (default: the
        machine); each process needs its own, so agents pass their name.
        """
        if not settings.loki_url:
            return None
        auth = None
        if settings.loki_username is not None:
            auth = (settings.loki_username, settings.loki_password or "")
        values: dict[str, Any] = {
            "url": settings.loki_url, "tenant": settings.loki_tenant, "basic_auth": auth,
            "bearer_token": settings.loki_bearer_token,
            "structured_metadata": settings.loki_structured_metadata,
            "buffer_max_bytes": settings.loki_buffer_max_bytes,
            "spool_max_bytes": settings.loki_spool_max_bytes,
            "spool_dir": (settings.data_dir / "loki-spool" / (spool_name or settings.machine)
                          if settings.loki_spool_max_bytes else None),
        }
        values.update(overrides)
        return cls(**values)


def _stderr_notice(text: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(text + "\n")


class LogShipper:
    """Owns the buffer, the outbox and the sender thread. ``submit`` is thread-safe."""

    def __init__(self, config: ShipperConfig, *, client: LokiClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock_ns: Callable[[], int] = time.time_ns,
                 rng: random.Random | None = None,
                 notice: Callable[[str], None] = _stderr_notice,
                 tracer: Tracer | None = None) -> None:
        self.config = config
        self._client = client or LokiClient(
            config.url, tenant=config.tenant, basic_auth=config.basic_auth,
            bearer_token=config.bearer_token, timeout_seconds=config.timeout_seconds)
        self._clock = clock
        self._wall_ns = wall_clock_ns
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._notice = notice
        self._tracer = tracer
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self.buffer = LogBuffer(config.buffer_max_bytes, config.buffer_max_lines,
                                wake_bytes=config.batch_max_bytes, on_wake=self._wake.set)
        # The disk spool (if configured) is opened by start(): until then nothing is held.
        self.outbox: Outbox = MemoryOutbox(config.memory_outbox_max_bytes)
        self._spools_to_disk = False
        self._encoder = BatchEncoder(structured_metadata=config.structured_metadata)
        self.stats = ShipperStats()
        self._attempt = 0
        self._next_attempt = 0.0
        self._last_spill = clock()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._started = self._stopped = False
        self._in_flight = 0  # lines taken from the buffer and not yet sent or queued
        self._reported_drops = 0
        self._last_summary = float("-inf")
        self._last_failure_notice = float("-inf")

    # --- caller side ---------------------------------------------------------------
    def submit(self, entry: LogEntry) -> bool:
        """Queue one line; O(1), never blocks on I/O, never raises."""
        return self.buffer.append(entry)

    def collector(self) -> ShipperCollector:
        return ShipperCollector(self.stats, self.dropped, lambda: self.buffer.lines,
                                lambda: self.buffer.bytes, lambda: self.outbox.nbytes)

    def dropped(self) -> dict[str, int]:
        """Lines dropped so far, by reason (buffer and sender together)."""
        out = self.stats.snapshot_dropped()
        for reason, n in list(self.buffer.dropped.items()):
            out[reason] = out.get(reason, 0) + n
        corrupt = getattr(self.outbox, "corrupt_lines", 0)
        if corrupt:
            out[reasons.SPOOL_CORRUPT] = out.get(reasons.SPOOL_CORRUPT, 0) + corrupt
        return out

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        with self._state_lock:
            if self._started or self._stopped:
                return
            self._started = True
            self._open_spool()
            self._thread = threading.Thread(target=self._run, name="fleetobs-loki-sender",
                                            daemon=True)
            self._thread.start()

    def _open_spool(self) -> None:
        cfg = self.config
        if cfg.spool_dir is None or self._spools_to_disk:
            return
        try:
            self.outbox = DiskSpool(cfg.spool_dir, cfg.spool_max_bytes)
            self._spools_to_disk = True
        except OSError as exc:  # busy or unwritable: ship anyway, without a disk spool
            self._notice(f"fleetobs log shipper: no disk spool ({exc}); "
                         "failed batches wait in memory")

    def stop(self, deadline_seconds: float) -> None:
        """Send what is left within ``deadline_seconds``; spool (or count) the rest.
        Idempotent: later calls return at once."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        start = self._clock()
        # Keep a slice of the deadline for writing leftovers to the spool.
        margin = min(0.5, deadline_seconds / 4)
        self._deadline = start + max(0.0, deadline_seconds - margin)
        self._stopping.set()
        self._wake.set()
        if thread is not None:
            thread.join(max(0.0, start + deadline_seconds - margin / 2 - self._clock()))
            if thread.is_alive():  # stuck in a request that started before stop()
                self._abandon()
                return
        else:
            if self.buffer.lines:
                self._open_spool()  # never started: keep what was logged for the next run
            self._finish()
        self._client.close()

    def _abandon(self) -> None:
        """The sender is stuck at the deadline: keep what is buffered ourselves."""
        rest = self.buffer.close()
        if self._spools_to_disk:  # the spool is thread-safe; a fresh encoder, not the sender's
            encoder = BatchEncoder(structured_metadata=self.config.structured_metadata)
            for i in range(0, len(rest), 10_000):
                batch = encoder.encode(rest[i:i + 10_000])
                if batch is not None:
                    self.stats.drop(reasons.SPOOL_FULL, self.outbox.append(batch))
        else:
            self.stats.drop(reasons.SHUTDOWN, len(rest))
        # The batch in the stuck request may yet be sent or spooled if the process lives
        # on; count it as lost now rather than risk losing it silently.
        self.stats.drop(reasons.SHUTDOWN, self._in_flight)
        self._notice(f"fleetobs log shipper: a push outlived the shutdown deadline; "
                     f"{len(rest)} buffered lines {'spooled' if self._spools_to_disk else 'dropped'}, "
                     f"{self._in_flight} in flight counted as dropped")

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is buffered or waiting for a retry (tests, benchmarks)."""
        end = self._clock() + timeout
        with self._idle:
            while self.buffer.lines or len(self.outbox) or self._in_flight:
                left = end - self._clock()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    # --- sender thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception as exc:  # noqa: BLE001 - a bug here must not end shipping
                    now = self._clock()
                    if now - self._last_failure_notice >= 60.0:  # one line a minute at most
                        self._last_failure_notice = now
                        self._notice(f"fleetobs log shipper: sender step failed: {exc!r}")
                    self._sleep(self.config.batch_wait_seconds)
                self._summarise()
            self._drain()
        except Exception as exc:  # noqa: BLE001 - telemetry must never take its host down
            self._notice(f"fleetobs log shipper: sender thread failed: {exc!r}")
        finally:
            self._finish()
            self._summarise(force=True)

    def _step(self) -> None:
        cfg = self.config
        if len(self.outbox):
            now = self._clock()
            if now >= self._next_attempt:
                self._attempt_head()
                return
            if self._spools_to_disk:
                self._spill(now)
            self._sleep(min(self._next_attempt - now, cfg.batch_wait_seconds))
            return
        if self.buffer.bytes < cfg.batch_max_bytes:
            self._sleep(cfg.batch_wait_seconds)
        if self._stopping.is_set():
            return
        entries = self.buffer.take(cfg.batch_max_bytes)
        if entries:
            self._in_flight = len(entries)
            try:
                batch = self._encoder.encode(entries)
                if batch is not None:
                    self._send(batch, None)
            finally:
                self._in_flight = 0
        else:
            self._notify_idle()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)
        self._wake.clear()

    def _spill(self, now: float) -> None:
        """Offline with a disk spool: ready batches go behind the failed one, in order."""
        cfg = self.config
        while self.buffer.bytes >= cfg.batch_max_bytes or (
                self.buffer.lines and now - self._last_spill >= cfg.batch_wait_seconds):
            batch = self._encoder.encode(self.buffer.take(cfg.batch_max_bytes))
            if batch is not None:
                self.stats.drop(reasons.SPOOL_FULL, self.outbox.append(batch))
            self._last_spill = now

    def _attempt_head(self, timeout: float | None = None) -> None:
        head = self.outbox.peek()
        if head is None:
            return
        self._in_flight = head.lines  # wait_idle must not see the outbox between states
        try:
            self._try_head(head, timeout)
        finally:
            self._in_flight = 0

    def _try_head(self, head: Batch, timeout: float | None) -> None:
        cutoff = self._wall_ns() - int(self.config.max_age_seconds * 1e9)
        kept, too_old = head.without_older_than(cutoff)
        if too_old:
            self.stats.drop(reasons.TOO_OLD, too_old)
            if kept is None:
                self.outbox.pop()
                return
            self.outbox.replace_head([kept])
            head = kept
        left, result = self._deliver(head, timeout)
        if not left:
            self.outbox.pop()
            self._attempt = 0
            self._notify_idle()
        else:
            if left != [head]:
                self.outbox.replace_head(left)
            self._backoff(result)

    def _send(self, batch: Batch, timeout: float | None) -> None:
        left, result = self._deliver(batch, timeout)
        if left:
            for b in left:
                self.stats.drop(reasons.SPOOL_FULL, self.outbox.append(b))
            self._last_spill = self._clock()
            self._backoff(result)

    def _deliver(self, batch: Batch, timeout: float | None) -> tuple[list[Batch], PushResult]:
        """Push ``batch`` (splitting on 413). Returns what still needs a retry, in order."""
        result = self._push(batch, timeout)
        if result.outcome is Outcome.SENT:
            self.stats.sent(batch.lines, len(batch.body))
            return [], result
        if result.outcome is Outcome.RETRY:
            self.stats.retry(result.reason)
            return [batch], result
        if result.outcome is Outcome.TOO_LARGE and batch.lines > 1:
            first, second = batch.split()
            left, result = self._deliver(first, timeout)
            if left:
                return [*left, second], result
            return self._deliver(second, timeout)
        reason = reasons.TOO_LARGE if result.outcome is Outcome.TOO_LARGE else reasons.REJECTED
        self.stats.drop(reason, batch.lines)
        self._notice(f"fleetobs log shipper: Loki answered {result.status} to a batch of "
                     f"{batch.lines} lines (not retried): {result.detail}")
        return [], result

    def _push(self, batch: Batch, timeout: float | None) -> PushResult:
        t0 = self._clock()
        with self._span(batch) as set_result:
            result = self._client.push(batch.body, timeout)
            set_result(result)
        self.stats.observe_push(result.outcome.value, self._clock() - t0)
        return result

    @contextlib.contextmanager
    def _span(self, batch: Batch) -> Iterator[Callable[[PushResult], None]]:
        if self._tracer is None:
            yield lambda _r: None
            return
        with self._tracer.start_as_current_span("fleet.logs.push", attributes={
                "fleet.log.lines": batch.lines, "fleet.log.bytes": len(batch.body)}) as span:
            def record(r: PushResult) -> None:
                span.set_attribute("fleet.log.outcome", r.outcome.value)
                if r.status is not None:
                    span.set_attribute("http.response.status_code", r.status)
            yield record

    def _backoff(self, result: PushResult) -> None:
        cfg = self.config
        self._attempt += 1
        delay = min(cfg.max_backoff_seconds, cfg.min_backoff_seconds * 2 ** (self._attempt - 1))
        delay *= 0.5 + self._rng.random() / 2  # jitter: peers that failed together spread out
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, cfg.max_retry_after_seconds))
        self._next_attempt = self._clock() + delay

    def _drain(self) -> None:
        """After stop(): keep sending until done or the deadline, then keep the rest."""
        cfg = self.config
        while True:
            left = self._deadline - self._clock()
            if left <= 0:
                break
            if len(self.outbox):
                wait = self._next_attempt - self._clock()
                if wait >= left:
                    break
                if wait > 0:
                    time.sleep(wait)
                self._attempt_head(timeout=self._deadline - self._clock())
            elif self.buffer.lines:
                entries = self.buffer.take(cfg.batch_max_bytes)
                self._in_flight = len(entries)
                try:
                    batch = self._encoder.encode(entries)
                    if batch is not None:
                        self._send(batch, self._deadline - self._clock())
                finally:
                    self._in_flight = 0
            else:
                break

    def _finish(self) -> None:
        """Lines still here at the end: to the disk spool (replayed next start), else counted."""
        rest = self.buffer.close()
        if self._spools_to_disk:
            for i in range(0, len(rest), 10_000):
                batch = self._encoder.encode(rest[i:i + 10_000])
                if batch is not None:
                    self.stats.drop(reasons.SPOOL_FULL, self.outbox.append(batch))
        else:
            self.stats.drop(reasons.SHUTDOWN, len(rest))
            while (head := self.outbox.peek()) is not None:
                self.stats.drop(reasons.SHUTDOWN, head.lines)
                self.outbox.pop()
        self.outbox.close()
        self._notify_idle()

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _summarise(self, force: bool = False) -> None:
        """One line about drops, at most once per summary interval."""
        now = self._clock()
        if not force and now - self._last_summary < self.config.summary_interval_seconds:
            return
        dropped = self.dropped()
        total = sum(dropped.values())
        if total > self._reported_drops:
            self._notice(_summary_line(total - self._reported_drops, dropped))
            self._reported_drops = total
            self._last_summary = now


def _summary_line(new: int, dropped: Mapping[str, int]) -> str:
    by_reason = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items()) if v)
    return f"fleetobs log shipper: dropped {new} log lines since the last report (totals: {by_reason})"
