"""Real Docker for the tests: the daemon, the locally built images, compose projects.

No image registry is reachable, so every image is built here: a Debian base made with
debootstrap from the mirror apt already uses (:mod:`.base`), the fleetobs image from a
host-built wheelhouse and stand-ins for Prometheus, Alertmanager, Redis and NATS from
Debian's packages (:mod:`.images`). docker/README.md is the operator's side of it.
"""
