"""Run ``fleetobs simulate`` as a separate process (benchmarks: the load generator must
not share the measured process's CPU), and read back the ports it bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def simulator_process(args: Sequence[str], start_timeout: float = 60.0) -> Iterator[Path]:
    """Start ``fleetobs simulate --ephemeral ARGS``; yields the topology file it wrote
    (ports actually bound); stops it with SIGINT (then SIGKILL after 10 s)."""
    with tempfile.TemporaryDirectory(prefix="fleetobs-sim-") as tmp:
        topo = Path(tmp) / "topology.yaml"
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetobs.cli.main", "simulate", "--ephemeral",
             "--write-topology", str(topo), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + start_timeout
            while not (topo.exists() and topo.stat().st_size):
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise RuntimeError(f"simulator exited {proc.returncode}: {err}")
                if time.monotonic() > deadline:
                    raise RuntimeError("simulator did not start in time")
                time.sleep(0.05)
            time.sleep(0.2)  # the file is written just before the "simulating" line
            yield topo
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
