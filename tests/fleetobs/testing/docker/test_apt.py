"""The Debian mirror for the local base image, read from apt's sources (both formats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.testing.docker.apt import DEFAULT_KEYRING, MirrorNotFoundError, debian_mirror

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'


def _apt(tmp_path: Path, sources: dict[str, str], main_list: str | None = None) -> tuple[Path, Path]:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in sources.items():
        (apt / "sources.list.d" / name).write_text(text)
    if main_list is not None:
        (apt / "sources.list").write_text(main_list)
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE)
    return apt, os_release


def test_deb822_sources_give_the_release_main_entry(tmp_path: Path) -> None:
    apt, osr = _apt(tmp_path, {"debian.sources": (
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n")})
    m = debian_mirror(apt, osr)
    assert (m.uri, m.suite, m.keyring) == ("http://mirror.example/debian", "bookworm",
                                           Path("/usr/share/keyrings/debian-archive-keyring.gpg"))


def test_one_line_sources_with_options(tmp_path: Path) -> None:
    apt, osr = _apt(tmp_path, {"other.list": "deb https://packages.example/apt cloud-sdk main\n"},
                    main_list="# deb http://old.example/debian bookworm main\n"
                              "deb [arch=amd64 signed-by=/etc/keys/d.gpg] http://m.example/debian "
                              "bookworm main contrib\n")
    m = debian_mirror(apt, osr)
    assert (m.uri, m.keyring) == ("http://m.example/debian", Path("/etc/keys/d.gpg"))


def test_disabled_entries_and_other_suites_are_skipped(tmp_path: Path) -> None:
    apt, osr = _apt(tmp_path, {
        "a.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
        "b.sources": "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n",
        "c.sources": "Types: deb\nURIs: http://on.example/debian\nSuites: bookworm\nComponents: main\n"})
    m = debian_mirror(apt, osr)
    assert (m.uri, m.keyring) == ("http://on.example/debian", DEFAULT_KEYRING)


def test_no_entry_for_the_release_is_a_clear_error(tmp_path: Path) -> None:
    apt, osr = _apt(tmp_path, {"x.sources": "Types: deb\nURIs: http://m.example/debian\nSuites: trixie\n"
                                            "Components: main\n"})
    with pytest.raises(MirrorNotFoundError, match="bookworm main"):
        debian_mirror(apt, osr)


def test_this_host_has_one() -> None:
    """The machine the Docker tests run on: apt is configured (no host name in the repo)."""
    if not Path("/etc/apt").is_dir():
        pytest.skip("not a Debian host")
    m = debian_mirror()
    assert m.uri.startswith(("http://", "https://")) and m.suite
