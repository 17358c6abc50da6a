"""Route the standard library's logging (uvicorn, httpx, asyncio) into loguru.

fleetobs logs through loguru only; libraries log through ``logging``. Sending
theirs into loguru gives one format, one level setting and one Loki sink.
"""

from __future__ import annotations

import inspect
import logging

from loguru import logger


class InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Point loguru at the caller of logging, not at this handler.
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def intercept_stdlib_logging(level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one that forwards to loguru (idempotent)."""
    logging.basicConfig(handlers=[InterceptHandler()], level=level, force=True)
    # uvicorn's own dictConfig (if one ran in this process) stops its loggers at "uvicorn".
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
