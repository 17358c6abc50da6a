"""Build every image the Docker tests run, with no registry and no network in the builds.

* the base: :mod:`.base` (debootstrap, cached by content key);
* the wheelhouse: ``pip wheel`` on the host, the dependencies cached by a key of
  ``pyproject.toml``'s dependency list and the Python version, fleetobs' own wheel
  built afresh every time;
* ``fleetobs:local``: docker/Dockerfile on the base (``--build-arg BASE_IMAGE``);
* stand-ins from Debian's packages: docker/standins.Dockerfile, one target each
  (``fleetobs-standin-prometheus:local``, ``-alertmanager``, ``-redis``, ``-nats``), and
  ``fleetobs-standin-loki:local`` (the fleetobs image running the Loki stand-in).

``python -m fleetobs.testing.docker.images`` builds them all and prints the tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetobs.testing.docker.base import ensure_base_image
from fleetobs.testing.docker.cli import Docker, DockerError, docker_binary

REPO = Path(__file__).resolve().parents[3]
TAG = "local"
STANDINS = ("prometheus", "alertmanager", "redis", "nats")


@dataclass(frozen=True)
class Images:
    base: str
    fleetobs: str
    prometheus: str
    alertmanager: str
    redis: str
    nats: str
    loki: str


def cache_dir() -> Path:
    root = os.environ.get("FLEETOBS_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "fleetobs" if root else Path.home() / ".cache" / "fleetobs"


def _dependencies(repo: Path) -> list[str]:
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    deps = project.get("dependencies", [])
    assert isinstance(deps, list)
    # pip too: the Dockerfile runs pip from its wheel (no pip in the image).
    return [*(str(d) for d in deps), "pip"]


def wheelhouse_key(repo: Path, python: str = sys.executable) -> str:
    version = subprocess.run([python, "-c", "import sys,sysconfig;print(sys.version_info[:2],"
                              "sysconfig.get_platform())"], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()
    blob = json.dumps({"deps": sorted(_dependencies(repo)), "python": version})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pip_wheel(python: str, args: list[str], timeout: float) -> None:
    proc = subprocess.run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise DockerError(f"pip wheel {' '.join(args[-2:])} failed: {proc.stderr[-2000:]}")


def build_wheelhouse(out: Path, *, repo: Path = REPO, python: str = sys.executable,
                     timeout: float = 600) -> Path:
    """``out`` filled with fleetobs' wheel and every dependency's (cached)."""
    deps_dir = cache_dir() / f"wheelhouse-{wheelhouse_key(repo, python)}"
    if not (deps_dir / ".complete").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=deps_dir.parent if deps_dir.parent.exists()
                                    else None))
        try:
            _pip_wheel(python, ["--wheel-dir", str(tmp), *_dependencies(repo)], timeout)
            (tmp / ".complete").write_text("")
            deps_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(deps_dir, ignore_errors=True)
            shutil.move(str(tmp), deps_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for whl in deps_dir.glob("*.whl"):
        if not whl.name.startswith("fleetobs-"):
            shutil.copy2(whl, out / whl.name)
    with tempfile.TemporaryDirectory(prefix="fleetobs-wheel-") as build_tmp:
        # A copy of the sources: the build's own build/ and egg-info stay out of the tree.
        src = Path(build_tmp) / "src"
        shutil.copytree(repo, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.egg-info", "build", "__pycache__", ".mypy_cache", ".pytest_cache",
            ".ruff_cache", ".hypothesis", "wheels", "tests", "bench", ".fleetobs"))
        _pip_wheel(python, ["--no-deps", "--wheel-dir", str(out), str(src)], timeout)
    return out


def _stage(wheels: Path, stage: Path, repo: Path) -> Path:
    """A build context laid out as the repository root's (docker/...), with the wheels."""
    (stage / "docker").mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", "standins.Dockerfile", "fleetobs-ready"):
        shutil.copy2(repo / "docker" / name, stage / "docker" / name)
    shutil.copytree(wheels, stage / "docker" / "wheels", dirs_exist_ok=True)
    return stage


def build_fleetobs_image(docker: Docker, base: str, *, repo: Path = REPO, tag: str = f"fleetobs:{TAG}",
                         wheels: Path | None = None, timeout: float = 600) -> str:
    """docker/Dockerfile on ``base``; ``wheels``: a wheelhouse already built (else built now)."""
    with tempfile.TemporaryDirectory(prefix="fleetobs-image-") as tmp:
        if wheels is None:
            wheels = build_wheelhouse(Path(tmp) / "wheels", repo=repo)
        stage = _stage(wheels, Path(tmp) / "context", repo)
        docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "-f",
               str(stage / "docker" / "Dockerfile"), "-t", tag, str(stage), timeout=timeout)
    return tag


def build_standins(docker: Docker, base: str, *, repo: Path = REPO, timeout: float = 600) -> dict[str, str]:
    tags: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fleetobs-standins-") as tmp:
        context = Path(tmp)
        shutil.copy2(repo / "docker" / "standins.Dockerfile", context / "standins.Dockerfile")
        for target in STANDINS:  # the shared apt layer is built once, then cached
            tag = f"fleetobs-standin-{target}:{TAG}"
            docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "--target", target,
                   "-f", str(context / "standins.Dockerfile"), "-t", tag, str(context), timeout=timeout)
            tags[target] = tag
    return tags


def build_loki_standin(docker: Docker, fleetobs_image: str, tag: str = f"fleetobs-standin-loki:{TAG}",
                       ) -> str:
    """The fleetobs image running fleetobs.testing.loki on 3100, Loki's arguments ignored."""
    dockerfile = (f"FROM {fleetobs_image}\nEXPOSE 3100\nHEALTHCHECK NONE\n"
                  'ENTRYPOINT ["tini", "--", "python", "-m", "fleetobs.testing.docker.standin_servers", '
                  '"loki"]\nCMD []\n')
    docker("build", "--quiet", "-t", tag, "-", input_bytes=dockerfile.encode(), timeout=300)
    return tag


def build_all(docker: Docker, *, log: Callable[[str], None] = lambda _m: None) -> Images:
    """Every image. The base (debootstrap) and the wheelhouse are made side by side, then
    the fleetobs image and the stand-ins (apt in a container) side by side."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetobs-images-") as tmp, ThreadPoolExecutor(2) as pool:
        wheels_future = pool.submit(build_wheelhouse, Path(tmp) / "wheels")
        base = ensure_base_image(docker)
        log(f"base {base} ready after {time.monotonic() - started:.0f}s")
        standins_future = pool.submit(build_standins, docker, base)
        fleetobs = build_fleetobs_image(docker, base, wheels=wheels_future.result())
        log(f"{fleetobs} built after {time.monotonic() - started:.0f}s")
        loki = build_loki_standin(docker, fleetobs)
        standins = standins_future.result()
    log(f"stand-ins built after {time.monotonic() - started:.0f}s")
    return Images(base=base, fleetobs=fleetobs, loki=loki, **standins)


def main() -> int:
    binary = docker_binary()
    if binary is None:
        print("docker not found (apt-get install docker.io)", file=sys.stderr)
        return 2
    try:
        images = build_all(Docker(binary), log=lambda m: print(m, file=sys.stderr))
    except DockerError as exc:
        print(f"image build failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(images), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
