"""Fakes shipped with the GPU exporter: an NVML library for nvidia-ml-py's real
bindings, /proc trees, a Docker Engine API on a unix socket, a step clock."""
