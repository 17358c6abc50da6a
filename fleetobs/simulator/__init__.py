"""A fleet simulator: a TOOL that runs agents as real protocol peers.

Each simulated agent opens what the real ``BaseAgent`` opens (ZeroMQ REP on its port
and health_check_port, HTTP /health and /metrics on health_check_port + 1) and
answers as it is told (ok, degraded with a reason, error, slow, silent, garbage,
down). It lets a newcomer see a populated hub on one machine and is the load
generator of the benchmarks. Nothing in the hub imports it.
"""

from fleetobs.simulator.behaviour import Behaviour, health_object

__all__ = ["Behaviour", "health_object"]
