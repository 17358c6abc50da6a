"""Start-up cost of ``fleetobs probe`` (the compose healthcheck), side by side with anchors.

Wall time per run (median of ``--runs``) of:
* anchor: ``python -c pass`` (the interpreter alone);
* ``fleetobs --version`` (the CLI's own floor: typer, settings, topology model);
* ``fleetobs probe HOST:PORT`` over zmq and over http, against a simulated agent;
* ``fleetobs probe AGENT`` (the name resolved through the committed topology).
Then the heaviest imports of a probe run (``python -X importtime``).

Run: python bench/probe_cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import yaml

from fleetobs.simulator.process import simulator_process

PY = sys.executable


def wall(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, int]:
    times, rc = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        rc = subprocess.run(cmd, capture_output=True, env=env, check=False).returncode
        times.append(time.perf_counter() - t)
    return statistics.median(times), rc


def heaviest_imports(cmd: list[str], env: dict[str, str], top: int = 8) -> list[tuple[int, str]]:
    """Top-level modules of a run by cumulative import time (microseconds)."""
    err = subprocess.run([PY, "-X", "importtime", *cmd[1:]], capture_output=True, text=True,
                         env=env, check=False).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if len(name) - len(name.lstrip()) == 1:  # one space: imported by the run itself
            rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(runs: int) -> None:
    env = {**os.environ}
    with simulator_process(["--synthetic", "1"]) as topo_file:
        agent = yaml.safe_load(topo_file.read_text())["agents"][0]
        hc = agent["health_check_port"]
        env_named = {**env, "FLEET_TOPOLOGY": str(topo_file), "MACHINE_TYPE": "sim"}
        cli = [PY, "-m", "fleetobs.cli.main"]
        rows = [
            ("anchor: python -c pass", [PY, "-c", "pass"], env),
            ("fleetobs --version", [*cli, "--version"], env),
            ("fleetobs probe HOST:PORT (zmq)", [*cli, "probe", f"127.0.0.1:{hc}"], env),
            ("fleetobs probe HOST:PORT --protocol http", [*cli, "probe", f"127.0.0.1:{hc + 1}", "-p", "http"], env),
            ("fleetobs probe AGENT (topology, zmq)", [*cli, "probe", agent["name"]], env_named),
        ]
        results = [(name, *wall(cmd, runs, e)) for name, cmd, e in rows]
        imports = heaviest_imports(rows[2][1], env)
    anchor = results[0][1]
    print(f"median wall time of {runs} runs each")
    for name, seconds, rc in results:
        print(f"  {name:44s} {seconds * 1000:7.1f} ms  {seconds / anchor:5.1f}x anchor  exit {rc}")
    print("heaviest top-level imports of `fleetobs probe HOST:PORT` (cumulative):")
    for us, name in imports:
        print(f"  {us / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    main(parser.parse_args().runs)
