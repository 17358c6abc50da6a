from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.generate.files import check_paths, diff, write


def test_write_then_diff_is_clean_and_prunes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "out" / "old").mkdir(parents=True)
    (tmp_path / "out" / "old" / "gone.yml").write_text("x")
    (tmp_path / "elsewhere.txt").write_text("not ours")
    drift = write({"out/a.yml": "a: 1\n", "out/sub/b.json": "{}\n"}, tmp_path, ("out",))
    assert drift.missing == ("out/a.yml", "out/sub/b.json")
    assert drift.stale == ("out/old/gone.yml",)
    assert not (tmp_path / "out" / "old").exists()  # emptied folders go too
    assert (tmp_path / "elsewhere.txt").read_text() == "not ours"  # outside the folder: untouched
    assert not diff({"out/a.yml": "a: 1\n", "out/sub/b.json": "{}\n"}, tmp_path, ("out",))
    assert diff({"out/a.yml": "a: 2\n", "out/sub/b.json": "{}\n"}, tmp_path, ("out",)).changed == ("out/a.yml",)


@pytest.mark.parametrize("bad", ["/etc/passwd", "out/../../x", ""])
def test_paths_outside_the_output_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="must be relative"):
        check_paths({bad: "x"})
