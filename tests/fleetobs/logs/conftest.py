"""Fixtures for the log shipper tests: a Loki stand-in per test."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.testing.loki import LokiLimits, LokiStandIn


@pytest.fixture
def loki() -> Iterator[LokiStandIn]:
    """A strict Loki (unordered_writes off), so any reordering shows up as a 400."""
    with LokiStandIn(LokiLimits(unordered_writes=False)) as stand_in:
        yield stand_in


class ShipperFactory:
    """Builds shippers with test-sized intervals; stops them all at teardown."""

    def __init__(self) -> None:
        self.made: list[LogShipper] = []
        self.notices: list[str] = []

    def __call__(self, url: str, **overrides: Any) -> LogShipper:
        values: dict[str, Any] = {
            "batch_wait_seconds": 0.02, "timeout_seconds": 2.0, "min_backoff_seconds": 0.01,
            "max_backoff_seconds": 0.05, "summary_interval_seconds": 0.0,
        }
        clock = overrides.pop("wall_clock_ns", None)
        values.update(overrides)
        kwargs: dict[str, Any] = {"notice": self.notices.append, "rng": random.Random(7)}
        if clock is not None:
            kwargs["wall_clock_ns"] = clock
        shipper = LogShipper(ShipperConfig(url, **values), **kwargs)
        self.made.append(shipper)
        return shipper


@pytest.fixture
def make_shipper() -> Iterator[ShipperFactory]:
    factory = ShipperFactory()
    yield factory
    for s in factory.made:
        s.stop(1.0)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` (for states with no event to wait on); False on timeout."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def until() -> Callable[..., bool]:
    return wait_until
