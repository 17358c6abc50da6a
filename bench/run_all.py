"""Run every benchmark in bench/ and print one table of ratios against their anchors.

``python bench/run_all.py`` runs each benchmark as its own process with quick settings
(``--full``: each one's defaults, as documented in its docstring and docs/*.md), keeps
each one's output under ``--out`` (default a temporary directory, printed), and prints
one table: benchmark, what is compared, the ratio, and the line it came from. A
benchmark whose anchor is missing here (e.g. Debian's ``prometheus-pushgateway``) or
that fails is listed with why, never silently dropped. Exit 1 when any failed.

Ratios are read from the benchmarks' own output: every ``1.23x`` figure and every
``ratio 1.23`` / ``ratio ... 1.23x`` on a line that names an anchor or a ratio.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    script: str
    quick: tuple[str, ...]
    needs: tuple[str, ...] = ()


BENCHES = (
    Bench("hub_heartbeats.py", ("--agents", "2000", "--seconds", "2", "--connections", "8"),
          ("prometheus-pushgateway",)),
    Bench("sync_bench.py", ("--changes", "40", "--e2e-changes", "10", "--agents", "2000",
                            "--partitions", "1")),
    Bench("probe_cycle.py", ("--cycles", "3", "--agents", "200")),
    Bench("probe_cpu.py", ("--seconds", "5",)),
    Bench("probe_cli_startup.py", ("--runs", "3",)),
    Bench("logs_bench.py", ("--calls", "20000", "--rounds", "2", "--lines", "30000")),
    Bench("gpu_exporter_bench.py", ("--rounds", "40",)),
    Bench("hub_start_stall.py", ("--agents", "2000", "--runs", "1")),
    Bench("hub_soak.py", ("--minutes", "0.5", "--agents", "2000")),
    Bench("alert_latency.py", ("--kills", "2",), needs=("prometheus", "prometheus-alertmanager")),
    Bench("alert_quality.py", (), needs=("prometheus", "prometheus-alertmanager")),
    Bench("rule_cost.py", ("--agents", "2000", "--minutes", "0.5", "--skip-stack"), needs=("prometheus",)),
    Bench("compose_bench.py", ("--runs", "1",), needs=("dockerd", "docker-compose", "debootstrap")),
)

#: Modules in bench/ that benchmarks import, not benchmarks themselves.
HELPERS = frozenset({"hubproc.py"})

_RATIO = re.compile(r"(?:ratio[^0-9\n]{0,40}?)?(\d+(?:\.\d+)?)x|ratio(?: to anchor)? (\d+(?:\.\d+)?)\b")
_RELEVANT = re.compile(r"ratio|anchor|/", re.IGNORECASE)
_GOAL = re.compile(r"\(goal[^)]*\)|goal [^,;)]*")


def ratios(output: str) -> list[tuple[str, float]]:
    """(line, ratio) for every ratio the benchmark printed."""
    out: list[tuple[str, float]] = []
    for line in output.splitlines():
        text = line.strip()
        if not _RELEVANT.search(text):
            continue
        for m in _RATIO.finditer(_GOAL.sub("", text)):  # a goal is not a measurement
            value = m.group(1) or m.group(2)
            if value is not None:
                out.append((text, float(value)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="each benchmark's own defaults (long)")
    ap.add_argument("--only", action="append", default=[], help="run only these scripts (repeatable)")
    ap.add_argument("--out", type=Path, help="keep each benchmark's output here")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark")
    args = ap.parse_args(argv)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="fleetobs-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, str]] = []
    failed = 0
    for b in BENCHES:
        if args.only and b.script not in args.only:
            continue
        missing = [n for n in b.needs if shutil.which(n) is None]
        if missing:
            rows.append((b.script, "-", "skipped", f"needs {', '.join(missing)} (apt-get install)"))
            continue
        argv_b = [sys.executable, str(BENCH / b.script), *(() if args.full else b.quick)]
        print(f"# {b.script} {' '.join(argv_b[2:])}", flush=True)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv_b, capture_output=True, text=True, timeout=args.timeout,
                                  cwd=BENCH.parent, check=False)
            output, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output, code = f"{exc.stdout or ''}{exc.stderr or ''}", -1
        (out_dir / f"{b.script}.txt").write_text(output, encoding="utf-8")
        took = time.monotonic() - t0
        if code != 0:
            failed += 1
            last = output.strip().splitlines()[-1] if output.strip() else ""
            rows.append((b.script, f"{took:.0f} s", "FAILED", f"exit {code}: {last[:100]}"))
            continue
        found = ratios(output)
        if not found:
            rows.append((b.script, f"{took:.0f} s", "-", "printed no ratio"))
        for line, value in found:
            rows.append((b.script, f"{took:.0f} s", f"{value:g}x", line[:110]))
    width = max((len(r[0]) for r in rows), default=10)
    print(f"\n{'benchmark':{width}}  {'time':>5}  {'ratio':>9}  line (measure vs anchor)")
    for script, took, ratio, line in rows:
        print(f"{script:{width}}  {took:>5}  {ratio:>9}  {line}")
    print(f"\noutputs: {out_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
