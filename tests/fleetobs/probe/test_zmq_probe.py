"""ZeroMQ probes against real REP sockets (simulated agents on ephemeral ports)."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio

from fleetobs.probe.result import Outcome, Protocol
from fleetobs.probe.zmq_probe import ZmqProber
from fleetobs.simulator.agent import SimAgentSpec
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import SimulatedFleet

HOST = "127.0.0.1"


def one(behaviour: Behaviour, slow: float = 0.5) -> SimulatedFleet:
    return SimulatedFleet([SimAgentSpec("A", "m", None, 0, 0, behaviour, slow_seconds=slow)], http=False)


@pytest.mark.asyncio
async def test_ok_reply_is_ok_with_latency() -> None:
    async with one(Behaviour.OK) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe(HOST, fleet.agent("A").health_check_port, 2.0)
        finally:
            prober.close()
    assert r.outcome is Outcome.OK and r.protocol is Protocol.ZMQ
    assert r.latency_seconds is not None and 0 < r.latency_seconds < 2.0
    assert r.health["health_checks"]["ready_signal"] is True
    assert r.endpoint == f"tcp://{HOST}:{fleet.agent('A').health_check_port}"


@pytest.mark.asyncio
async def test_degraded_reply_carries_the_failed_check() -> None:
    async with one(Behaviour.DEGRADED) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe(HOST, fleet.agent("A").health_check_port, 2.0)
        finally:
            prober.close()
    assert (r.outcome, r.reason) == (Outcome.DEGRADED, "health_checks.ready_signal=false")
    assert r.status == "degraded"


@pytest.mark.asyncio
async def test_error_reply() -> None:
    async with one(Behaviour.ERROR) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe(HOST, fleet.agent("A").health_check_port, 2.0)
        finally:
            prober.close()
    assert r.outcome is Outcome.ERROR and r.status == "error"


@pytest.mark.asyncio
async def test_non_json_reply_is_an_invalid_reply() -> None:
    async with one(Behaviour.GARBAGE) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe(HOST, fleet.agent("A").health_check_port, 2.0)
        finally:
            prober.close()
    assert r.outcome is Outcome.INVALID_REPLY and r.answered
    assert r.reason is not None and r.reason.startswith("reply is not JSON")


@pytest.mark.asyncio
async def test_no_reply_times_out() -> None:
    async with one(Behaviour.SILENT) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe(HOST, fleet.agent("A").health_check_port, 0.2)
        finally:
            prober.close()
    assert r.outcome is Outcome.TIMEOUT and not r.answered and r.latency_seconds is None


@pytest.mark.asyncio
async def test_nothing_listening_is_refused_at_once() -> None:
    # ZeroMQ alone connects lazily and would wait out the timeout; the prober does not.
    with zmq.Context() as ctx, ctx.socket(zmq.REP) as s:
        port = s.bind_to_random_port(f"tcp://{HOST}")
        s.unbind(s.last_endpoint)
    prober = ZmqProber()
    try:
        r = await asyncio.wait_for(prober.probe(HOST, port, 30.0), 10.0)
    finally:
        prober.close()
    assert (r.outcome, r.reason) == (Outcome.REFUSED, "connection refused")
    assert not r.answered


@pytest.mark.asyncio
async def test_reply_after_the_timeout_then_the_next_probe_works() -> None:
    async with one(Behaviour.SLOW, slow=0.4) as fleet:
        agent = fleet.agent("A")
        prober = ZmqProber()
        try:
            late = await prober.probe(HOST, agent.health_check_port, 0.1)
            await asyncio.sleep(0.4)  # the late reply arrives on the discarded socket
            agent.behaviour = Behaviour.OK
            again = await prober.probe(HOST, agent.health_check_port, 2.0)
        finally:
            prober.close()
    assert late.outcome is Outcome.TIMEOUT
    # A reused timed-out REQ socket would raise EFSM or return the stale reply.
    assert again.outcome is Outcome.OK
    assert agent.requests == 2


@pytest.mark.asyncio
async def test_a_socket_that_answered_is_reused() -> None:
    async with one(Behaviour.OK) as fleet:
        port = fleet.agent("A").health_check_port
        prober = ZmqProber()
        try:
            await prober.probe(HOST, port, 2.0)
            first = prober._idle[f"tcp://{HOST}:{port}"]
            await prober.probe(HOST, port, 2.0)
            assert prober._idle[f"tcp://{HOST}:{port}"] is first
        finally:
            prober.close()


@pytest.mark.asyncio
async def test_concurrent_probes_of_one_agent_do_not_share_a_socket() -> None:
    async with one(Behaviour.OK) as fleet:
        port = fleet.agent("A").health_check_port
        prober = ZmqProber()
        try:
            results = await asyncio.gather(*(prober.probe(HOST, port, 2.0) for _ in range(5)))
        finally:
            prober.close()
    assert [r.outcome for r in results] == [Outcome.OK] * 5


@pytest.mark.asyncio
async def test_main_port_answers_health_actions_like_the_real_agent() -> None:
    async with one(Behaviour.DEGRADED) as fleet:
        agent = fleet.agent("A")
        ctx = zmq.asyncio.Context()
        try:
            for action, expect in (("ping", "degraded"), ("health", "degraded"), ("train", "error")):
                sock = ctx.socket(zmq.REQ)
                sock.connect(f"tcp://{HOST}:{agent.port}")
                await sock.send_json({"action": action})
                reply = await asyncio.wait_for(sock.recv_json(), 2.0)
                sock.close(linger=0)
                assert isinstance(reply, dict) and reply["status"] == expect
        finally:
            ctx.destroy(linger=0)


@pytest.mark.asyncio
async def test_closed_prober_answers_without_touching_the_network() -> None:
    prober = ZmqProber()
    prober.close()
    prober.close()  # idempotent
    r = await prober.probe(HOST, 1, 1.0)
    assert r.outcome is Outcome.UNREACHABLE and r.reason == "prober is closed"


@pytest.mark.asyncio
async def test_host_names_are_resolved_before_connecting() -> None:
    async with one(Behaviour.OK) as fleet:
        prober = ZmqProber()
        try:
            r = await prober.probe("localhost", fleet.agent("A").health_check_port, 2.0)
        finally:
            prober.close()
    assert r.outcome is Outcome.OK
    assert r.endpoint == f"tcp://localhost:{fleet.agent('A').health_check_port}"


@pytest.mark.asyncio
async def test_invalid_host_name_is_unreachable_without_a_lookup() -> None:
    prober = ZmqProber()
    try:
        r = await prober.probe("not a host!", 5555, 1.0)
    finally:
        prober.close()
    assert r.outcome is Outcome.UNREACHABLE
    assert r.reason == "invalid host name 'not a host!'"
