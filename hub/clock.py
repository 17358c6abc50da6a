"""The hub's clocks, injected so tests drive time (hub.testing.FakeClock)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: all liveness judgement uses it."""

    def wall(self) -> float:
        """Unix seconds: shown to people and persisted, never used to judge."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class SkewedClock(SystemClock):
    """TESTS ONLY (FLEET_TEST_CLOCK_SKEW_SECONDS): the system clocks shifted by ``offset``,
    to prove that machines whose clocks disagree still agree on everything."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset
