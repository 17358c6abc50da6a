"""Reading the real BaseAgent's health object."""

from __future__ import annotations

import json

import pytest

from fleetobs.probe.health import decode_health, interpret_health
from fleetobs.probe.result import Outcome
from fleetobs.simulator.behaviour import Behaviour, health_object


def test_ok_object_is_ok_without_reason() -> None:
    outcome, reason, body = interpret_health(health_object(Behaviour.OK, uptime=1.0))
    assert (outcome, reason) == (Outcome.OK, None)
    assert body["health_checks"]["ready_signal"] is True


def test_degraded_names_the_failed_check() -> None:
    obj = health_object(Behaviour.DEGRADED, uptime=1.0, failing_check="ready_signal")
    assert interpret_health(obj)[:2] == (Outcome.DEGRADED, "health_checks.ready_signal=false")


def test_several_failed_checks_are_listed_sorted() -> None:
    obj = {"status": "degraded", "health_checks": {"redis_connected": False, "ready_signal": False,
                                                   "port_accessible": True}}
    assert interpret_health(obj)[1] == (
        "health_checks.ready_signal=false, health_checks.redis_connected=false")


def test_degraded_without_failed_checks_falls_back_to_message() -> None:
    obj = {"status": "degraded", "health_checks": {}, "message": "queue\nbacklog  high"}
    assert interpret_health(obj)[1] == "message: queue backlog high"


def test_error_status() -> None:
    outcome, reason, _ = interpret_health(health_object(Behaviour.ERROR, uptime=1.0))
    assert outcome is Outcome.ERROR
    assert reason == "health_checks.redis_connected=false"


@pytest.mark.parametrize(("word", "outcome"), [
    ("healthy", Outcome.OK), ("OK", Outcome.OK), ("unhealthy", Outcome.ERROR),
    ("warning", Outcome.DEGRADED),
])
def test_status_spellings_of_hand_written_handlers(word: str, outcome: Outcome) -> None:
    assert interpret_health({"status": word})[0] is outcome


@pytest.mark.parametrize(("raw", "why"), [
    (b"\x00\xffgarbage", "reply is not JSON"),
    (b"[1, 2]", "reply is JSON list, not an object"),
    (b'{"ready": true}', "reply has no 'status' string"),
    (b'{"status": "sleepy"}', "unknown status 'sleepy'"),
])
def test_replies_that_are_not_health_objects(raw: bytes, why: str) -> None:
    outcome, reason, _ = decode_health(raw)
    assert outcome is Outcome.INVALID_REPLY
    assert reason is not None and reason.startswith(why)


def test_long_reasons_are_clipped_to_one_short_line() -> None:
    obj = {"status": "error", "message": "x" * 1000 + "\n" + "y"}
    reason = interpret_health(obj)[1]
    assert reason is not None and len(reason) == 200 and "\n" not in reason


def test_invalid_reply_counts_as_answered_error() -> None:
    # An agent that answers junk is alive but broken: an error, not silence.
    assert Outcome.INVALID_REPLY.answered and Outcome.INVALID_REPLY.status == "error"
    assert not Outcome.TIMEOUT.answered and Outcome.TIMEOUT.status is None
    assert json.loads(json.dumps(health_object(Behaviour.OK, uptime=2.0)))["uptime"] == 2.0
