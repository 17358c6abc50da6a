"""The liveness state machine, on explicit (fake) times: every transition, both guards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.liveness import (
    LivenessPolicy,
    StallGuard,
    State,
    Timing,
    credit_stall,
    judge,
    observe,
    restore,
)
from hub.observation import Status

P = LivenessPolicy()  # suspect > 2x, down > 3x, cap 600 s


def seen(at: float, interval: float = 10.0, status: Status = Status.OK) -> Timing:
    t = Timing(interval=interval)
    observe(t, at, status, None, P)
    return t


def test_never_seen_is_missing_whatever_the_time() -> None:
    t = Timing(interval=10.0)
    assert judge(t, 0.0, P) is State.MISSING
    assert judge(t, 1e6, P) is State.MISSING


def test_observation_makes_missing_up() -> None:
    t = Timing(interval=10.0)
    observe(t, 5.0, Status.OK, None, P)
    assert t.state is State.UP
    assert judge(t, 5.0, P) is State.UP


@pytest.mark.parametrize("status", [Status.DEGRADED, Status.ERROR])
def test_agent_saying_degraded_or_error_is_degraded(status: Status) -> None:
    t = seen(0.0, status=status)
    assert t.state is State.DEGRADED
    assert judge(t, 5.0, P) is State.DEGRADED


@pytest.mark.parametrize(("silence", "state"), [
    (0.0, State.UP), (20.0, State.UP),            # exactly 2x is not yet suspect
    (20.001, State.SUSPECT), (30.0, State.SUSPECT),  # exactly 3x is not yet down
    (30.001, State.DOWN), (1e5, State.DOWN),
])
def test_silence_thresholds_are_2x_and_3x_the_interval(silence: float, state: State) -> None:
    assert judge(seen(100.0), 100.0 + silence, P) is state


def test_degraded_agent_goes_suspect_then_down_too() -> None:
    t = seen(0.0, status=Status.DEGRADED)
    assert judge(t, 21.0, P) is State.SUSPECT
    assert judge(t, 31.0, P) is State.DOWN


def test_beat_after_down_brings_it_back_up() -> None:
    t = seen(0.0)
    t.state = judge(t, 100.0, P)
    assert t.state is State.DOWN
    observe(t, 100.0, Status.OK, None, P)
    assert t.state is State.UP and judge(t, 100.0, P) is State.UP


def test_down_has_a_hard_cap_for_long_intervals() -> None:
    t = seen(0.0, interval=3600.0)  # 3x would be 3 hours
    assert judge(t, 600.0, P) is State.SUSPECT  # suspect keeps the 2:3 ratio under the cap: 400 s
    assert judge(t, 399.0, P) is State.UP
    assert judge(t, 601.0, P) is State.DOWN


def test_announced_interval_is_clamped_and_used() -> None:
    t = Timing(interval=30.0)
    observe(t, 0.0, Status.OK, 0.01, P)
    assert t.interval == P.min_interval_seconds
    observe(t, 0.0, Status.OK, 5.0, P)
    assert t.interval == 5.0
    assert judge(t, 10.5, P) is State.SUSPECT


def test_unmonitored_is_never_judged() -> None:
    t = Timing(interval=10.0, monitored=False, state=State.UNMONITORED)
    assert judge(t, 1e6, P) is State.UNMONITORED
    observe(t, 0.0, Status.OK, None, P)
    assert t.state is State.UNMONITORED
    assert judge(t, 1e6, P) is State.UNMONITORED


def test_stall_guard_ignores_on_time_and_slightly_late_ticks() -> None:
    g = StallGuard(tick_seconds=1.0, threshold_seconds=2.0)
    assert g.check(0.0) == 0.0
    assert g.check(1.0) == 0.0
    assert g.check(4.0) == 0.0  # 3 s gap == tick + threshold: not a stall
    assert g.stalls == 0


def test_stall_guard_reports_the_excess_over_one_tick() -> None:
    g = StallGuard(tick_seconds=1.0, threshold_seconds=2.0)
    g.check(0.0)
    assert g.check(61.0) == pytest.approx(60.0)
    assert g.stalls == 1 and g.stalled_seconds == pytest.approx(60.0)
    assert g.check(62.0) == 0.0


def test_stall_credit_keeps_agents_from_being_convicted() -> None:
    """The hub froze for 60 s: an agent beating every 10 s is not down afterwards."""
    g = StallGuard(tick_seconds=1.0, threshold_seconds=2.0)
    t = seen(0.0)
    g.check(0.0)
    now = 61.0
    credit_stall(t, g.check(now), now)
    assert judge(t, now, P) is State.UP
    # ... but real silence after the stall still counts.
    assert judge(t, now + 21.0, P) is State.SUSPECT


def test_stall_credit_never_moves_ref_past_now() -> None:
    t = seen(50.0)
    credit_stall(t, 100.0, 60.0)
    assert t.ref == 60.0


def test_stall_credit_leaves_never_seen_agents_missing() -> None:
    t = Timing(interval=10.0)
    credit_stall(t, 100.0, 100.0)
    assert t.ref is None and judge(t, 100.0, P) is State.MISSING


def test_restore_up_agent_gets_one_interval_of_grace() -> None:
    t = Timing(interval=10.0)
    restore(t, now=1000.0, age=500.0, state=State.UP, status=Status.OK)
    assert judge(t, 1000.0, P) is State.UP
    assert judge(t, 1009.9, P) is State.UP
    # Grace over: judged from when it was really last seen (500 s ago).
    assert judge(t, 1010.0, P) is State.DOWN


def test_restore_recently_seen_up_agent_counts_silence_from_last_seen() -> None:
    t = Timing(interval=10.0)
    restore(t, now=1000.0, age=5.0, state=State.UP, status=Status.OK)
    assert judge(t, 1010.0, P) is State.UP  # 15 s silent
    assert judge(t, 1016.0, P) is State.SUSPECT  # 21 s silent


def test_restore_down_agent_is_judged_at_once() -> None:
    t = Timing(interval=10.0)
    restore(t, now=1000.0, age=100.0, state=State.DOWN, status=Status.OK)
    assert judge(t, 1000.0, P) is State.DOWN


def test_restore_missing_stays_missing() -> None:
    t = Timing(interval=10.0)
    restore(t, now=1000.0, age=0.0, state=State.MISSING, status=Status.OK)
    assert judge(t, 2000.0, P) is State.MISSING


def test_restore_with_wall_clock_gone_backwards_treats_age_as_zero() -> None:
    t = Timing(interval=10.0)
    restore(t, now=1000.0, age=-3600.0, state=State.UP, status=Status.OK)
    assert t.last_seen == 1000.0


@given(st.lists(st.one_of(
    st.tuples(st.just("beat"), st.sampled_from(list(Status))),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=1.0)),
), max_size=80), st.floats(min_value=1.0, max_value=20.0))
@settings(max_examples=200, deadline=None)
def test_judged_state_always_matches_the_definition(events: list[tuple[str, object]],
                                                    interval: float) -> None:
    """Driven on time (no stalls), the state is exactly what the table in docs/hub.md says."""
    guard = StallGuard(tick_seconds=1.0, threshold_seconds=2.0)
    t = Timing(interval=interval)
    now = 0.0
    last_beat: float | None = None
    last_status = Status.OK
    for kind, arg in events:
        if kind == "beat":
            assert isinstance(arg, Status)
            observe(t, now, arg, None, P)
            last_beat, last_status = now, arg
        else:
            assert isinstance(arg, float)
            now += arg
            assert guard.check(now) == 0.0
            t.state = judge(t, now, P)
        if last_beat is None:
            expected = State.MISSING
        elif now - last_beat > 3 * interval:
            expected = State.DOWN
        elif now - last_beat > 2 * interval:
            expected = State.SUSPECT
        else:
            expected = State.UP if last_status is Status.OK else State.DEGRADED
        assert t.state is expected
