"""The agent-side heartbeat client: import this in agent code.

Its only dependencies are the standard library and httpx (the topology, which needs
pydantic, is read lazily and only when ``FLEET_HUB_URL`` is unset)::

    from fleetobs.agent import HeartbeatClient

    beats = HeartbeatClient("NLUAgent", interval_seconds=10).start()
    beats.set_status("degraded", "model still loading")
    ...
    beats.close()  # final heartbeat, bounded by a deadline; safe to call twice
"""

from fleetobs.agent.client import HeartbeatClient
from fleetobs.agent.hub_url import HubUrlError, derive_hub_url

__all__ = ["HeartbeatClient", "HubUrlError", "derive_hub_url"]
