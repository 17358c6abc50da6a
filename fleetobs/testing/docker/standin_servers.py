"""Servers the Docker tests run in place of images that cannot be installed here.

``python -m fleetobs.testing.docker.standin_servers loki [LOKI ARGS...]``: the Loki
stand-in (fleetobs.testing.loki, Loki's push API) on 0.0.0.0:3100; the arguments meant
for the real Loki (``-config.file=...``) are accepted and ignored, so the generated
compose service runs unchanged with only its image swapped.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


def _serve_until_signal(stop: threading.Event) -> None:
    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    while not stop.wait(0.5):
        pass


def loki(port: int = 3100) -> int:
    from fleetobs.testing.loki import LokiStandIn

    with LokiStandIn(host="0.0.0.0", port=port):
        print(f"Loki stand-in listening on 0.0.0.0:{port}", file=sys.stderr, flush=True)
        _serve_until_signal(threading.Event())
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("loki",):
        print("usage: python -m fleetobs.testing.docker.standin_servers loki [ignored...]",
              file=sys.stderr)
        return 2
    return loki()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
