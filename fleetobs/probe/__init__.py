"""Ask legacy agents how they are, over their own health protocol (ZeroMQ or HTTP).

Imports only the standard library here; pyzmq and httpx load when a prober is
built, so ``fleetobs probe`` (a compose healthcheck) starts fast.
"""

from fleetobs.probe.result import Outcome, ProbeResult, Protocol

__all__ = ["Outcome", "ProbeResult", "Protocol"]
