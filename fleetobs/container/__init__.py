"""What runs inside the compose bundle's containers besides the hub and the exporter.

``healthcheck``: the group healthcheck (standard library and pyzmq only: the agents' image
has neither fleetobs nor curl; the bundle carries a copy and mounts it read-only).
``relay``: the TCP relay that answers the agents' hard-coded ``localhost:6379`` / ``:4222``
inside a group's network namespace and forwards to the machine's Redis and NATS.
"""
