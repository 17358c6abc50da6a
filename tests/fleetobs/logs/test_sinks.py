"""The loguru sink and the logging handler put the record's facts into the line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from loguru import logger

from fleetobs.logs.batch import render_line
from fleetobs.logs.model import ERROR, INFO, WARNING, LogEntry, StreamLabels
from fleetobs.logs.sinks import SKIP, LokiHandler, add_loguru_sink

STREAM = StreamLabels(source="hub", machine="mainpc", agent="ObservabilityHub")


@pytest.fixture
def captured() -> list[LogEntry]:
    return []


@pytest.fixture
def loguru_sink(captured: list[LogEntry]) -> Iterator[None]:
    sink_id = add_loguru_sink(logger, lambda e: captured.append(e) or True, STREAM, level="DEBUG")
    yield
    logger.remove(sink_id)


@pytest.mark.usefixtures("loguru_sink")
def test_loguru_record_becomes_a_json_line_with_its_time(captured: list[LogEntry]) -> None:
    before = datetime.now().timestamp()
    logger.bind(request_id="r1").warning("disk {pct}% full", pct=93)
    assert len(captured) == 1
    e = captured[0]
    assert (e.severity, e.level, e.stream) == (WARNING, "warning", STREAM)
    assert e.ts_ns % 1000 == 0 and abs(e.ts_ns / 1e9 - before) < 5
    doc = json.loads(render_line(e))
    assert doc["msg"] == "disk 93% full" and doc["request_id"] == "r1"
    assert doc["logger"] == __name__


@pytest.mark.usefixtures("loguru_sink")
def test_loguru_exception_text_travels_in_the_line(captured: list[LogEntry]) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    doc = json.loads(render_line(captured[0]))
    assert captured[0].severity == ERROR
    assert "ValueError: boom" in doc["exception"]


@pytest.mark.usefixtures("loguru_sink")
def test_records_marked_skip_stay_local(captured: list[LogEntry]) -> None:
    logger.bind(**{SKIP: True}).warning("shipper notice")
    logger.success("shipped")
    assert [e.message for e in captured] == ["shipped"]
    assert captured[0].severity == INFO


def test_loguru_sink_swallows_a_failing_submit() -> None:
    def broken(_e: LogEntry) -> bool:
        raise RuntimeError("never reaches the caller")
    sink_id = add_loguru_sink(logger, broken, STREAM)
    try:
        logger.info("still fine")
    finally:
        logger.remove(sink_id)


def test_stdlib_handler_ships_message_level_extras_and_exceptions(captured: list[LogEntry]) -> None:
    log = logging.getLogger("agent.test")
    handler = LokiHandler(lambda e: captured.append(e) or True, STREAM)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.info("hello %s", "world", extra={"job": 7})
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("division")
    finally:
        log.removeHandler(handler)
    first, second = captured
    assert (first.message, first.level, first.severity) == ("hello world", "info", INFO)
    assert json.loads(render_line(first))["job"] == 7
    assert json.loads(render_line(first))["logger"] == "agent.test"
    assert second.severity == ERROR
    assert "ZeroDivisionError" in json.loads(render_line(second))["exception"]


def test_stdlib_handler_never_raises() -> None:
    def broken(_e: LogEntry) -> bool:
        raise RuntimeError("x")
    log = logging.getLogger("agent.broken")
    handler = LokiHandler(broken, STREAM)
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error("bad args %d", "not a number")  # getMessage() itself fails
        log.error("fine")
    finally:
        log.removeHandler(handler)
