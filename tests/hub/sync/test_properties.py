"""Property: whatever faults, restarts and changes happen, once the links heal every
hub holds exactly every other hub's current records (names, versions, facts)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.sync.records import AgentFacts
from hub.sync.testing import Cluster
from hub.testing import FakeClock

MACHINES = ["mainpc", "pc2", "pc3"]
STATES = ["up", "degraded", "suspect", "down", "missing"]

machine = st.sampled_from(MACHINES)
op = st.one_of(
    st.tuples(st.just("put"), machine, st.integers(0, 11), st.sampled_from(STATES),
              st.one_of(st.none(), st.floats(0, 30))),
    st.tuples(st.just("advance"), st.sampled_from([0.05, 0.1, 0.3, 1.0, 3.0])),
    st.tuples(st.just("fault"), machine, machine,
              st.sampled_from(["cut", "drop_request", "drop_reply", "duplicate", "delay"]),
              st.sampled_from([0.0, 0.3, 0.7, 1.0])),
    st.tuples(st.just("restart"), machine, st.booleans()),
    st.tuples(st.just("deliver_held")),
)


#: The weather a run starts in: the same fault on every direction.
weather = st.fixed_dictionaries({k: st.sampled_from([0.0, 0.2, 0.5])
                                 for k in ("drop_request", "drop_reply", "duplicate", "delay")})


async def play(ops: list[tuple[Any, ...]], seed: int, start: dict[str, float]) -> Cluster:
    clock = FakeClock()
    cl = Cluster(MACHINES, clock, rng=random.Random(seed))
    for a in MACHINES:
        for b in MACHINES:
            if a != b:
                for k, v in start.items():
                    setattr(cl.net.link(a, f"mem://{b}"), k, v)
    epochs = dict.fromkeys(MACHINES, 1)
    for o in ops:
        kind = o[0]
        if kind == "put":
            _, m, i, state, ago = o
            eng = cl.engines[m]
            eng.put(AgentFacts(name=f"a{i}", machine=m, state=state, interval_seconds=5.0),
                    None if ago is None else eng.clock() - ago)
        elif kind == "advance":
            await cl.run(o[1], dt=0.05)
        elif kind == "fault":
            _, a, b, what, value = o
            if a != b:
                f = cl.net.link(a, f"mem://{b}")
                if what == "cut":
                    f.cut = value >= 0.5
                else:
                    setattr(f, what, value)
        elif kind == "restart":
            _, m, keep = o
            old = cl.engines[m]
            epochs[m] += 1
            new = cl.start(m, epochs[m])
            if keep:  # the hub restores what it persisted (some agents, any order)
                for rec in old.owned.since(0, old.clock())[::2]:
                    new.put(rec.facts, None)
        else:
            cl.net.deliver_held()
        await cl.step()
    return cl


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, max_size=40), seed=st.integers(0, 2**16), start=weather)
def test_any_run_converges_once_the_links_heal(ops: list[tuple[Any, ...]], seed: int,
                                               start: dict[str, float]) -> None:
    async def scenario() -> None:
        cl = await play(ops, seed, start)
        cl.net.heal()
        late = cl.net.held
        cl.net.held = []
        for eng in cl.engines.values():  # every record moves past what is in flight
            for rec in eng.owned.since(0, eng.clock()):
                eng.put(replace(rec.facts, reason="after the heal"), None)
        await cl.run(3.0, dt=0.05)
        assert cl.diverging() == []
        cl.net.held = late
        cl.net.deliver_held()  # bodies held back during the run arrive after all that
        assert cl.diverging() == []  # and cannot undo anything
        for eng in cl.engines.values():
            assert all(eng.peer_up(lk) for lk in eng.links)
            assert all(p.fresh for p in eng.peer_agents())
            assert eng.machine not in eng.fleet.owners  # nothing echoed back to its owner

    asyncio.run(scenario())
