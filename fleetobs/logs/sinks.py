"""Front doors to the shipper: a loguru sink and a stdlib ``logging.Handler``.

Both do the least possible on the caller's thread: read the record's time, level
and message, wrap them in a :class:`LogEntry` and append it to the buffer. The
JSON line is rendered by the sender thread. Neither ever raises into the caller.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleetobs.logs.model import LogEntry, StreamLabels, severity_of_number

if TYPE_CHECKING:
    import loguru

Submit = Callable[[LogEntry], bool]

#: ``logger.bind(loki_skip=True)``: a record for local sinks only. The shipper's own
#: notices carry it, so a Loki that rejects everything cannot feed a loop.
SKIP = "loki_skip"


class LoguruSink:
    """``logger.add(LoguruSink(shipper.submit, stream), format="{message}")``."""

    def __init__(self, submit: Submit, stream: StreamLabels) -> None:
        self._submit = submit
        self._stream = stream

    def __call__(self, message: loguru.Message) -> None:
        try:
            r = message.record
            extra = r["extra"]
            if SKIP in extra:
                return
            level = r["level"]
            fields: dict[str, Any] | None = extra or None  # loguru builds it fresh per record
            exc = r["exception"]
            if exc is not None and exc.type is not None:
                fields = {**extra, "exception": "".join(
                    traceback.format_exception(exc.type, exc.value, exc.traceback))}
            # loguru's time has microsecond resolution: whole microseconds in ns.
            ts_ns = int(r["time"].timestamp() * 1_000_000) * 1000
            self._submit(LogEntry(ts_ns, severity_of_number(level.no), level.name.lower(),
                                  r["message"], self._stream, fields, r["name"]))
        except Exception:  # noqa: BLE001, S110 - a log call must never fail its caller
            pass


def add_loguru_sink(logger: loguru.Logger, submit: Submit, stream: StreamLabels,
                    level: str | int = "INFO") -> int:
    """Attach the shipper to ``logger``; returns the handler id for ``logger.remove``."""
    return logger.add(LoguruSink(submit, stream), level=level, format="{message}",
                      catch=False, enqueue=False)


_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_N_STANDARD = len(logging.makeLogRecord({}).__dict__)


class LokiHandler(logging.Handler):
    """For agents that use the standard library's ``logging``."""

    def __init__(self, submit: Submit, stream: StreamLabels, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._submit = submit
        self._stream = stream

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: emit only appends to the (already thread-safe) buffer.
        ok = bool(self.filter(record))
        if ok:
            self.emit(record)
        return ok

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] | None = None
            if len(record.__dict__) > _N_STANDARD:  # extra= was used
                fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
            if record.exc_info and record.exc_info[0] is not None:
                fields = fields or {}
                fields["exception"] = "".join(traceback.format_exception(*record.exc_info))
            self._submit(LogEntry(int(record.created * 1e9), severity_of_number(record.levelno),
                                  record.levelname.lower(), record.getMessage(), self._stream,
                                  fields or None, record.name))
        except Exception:  # noqa: BLE001, S110 - a log call must never fail its caller
            pass
