"""The agent-side heartbeat client against a real HTTP server, up, down and hanging."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from fleetobs.agent.client import HeartbeatClient, next_delay
from fleetobs.testing.heartbeat_sink import HeartbeatSink


def wait_for(cond: Callable[[], bool], limit: float = 10.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_healthy_delays_jitter_around_the_interval() -> None:
    rng = random.Random(1)
    delays = [next_delay(10.0, 0, 0.1, 60.0, rng) for _ in range(500)]
    assert all(9.0 <= d <= 11.0 for d in delays)
    assert max(delays) - min(delays) > 1.5  # actually spread, not constant


def test_backoff_doubles_per_failure_and_is_capped() -> None:
    rng = random.Random(2)
    for failures, step in [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 60.0), (50, 60.0)]:
        d = next_delay(5.0, failures, 0.1, 60.0, rng)
        assert step * 0.5 <= d <= step


def test_sends_heartbeats_with_status_changes_and_token() -> None:
    with HeartbeatSink() as sink:
        client = HeartbeatClient("NLUAgent", hub_url=sink.url, interval_seconds=0.05,
                                 environ={"FLEET_TOKEN": "s3cret"}, version="1.2",
                                 container="language-stack-gpu").start()
        try:
            assert wait_for(lambda: len(sink.beats()) >= 2)
            client.set_status("degraded", "model loading", {"queue": 3})
            assert wait_for(lambda: sink.beats()[-1]["status"] == "degraded")
        finally:
            client.close()
    first, last = sink.beats()[0], sink.beats()[-1]
    assert first["agent"] == "NLUAgent" and first["status"] == "ok"
    assert first["interval_seconds"] == 0.05 and first["version"] == "1.2"
    assert first["container"] == "language-stack-gpu" and isinstance(first["pid"], int)
    assert "reason" not in first and "details" not in first
    assert sink.headers[0]["Authorization"] == "Bearer s3cret"
    assert (last["reason"], last["details"]["queue"]) == ("model loading", 3)
    assert last["details"]["final"] is True  # close() sent the final heartbeat


def test_unknown_status_is_reported_as_error_not_raised() -> None:
    with HeartbeatSink() as sink:
        client = HeartbeatClient("A", hub_url=sink.url, interval_seconds=30).start()
        client.set_status("sleepy", "why not")
        assert wait_for(lambda: any(b["status"] == "error" for b in sink.beats()))
        client.close()
    assert sink.beats()[-1]["reason"] == "unknown status 'sleepy': why not"


def test_values_json_cannot_carry_do_not_stop_the_heartbeats() -> None:
    """Issue 13: a NaN or a lone surrogate from the agent made every request body
    unencodable, which ended the sending thread for good."""
    with HeartbeatSink() as sink:
        client = HeartbeatClient("A", hub_url=sink.url, interval_seconds=0.05).start()
        try:
            client.set_status("degraded", "disk \ud800 full", {"load": float("nan"), "x\ud800": [object()]})
            assert wait_for(lambda: any(b["status"] == "degraded" for b in sink.beats()))
            client.set_status("ok")
            assert wait_for(lambda: sink.beats()[-1]["status"] == "ok")
        finally:
            client.close()
    degraded = next(b for b in sink.beats() if b["status"] == "degraded")
    assert degraded["reason"] == "disk \ufffd full"
    assert degraded["details"] == {"load": None, "x\ufffd": [None]}


def test_hub_down_backs_off_without_raising_then_recovers() -> None:
    port = closed_port()
    client = HeartbeatClient("A", hub_url=f"http://127.0.0.1:{port}", interval_seconds=0.02,
                             max_backoff_seconds=0.2, rng=random.Random(3)).start()
    try:
        assert wait_for(lambda: client.consecutive_failures >= 4)
        assert client.sent == 0 and client.last_error
        # Backoff grew beyond the healthy interval (0.02 s +/- 10%).
        assert wait_for(lambda: (client.last_delay_seconds or 0) > 0.05)
        with HeartbeatSink(port=port) as sink:
            assert wait_for(lambda: client.sent >= 1)
            assert client.consecutive_failures == 0
            assert sink.beats()[0]["agent"] == "A"
            client.close()
    finally:
        client.close()


def test_hub_answering_errors_counts_failures() -> None:
    with HeartbeatSink() as sink:
        sink.mode = "fail"
        client = HeartbeatClient("A", hub_url=sink.url, interval_seconds=0.02,
                                 max_backoff_seconds=0.05).start()
        try:
            assert wait_for(lambda: client.failures >= 2)
            assert client.last_error is not None and "HTTP 503" in client.last_error
        finally:
            client.close()


def test_close_keeps_its_deadline_when_the_hub_hangs() -> None:
    with HeartbeatSink() as sink:
        sink.mode = "hang"
        client = HeartbeatClient("A", hub_url=sink.url, interval_seconds=0.05,
                                 timeout_seconds=30).start()
        time.sleep(0.1)  # let the first request hang
        started = time.monotonic()
        client.close(deadline_seconds=0.3)
        took = time.monotonic() - started
        client.close()  # idempotent
    # Bounded: the 30 s request timeout does not hold the agent's shutdown.
    assert took < 2.0


def test_agent_threads_are_never_blocked_or_raised_into() -> None:
    port = closed_port()
    client = HeartbeatClient("A", hub_url=f"http://127.0.0.1:{port}", interval_seconds=0.01,
                             max_backoff_seconds=0.02)
    errors: list[BaseException] = []

    def agent_work() -> None:
        try:
            for i in range(200):
                client.set_status("ok" if i % 2 else "degraded", f"step {i}")
        except BaseException as exc:  # noqa: BLE001 - the assertion is that nothing lands here
            errors.append(exc)

    client.start()
    threads = [threading.Thread(target=agent_work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    client.close(0.2)
    assert errors == [] and client.failures >= 1


def test_bad_environment_disables_instead_of_raising() -> None:
    client = HeartbeatClient("A", environ={"FLEET_HUB_URL": "ftp://nope"})
    assert client.hub_url is None
    assert client.start() is client  # a no-op
    client.close()


def test_importing_the_client_loads_no_pydantic_or_yaml() -> None:
    code = ("import sys, fleetobs.agent\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'yaml', 'pydantic_settings', 'zmq', 'fastapi', 'typer', 'prometheus_client'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="interval_seconds"):
        HeartbeatClient("A", hub_url="http://x", interval_seconds=0)
    with pytest.raises(ValueError, match="jitter"):
        HeartbeatClient("A", hub_url="http://x", jitter=1.5)
