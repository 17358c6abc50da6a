"""Log shipper benchmark: what a log call costs the caller, and how fast lines leave.

Prints:

* caller cost per log call (median of rounds, in microseconds) for
  - anchor: loguru with one plain file sink to /dev/null (default format),
  - loguru with the Loki shipper sink (the shipper running, sending to the stand-in),
  - the hub's intake path: ``LogShipper.submit`` of a ready ``LogEntry``,
  - stdlib ``logging`` to a /dev/null FileHandler (anchor) and with ``LokiHandler``;
  and the ratio of each to its anchor. Goal (issue 7): <= 5 us with the shipper on.
* lines shipped per second to the Loki stand-in (running in its own process, so it
  does not compete for this interpreter's GIL): a backlog drained by the sender, and
  a steady stream logged from a caller thread while it ships. Goal: >= 50,000/s.

Run: python bench/logs_bench.py [--calls N] [--lines N] [--rounds N]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from loguru import logger

from fleetobs.logs.model import INFO, LogEntry, StreamLabels
from fleetobs.logs.shipper import LogShipper, ShipperConfig
from fleetobs.logs.sinks import LoguruSink, LokiHandler, add_loguru_sink

STREAM = StreamLabels(source="bench", machine="mainpc", group="core_platform", agent="Bench")

STAND_IN = textwrap.dedent("""
    import sys, time
    from fleetobs.testing.loki import LokiLimits, LokiStandIn
    loki = LokiStandIn(LokiLimits(max_body_bytes=64 * 1024 * 1024)).start()
    print(loki.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
""")


def start_stand_in() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    httpx.get(url + "/ready", timeout=5).raise_for_status()
    return proc, url


def per_call_us(fn: Callable[[int], None], calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(calls)
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(samples)


def loguru_calls(n: int) -> None:
    for i in range(n):
        logger.info("request {} done in {} ms", i, 12)


def shipper(url: str, **overrides: object) -> LogShipper:
    cfg = {"buffer_max_bytes": 512 * 1024 * 1024, "buffer_max_lines": 5_000_000,
           "timeout_seconds": 30.0, **overrides}
    return LogShipper(ShipperConfig(url, **cfg))  # type: ignore[arg-type]


def caller_cost(url: str, calls: int, rounds: int) -> None:
    print(f"== caller cost per log call ({calls} calls x {rounds} rounds, median) ==")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at the end
    logger.remove()
    sink = logger.add(devnull, level="INFO")
    anchor = per_call_us(loguru_calls, calls, rounds)
    logger.remove(sink)
    sink = logger.add(lambda _m: None, level="INFO", format="{message}")
    noop = per_call_us(loguru_calls, calls, rounds)
    logger.remove(sink)

    # The sink alone: one real loguru message, handed to the sink again and again.
    idle = shipper(url)
    captured: list[Any] = []
    sink = logger.add(captured.append, format="{message}")
    logger.bind(request_id="r1").info("request {} done in {} ms", 1, 12)
    logger.remove(sink)
    loki_sink = LoguruSink(idle.submit, STREAM)
    message = captured[0]

    def sink_only(n: int) -> None:
        for _ in range(n):
            loki_sink(message)
    sink_alone = per_call_us(sink_only, calls, rounds)

    s = shipper(url)
    s.start()
    sink = add_loguru_sink(logger, s.submit, STREAM)
    shipped = per_call_us(loguru_calls, calls, rounds)
    logger.remove(sink)
    s.wait_idle(60)
    lost = sum(s.dropped().values())
    entry = LogEntry(time.time_ns(), INFO, "info", "request 1 done", STREAM)

    def submits(n: int) -> None:
        for _ in range(n):
            s.submit(entry)
    direct = per_call_us(submits, calls, rounds)
    s.wait_idle(60)
    s.stop(10)

    std = logging.getLogger("bench")
    std.propagate = False
    std.setLevel(logging.INFO)
    fh = logging.StreamHandler(devnull)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    std.addHandler(fh)

    def std_calls(n: int) -> None:
        for i in range(n):
            std.info("request %d done in %d ms", i, 12)
    std_anchor = per_call_us(std_calls, calls, rounds)
    std.removeHandler(fh)
    s2 = shipper(url)
    s2.start()
    lh = LokiHandler(s2.submit, STREAM)
    std.addHandler(lh)
    std_shipped = per_call_us(std_calls, calls, rounds)
    std.removeHandler(lh)
    s2.stop(10)
    devnull.close()

    print(f"loguru -> /dev/null file sink (anchor)        {anchor:7.2f} us/call")
    print(f"loguru -> no-op function sink (loguru alone)  {noop:7.2f} us/call")
    print(f"loguru -> Loki shipper sink, sender running   {shipped:7.2f} us/call   "
          f"ratio to anchor {shipped / anchor:.2f}   (lines dropped: {lost})")
    print(f"the Loki sink alone, per record               {sink_alone:7.2f} us/call   "
          f"(goal <= 5 us: what the shipper adds to a log call)")
    print(f"LogShipper.submit, sender running             {direct:7.2f} us/call   (hub intake path)")
    print(f"logging -> /dev/null handler (anchor)         {std_anchor:7.2f} us/call")
    print(f"logging -> LokiHandler, sender running        {std_shipped:7.2f} us/call   "
          f"ratio to anchor {std_shipped / std_anchor:.2f}")


def throughput(url: str, lines: int) -> None:
    print(f"== lines shipped per second to the stand-in ({lines} lines) ==")
    s = shipper(url)
    for i in range(lines):
        s.submit(LogEntry(time.time_ns(), INFO, "info", f"request {i} done in 12 ms", STREAM))
    t0 = time.perf_counter()
    s.start()
    assert s.wait_idle(120)
    backlog = time.perf_counter() - t0
    sent = s.stats.lines_sent
    batches = s.stats.batches_sent
    s.stop(10)
    print(f"backlog drained: {sent} lines in {backlog:.2f} s = {sent / backlog:,.0f} lines/s "
          f"({batches} pushes, ~{s.stats.bytes_sent / max(batches, 1) / 1024:.0f} KiB gzip each)")

    s = shipper(url)
    s.start()
    done = threading.Event()

    def produce() -> None:
        for i in range(lines):
            s.submit(LogEntry(time.time_ns(), INFO, "info", f"request {i} done in 12 ms", STREAM))
        done.set()
    t0 = time.perf_counter()
    threading.Thread(target=produce).start()
    done.wait()
    assert s.wait_idle(120)
    steady = time.perf_counter() - t0
    print(f"logged and shipped concurrently: {s.stats.lines_sent} lines in {steady:.2f} s = "
          f"{s.stats.lines_sent / steady:,.0f} lines/s (dropped: {sum(s.dropped().values())})")
    s.stop(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=300_000)
    args = ap.parse_args()
    proc, url = start_stand_in()
    try:
        caller_cost(url, args.calls, args.rounds)
        throughput(url, args.lines)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


if __name__ == "__main__":
    main()
