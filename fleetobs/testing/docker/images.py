"""Build every image the Docker tests run, with no registry and no network in the builds.

* the base: :mod:`.base` (debootstrap, cached by content key);
* the wheelhouse: ``pip wheel`` on the host, the dependencies cached by a key of
  ``pyproject.toml``'s dependency list and the Python version, fleetobs' own wheel
  built afresh every time;
* ``fleetobs:local-<source key>``: docker/Dockerfile on the base (``--build-arg BASE_IMAGE``);
* stand-ins from Debian's packages: docker/standins.Dockerfile, one target each
  (``fleetobs-standin-prometheus:local``, ``-alertmanager``, ``-redis``, ``-nats``), and
  ``fleetobs-standin-loki:local-<key>`` (the fleetobs image running the Loki stand-in).

``python -m fleetobs.testing.docker.images`` builds them all and prints the tags.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetobs.testing.docker.apt import debian_mirror
from fleetobs.testing.docker.base import base_tag, ensure_base_image
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


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One image build at a time on this machine: CI starts one in the background while
    the rest of the suite runs, and the Docker tests' own build waits for it (then finds
    everything cached)."""
    path = cache_dir() / "images.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pip_wheel(python: str, args: list[str], timeout: float) -> None:
    # A fixed SOURCE_DATE_EPOCH makes the wheel of unchanged sources byte-identical, so
    # docker build's layer cache holds across runs.
    proc = subprocess.run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
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


#: The label holding :func:`source_key` on a built fleetobs image.
KEY_LABEL = "org.fleetobs.source-key"
_PACKAGES = ("fleetobs", "hub", "exporters")


def source_key(base: str, repo: Path = REPO) -> str:
    """What the fleetobs image is built from: the packages' files, pyproject.toml, the
    Dockerfile and its healthcheck script, the base image and the dependency set."""
    h = hashlib.sha256(f"{base}\n{wheelhouse_key(repo)}\n".encode())
    files = [repo / "pyproject.toml", repo / "docker" / "Dockerfile", repo / "docker" / "fleetobs-ready"]
    for package in _PACKAGES:
        files += [p for p in (repo / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for f in sorted(files):
        h.update(f.relative_to(repo).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _labelled(docker: Docker, tag: str) -> str | None:
    if not docker.image_exists(tag):
        return None
    labels = docker.inspect(tag, kind="image")[0]["Config"].get("Labels") or {}
    value = labels.get(KEY_LABEL)
    return value if isinstance(value, str) else None


def build_fleetobs_image(docker: Docker, base: str, *, repo: Path = REPO, tag: str | None = None,
                         wheels: Path | None = None, timeout: float = 600) -> str:
    """docker/Dockerfile on ``base``, tagged ``fleetobs:local-<source key>`` unless ``tag``;
    ``wheels``: a wheelhouse already built (else built now). Nothing is built when the tag
    already carries the current :func:`source_key`. The key in the tag keeps runs from
    different checkouts on one daemon from re-tagging each other's image."""
    key = source_key(base, repo)
    tag = tag or f"fleetobs:{TAG}-{key}"
    if _labelled(docker, tag) == key:
        return tag
    with tempfile.TemporaryDirectory(prefix="fleetobs-image-") as tmp:
        if wheels is None:
            wheels = build_wheelhouse(Path(tmp) / "wheels", repo=repo)
        stage = _stage(wheels, Path(tmp) / "context", repo)
        docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "--label", f"{KEY_LABEL}={key}",
               "-f", str(stage / "docker" / "Dockerfile"), "-t", tag, str(stage), timeout=timeout)
    return tag


def prune_keyed(docker: Docker, repository: str, keep: str) -> None:
    """Remove the other ``local-<key>`` tags of ``repository`` (older sources). One that a
    container still uses (another run's) is refused by Docker and stays."""
    out = docker("images", repository, "--format", "{{.Repository}}:{{.Tag}}", timeout=60, check=False)
    for ref in out.split():
        if ref != keep and ref.split(":", 1)[-1].startswith(f"{TAG}-"):
            docker("rmi", ref, timeout=120, check=False)


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


def build_loki_standin(docker: Docker, fleetobs_image: str) -> str:
    """The fleetobs image running fleetobs.testing.loki on 3100, Loki's arguments ignored;
    tagged with the fleetobs image's key."""
    tag = f"fleetobs-standin-loki:{fleetobs_image.rsplit(':', 1)[1]}"
    dockerfile = (f"FROM {fleetobs_image}\nEXPOSE 3100\nHEALTHCHECK NONE\n"
                  'ENTRYPOINT ["tini", "--", "python", "-m", "fleetobs.testing.docker.standin_servers", '
                  '"loki"]\nCMD []\n')
    docker("build", "--quiet", "-t", tag, "-", input_bytes=dockerfile.encode(), timeout=300)
    return tag


def build_all(docker: Docker, *, log: Callable[[str], None] = lambda _m: None) -> Images:
    """Every image. The base (debootstrap) and the wheelhouse are made side by side, then
    the fleetobs image and the stand-ins (apt in a container) side by side; what is
    current already is not rebuilt."""
    started = time.monotonic()
    with build_lock(), tempfile.TemporaryDirectory(prefix="fleetobs-images-") as tmp, \
            ThreadPoolExecutor(2) as pool:
        expected = f"fleetobs:{TAG}-{source_key(base_tag(debian_mirror()))}"
        stale = not docker.image_exists(expected)  # build the wheels while debootstrap runs
        wheels_future = pool.submit(build_wheelhouse, Path(tmp) / "wheels") if stale else None
        base = ensure_base_image(docker)
        log(f"base {base} ready after {time.monotonic() - started:.0f}s")
        standins_future = pool.submit(build_standins, docker, base)
        fleetobs = build_fleetobs_image(docker, base, wheels=wheels_future.result() if wheels_future else None)
        log(f"{fleetobs} ready after {time.monotonic() - started:.0f}s")
        loki = build_loki_standin(docker, fleetobs)
        standins = standins_future.result()
        prune_keyed(docker, "fleetobs-standin-loki", loki)
        prune_keyed(docker, "fleetobs", fleetobs)
    log(f"stand-ins ready after {time.monotonic() - started:.0f}s")
    return Images(base=base, fleetobs=fleetobs, loki=loki, **standins)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fleetobs.testing.docker.images",
                                     description="Build the images of the Docker tests.")
    parser.add_argument("--start-daemon", action="store_true",
                        help="start dockerd when none answers and leave it running for the tests "
                             "(they adopt it through a marker file and stop it)")
    args = parser.parse_args(argv)
    binary = docker_binary()
    if binary is None:
        print("docker not found (apt-get install docker.io)", file=sys.stderr)
        return 2
    try:
        if args.start_daemon:
            from fleetobs.testing.docker.daemon import DockerDaemon

            daemon = DockerDaemon(cache_dir() / "dockerd.log", marker=daemon_marker()).start()
            daemon.detach()
        images = build_all(Docker(binary), log=lambda m: print(m, file=sys.stderr))
    except DockerError as exc:
        print(f"image build failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(images), indent=2))
    return 0


def daemon_marker() -> Path:
    """Where the PID of a dockerd fleetobs started is kept (see DockerDaemon)."""
    return cache_dir() / "dockerd.pid"


if __name__ == "__main__":
    sys.exit(main())
