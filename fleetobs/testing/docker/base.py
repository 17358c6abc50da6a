"""The local base image: Debian from the host's apt mirror, debootstrap + ``docker import``.

Cached by a content key (release, mirror, packages, this module's recipe): the image
is tagged ``fleetobs-base:<suite>-<key>`` and a later run that finds the tag reuses it
(debootstrap takes minutes). The rootfs is trimmed (apt caches, docs, man pages,
locales) before the import.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from fleetobs.testing.docker.apt import Mirror, debian_mirror
from fleetobs.testing.docker.cli import Docker, DockerError

REPOSITORY = "fleetobs-base"
#: What every image built on it needs: Python (3.11 on bookworm; ``venv --without-pip``
#: needs no python3-venv) and an init for PID 1.
PACKAGES = ("python3", "tini")
#: Bumped when the recipe changes in a way the key does not see.
RECIPE = 1
_TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
         "usr/share/info", "usr/share/locale", "usr/share/lintian", "var/log")


def content_key(mirror: Mirror, packages: tuple[str, ...] = PACKAGES) -> str:
    recipe = {"recipe": RECIPE, "uri": mirror.uri, "suite": mirror.suite,
              "packages": sorted(packages), "variant": "minbase", "trim": _TRIM}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def base_tag(mirror: Mirror, packages: tuple[str, ...] = PACKAGES) -> str:
    return f"{REPOSITORY}:{mirror.suite}-{content_key(mirror, packages)}"


def ensure_base_image(docker: Docker, *, mirror: Mirror | None = None,
                      packages: tuple[str, ...] = PACKAGES, workdir: Path | None = None,
                      timeout: float = 900) -> str:
    """The base image's tag, built now unless an image with its content key exists."""
    mirror = mirror or debian_mirror()
    tag = base_tag(mirror, packages)
    if docker.image_exists(tag):
        return tag
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(prefix="fleetobs-base-", dir=workdir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv = [debootstrap, "--variant=minbase", f"--include={','.join(packages)}",
                f"--keyring={mirror.keyring}", mirror.suite, str(rootfs), mirror.uri]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DockerError(f"debootstrap timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-2000:] if log.is_file() else proc.stderr[-2000:]
            raise DockerError(f"debootstrap {mirror.suite} from {mirror.uri} failed: {detail}")
        _configure(rootfs, mirror)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                               stdout=subprocess.PIPE)
        try:
            assert tar.stdout is not None
            imported = subprocess.run(
                [docker.binary, "import",
                 "--change", 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                 "--change", "ENV LANG=C.UTF-8",
                 "--change", 'CMD ["/bin/bash"]',
                 "--message", f"debootstrap {mirror.suite} minbase + {' '.join(packages)}",
                 "-", tag], stdin=tar.stdout, capture_output=True, text=True, timeout=600, check=False)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(60)
        if imported.returncode != 0 or tar.returncode != 0:
            raise DockerError(f"docker import of the base failed: {imported.stderr[-2000:]}")
    return tag


def _configure(rootfs: Path, mirror: Mirror) -> None:
    """apt pointed at the same mirror (the stand-in images install Debian packages from it),
    no recommends, caches cleaned after each install; then the trim."""
    (rootfs / "etc/apt/sources.list").write_text(f"deb {mirror.uri} {mirror.suite} main\n")
    conf = rootfs / "etc/apt/apt.conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "90fleetobs").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
    if mirror.uri.startswith("https://"):
        # HTTPS from containers meets a proxy CA only the host trusts: apt gets the host's.
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_ca.is_file():
            shutil.copyfile(host_ca, rootfs / "etc/ssl/host-ca.crt")
            (conf / "91host-ca").write_text('Acquire::https::CAInfo "/etc/ssl/host-ca.crt";\n')
    for rel in _TRIM:
        d = rootfs / rel
        if d.is_dir():
            for child in d.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
