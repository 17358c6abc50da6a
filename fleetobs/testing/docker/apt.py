"""The Debian mirror apt already uses, read from the apt sources at run time.

Nothing here names a host: the URI comes from ``/etc/apt/sources.list.d/*.sources``
(deb822) or ``*.list`` / ``/etc/apt/sources.list`` (one-line form), the entry of type
``deb`` for this system's release (``VERSION_CODENAME`` in /etc/os-release) with the
``main`` component.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class MirrorNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True)
class Mirror:
    uri: str  # e.g. http://<mirror>/debian
    suite: str  # the release codename, e.g. bookworm
    keyring: Path


@dataclass(frozen=True)
class _Entry:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None
    enabled: bool = True


def codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip().strip('"'):
            return value.strip().strip('"')
    raise MirrorNotFoundError(f"{os_release} has no VERSION_CODENAME")


def _deb822(text: str) -> list[_Entry]:
    out: list[_Entry] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields:
            continue
        out.append(_Entry(tuple(fields.get("types", "").split()), tuple(fields.get("uris", "").split()),
                          tuple(fields.get("suites", "").split()),
                          tuple(fields.get("components", "").split()), fields.get("signed-by"),
                          fields.get("enabled", "yes").lower() != "no"))
    return out


def _one_line(text: str) -> list[_Entry]:
    out: list[_Entry] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        signed_by = None
        if "[" in line and "]" in line:  # options: deb [arch=amd64 signed-by=/x.gpg] URI ...
            opts, line = line[line.index("[") + 1:line.index("]")], (line[:line.index("[")]
                                                                     + line[line.index("]") + 1:])
            for opt in opts.split():
                k, _, v = opt.partition("=")
                if k == "signed-by":
                    signed_by = v
        parts = line.split()
        if len(parts) >= 3:
            out.append(_Entry((parts[0],), (parts[1],), (parts[2],), tuple(parts[3:]), signed_by))
    return out


def entries(apt_dir: Path = Path("/etc/apt")) -> list[_Entry]:
    found: list[_Entry] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        found += _one_line(main_list.read_text(encoding="utf-8", errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix == ".sources":
                found += _deb822(f.read_text(encoding="utf-8", errors="replace"))
            elif f.suffix == ".list":
                found += _one_line(f.read_text(encoding="utf-8", errors="replace"))
    return found


def debian_mirror(apt_dir: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release"),
                  ) -> Mirror:
    """The mirror for this release's ``main``; :class:`MirrorNotFoundError` when none."""
    suite = codename(os_release)
    for e in entries(apt_dir):
        if e.enabled and "deb" in e.types and suite in e.suites and "main" in e.components:
            for uri in e.uris:
                if uri.startswith(("http://", "https://")):
                    keyring = Path(e.signed_by) if e.signed_by and e.signed_by.startswith("/") \
                        else DEFAULT_KEYRING
                    return Mirror(uri.rstrip("/"), suite, keyring)
    raise MirrorNotFoundError(f"no apt source of type deb for {suite} main under {apt_dir}")
