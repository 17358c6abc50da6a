"""Simulated agents in a child process that the parent steers over stdin/stdout.

``fleetobs simulate`` fixes every agent's behaviour at start; end-to-end tests need to
change it while it runs (the whole fleet degraded at once, agents stopped and started
again on the same ports) without sharing the test process's CPU time slice. So:

    python -m fleetobs.testing.sim_control --topology T --machine M --host H [--skip NAME]...

starts M's probed agents of T on T's ports and prints one JSON line
``{"ports": {name: [port, health_check_port]}}``. Then each JSON line on stdin is a
command, answered by one JSON line: ``{"op": "behaviour", "behaviour": "degraded",
"failing_check": "ready_signal", "agents": [...] | null}``, ``{"op": "stop", "agents":
...}``, ``{"op": "start", "agents": ...}`` -> ``{"ok": true, "agents": [names]}``. EOF on
stdin stops every agent and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fleetobs.simulator.agent import SimulatedAgent
from fleetobs.simulator.behaviour import Behaviour
from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology


async def _serve(topology: Path, machine: str, host: str, skip: set[str]) -> None:
    from fleetobs.topology.load import load_topology

    topo = load_topology(topology)
    specs = [s for s in specs_from_topology(topo, [machine], {}, PortPlan()) if s.name not in skip]
    fleet = SimulatedFleet(specs, host=host)
    report = await fleet.start()
    if report.failed:
        raise SystemExit(f"agents could not bind: {report.failed}")
    agents = {a.spec.name: a for a in fleet.agents.values()}
    _say({"ports": {n: [a.port, a.health_check_port] for n, a in agents.items()}})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            try:
                _say(await _command(json.loads(line), agents))
            except (ValueError, KeyError) as exc:
                _say({"ok": False, "error": str(exc)})
    finally:
        await fleet.stop()


async def _command(cmd: dict[str, Any], agents: dict[str, SimulatedAgent]) -> dict[str, Any]:
    names = list(agents) if cmd.get("agents") is None else list(cmd["agents"])
    chosen = [agents[n] for n in names if n in agents]
    op = cmd["op"]
    if op == "behaviour":
        behaviour = Behaviour(cmd["behaviour"])
        for a in chosen:
            if cmd.get("failing_check"):
                a.spec.failing_check = cmd["failing_check"]
            a.behaviour = behaviour
    elif op == "stop":
        await asyncio.gather(*(a.stop() for a in chosen))
    elif op == "start":
        await asyncio.gather(*(a.start() for a in chosen))
    else:
        raise ValueError(f"unknown op {op!r}")
    return {"ok": True, "agents": [a.spec.name for a in chosen]}


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class SimControl:
    """The parent's side: start the child, read its ports, send it commands."""

    def __init__(self, topology: Path, machine: str, host: str, skip: Iterable[str], log: Path) -> None:
        self.machine = machine
        self.log = log
        argv = [sys.executable, "-m", "fleetobs.testing.sim_control", "--topology", str(topology),
                "--machine", machine, "--host", host]
        for name in skip:
            argv += ["--skip", name]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         text=True, bufsize=1)
        self._lock = threading.Lock()
        self.ports: dict[str, tuple[int, int]] = {}

    def wait_ready(self) -> dict[str, tuple[int, int]]:
        first = self._read()
        self.ports = {n: (p[0], p[1]) for n, p in first["ports"].items()}
        return self.ports

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator of {self.machine} exited: {self.log.read_text()[-2000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def command(self, op: str, agents: Sequence[str] | None = None, **extra: str) -> list[str]:
        """Run ``op`` on ``agents`` (None: all); the names it applied to."""
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": op, "agents": agents, **extra}) + "\n")
            self.proc.stdin.flush()
            reply = self._read()
        if not reply.get("ok"):
            raise RuntimeError(f"simulator of {self.machine}: {reply}")
        return list(reply["agents"])

    def stop(self, deadline: float = 10.0) -> None:
        """Close stdin (the child stops its agents and exits); kill it past ``deadline``."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(deadline)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--topology", type=Path, required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--skip", action="append", default=[])
    args = p.parse_args(argv)
    asyncio.run(_serve(args.topology, args.machine, args.host, set(args.skip)))


if __name__ == "__main__":
    main()
