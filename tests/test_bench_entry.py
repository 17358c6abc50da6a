"""bench/run_all.py runs every benchmark in bench/ (a new one cannot be forgotten)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run_all() -> object:
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_is_run() -> None:
    run_all = _run_all()
    scripts = {b.script for b in run_all.BENCHES}  # type: ignore[attr-defined]
    helpers = run_all.HELPERS  # type: ignore[attr-defined]
    assert scripts == {p.name for p in BENCH.glob("*.py")} - {"run_all.py"} - helpers


def test_ratios_are_read_from_the_benchmarks_output() -> None:
    ratios = _run_all().ratios  # type: ignore[attr-defined]
    out = ("ratio hub/pushgateway    : 294.56x throughput, p99 187.60x lower  (goal >= 20x)\n"
           "  anchor: bare NVML median   0.100 ms   p95 0.2 ms   collect/anchor = 2.50x\n"
           "shipper -> Loki   3.10 us/call   ratio to anchor 1.42   (lines dropped: 0)\n"
           "hub /ready : median 628.2 ms\n")
    assert [v for _, v in ratios(out)] == [294.56, 187.6, 2.5, 1.42]  # goals are not ratios
