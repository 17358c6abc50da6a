"""The ObservabilityHub: one per machine. Heartbeats, probes, liveness, discovery, sync."""
