"""Host PID -> container id for every cgroup form in the wild."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporters.cgroups import ProcessUnreadableError, ProcRoot, container_id_from_cgroup
from exporters.testing.fake_proc import FORMS, FakeProc, container_id, host_v1, host_v2

CID = container_id(0xC0FFEE)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_cgroup_form_yields_the_container_id(fake_proc: FakeProc, form: str) -> None:
    fake_proc.add_in_container(4242, CID, form)
    assert ProcRoot(fake_proc.root).container_of(4242) == CID


@pytest.mark.parametrize("text", [host_v1(), host_v2(), "0::/\n", "0::/init.scope\n", ""])
def test_host_processes_have_no_container(text: str) -> None:
    assert container_id_from_cgroup(text) is None


def test_podman_conmon_is_not_the_container() -> None:
    assert container_id_from_cgroup(f"0::/machine.slice/libpod-conmon-{CID}.scope\n") is None


def test_nested_scopes_belong_to_the_innermost_container() -> None:
    outer = container_id(1)
    text = f"0::/system.slice/docker-{outer}.scope/docker/{CID}/init.scope\n"
    assert container_id_from_cgroup(text) == CID


def test_the_unified_line_wins_over_v1_controllers() -> None:
    other = container_id(2)
    text = f"12:memory:/docker/{other}\n0::/system.slice/docker-{CID}.scope\n"
    assert container_id_from_cgroup(text) == CID


def test_short_or_non_hex_ids_are_not_containers() -> None:
    assert container_id_from_cgroup("0::/docker/abc123\n") is None
    assert container_id_from_cgroup(f"0::/docker/{'z' * 64}\n") is None


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: None, "process_gone"),
    (lambda p: (p / "4242").mkdir() or (p / "4242" / "cgroup").mkdir(), "unreadable"),
])
def test_unreadable_entries_raise_with_a_reason(
        fake_proc: FakeProc, make: Callable[..., object], reason: str) -> None:
    make(fake_proc.root)
    with pytest.raises(ProcessUnreadableError) as err:
        ProcRoot(fake_proc.root).container_of(4242)
    assert (err.value.pid, err.value.reason) == (4242, reason)


@given(st.text())
def test_any_cgroup_text_is_read_without_raising(text: str) -> None:
    result = container_id_from_cgroup(text)
    assert result is None or (len(result) == 64 and result in text)
