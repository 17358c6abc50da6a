from __future__ import annotations

import logging

from loguru import logger

from fleetobs.logs.intercept import intercept_stdlib_logging


def test_stdlib_records_reach_loguru_with_level_and_exception() -> None:
    seen: list[tuple[str, str, bool]] = []
    sink = logger.add(lambda m: seen.append((m.record["level"].name, m.record["message"],
                                             m.record["exception"] is not None)), level="DEBUG",
                      # Only lines attributed to this function: proves the caller is found, and
                      # ignores background threads of other tests.
                      filter=lambda r: r["function"] == "test_stdlib_records_reach_loguru_with_level_and_exception")
    before = logging.getLogger().handlers[:]
    try:
        intercept_stdlib_logging()
        logging.getLogger("uvicorn.error").warning("port %d busy", 9000)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("httpx").exception("request failed")
    finally:
        logger.remove(sink)
        logging.basicConfig(handlers=before, force=True)
    assert seen == [("WARNING", "port 9000 busy", False), ("ERROR", "request failed", True)]
