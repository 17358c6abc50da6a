"""Who reads each environment variable the bundle hands a service (docs/compose.md lists them).

A variable nothing reads is a lie in the compose file (the real system's compose set
several); the generation-time check ``unread-env`` fails on one.
"""

from __future__ import annotations

from fleetobs.settings import ENV_VARS

FLEETOBS = "fleetobs settings (fleetobs/settings.py, docs/configuration.md)"

#: Readers outside fleetobs, by variable.
EXTERNAL: dict[str, str] = {
    "PYTORCH_CUDA_ALLOC_CONF": "PyTorch's CUDA caching allocator (the agents)",
    "CUDA_MPS_PIPE_DIRECTORY": "the CUDA runtime's MPS client (the agents)",
    "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "the CUDA runtime's MPS client (the agents)",
    "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "the CUDA runtime's MPS client (the agents): the group's VRAM cap",
    "HF_HOME": "huggingface_hub / transformers (the agents' model cache)",
    "NVIDIA_DRIVER_CAPABILITIES": "the NVIDIA container runtime",
}
#: Readers of whole prefixes.
PREFIXES: dict[str, str] = {"GF_": "Grafana (GF_<SECTION>_<KEY> overrides grafana.ini)"}

#: Which readers run in a service, by the kind of image it runs.
KIND_READERS: dict[str, tuple[str, ...]] = {
    "fleetobs": ("fleetobs", "NVIDIA_DRIVER_CAPABILITIES"),
    "group": ("fleetobs", "PYTORCH_CUDA_ALLOC_CONF", "CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
              "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "HF_HOME", "NVIDIA_DRIVER_CAPABILITIES"),
    "grafana": ("GF_",),
}


def reader(variable: str, kind: str) -> str | None:
    """Who reads ``variable`` in a service of ``kind`` (fleetobs, group, grafana, other); None: nobody."""
    for r in KIND_READERS.get(kind, ()):
        if r == "fleetobs" and variable in ENV_VARS:
            return FLEETOBS
        if r in PREFIXES and variable.startswith(r):
            return PREFIXES[r]
        if r == variable:
            return EXTERNAL[r]
    return None
