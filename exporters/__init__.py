"""Exporters that feed the fleet's Prometheus: the NVML GPU exporter."""
