"""The fleet topology: model, loading, import from the real configs, and checks."""

from fleetobs.topology.load import Problem, TopologyError, load_topology
from fleetobs.topology.model import Agent, Group, Machine, ProbeKind, Topology

__all__ = ["Agent", "Group", "Machine", "ProbeKind", "Problem", "Topology", "TopologyError", "load_topology"]
