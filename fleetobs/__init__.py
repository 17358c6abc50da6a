"""fleetobs: observability for a fleet of AI agents on docker compose machines."""

__version__ = "0.1.0"
