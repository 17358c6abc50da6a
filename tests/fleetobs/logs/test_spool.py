"""The outbox: disk spool (persistent, capped, ordered) and its memory twin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.logs.batch import Batch, BatchEncoder
from fleetobs.logs.model import INFO, LogEntry, StreamLabels
from fleetobs.logs.spool import DiskSpool, MemoryOutbox, Outbox, SpoolBusyError

S = StreamLabels(source="test")


def batch(*msgs: str, ts: int = 1) -> Batch:
    b = BatchEncoder().encode([LogEntry(ts + i, INFO, "info", m, S) for i, m in enumerate(msgs)])
    assert b is not None
    return b


def messages(b: Batch) -> list[str]:
    return [v[1].split('"msg":"')[1].split('"')[0] for s in b.streams for v in s["values"]]


def drain(box: Outbox) -> list[list[str]]:
    out = []
    while (head := box.peek()) is not None:
        out.append(messages(head))
        box.pop()
    return out


@pytest.fixture(params=["disk", "memory"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    outbox: Outbox = DiskSpool(tmp_path / "spool", 1 << 20) if request.param == "disk" \
        else MemoryOutbox(1 << 20)
    yield outbox
    outbox.close()


def test_fifo_order_and_split_parts_take_the_heads_place(box: Outbox) -> None:
    box.append(batch("a1", "a2", "a3"))
    box.append(batch("b1"))
    head = box.peek()
    assert head is not None
    first, second = head.split()
    box.replace_head([first, second])
    assert len(box) == 3
    assert drain(box) == [["a1"], ["a2", "a3"], ["b1"]]
    assert box.nbytes == 0


def test_full_outbox_drops_oldest_batches_and_reports_their_lines(tmp_path: Path) -> None:
    one = batch("m0", "pad" * 10)
    for box in (DiskSpool(tmp_path / "s", 3 * len(one.body) + 200), MemoryOutbox(3 * len(one.body))):
        dropped = sum(box.append(batch(f"m{i}", "pad" * 10)) for i in range(6))
        kept = [m[0] for m in drain(box)]
        assert 0 < len(kept) < 6
        assert dropped == 2 * (6 - len(kept))  # two lines per evicted batch
        assert kept == [f"m{i}" for i in range(6 - len(kept), 6)]  # the newest stay
        assert box.nbytes == 0
        box.close()


def test_full_outbox_keeps_the_newest(tmp_path: Path) -> None:
    box = DiskSpool(tmp_path / "s", 1500)
    for i in range(20):
        box.append(batch(f"m{i:02d}"))
        assert box.nbytes <= 1500
    kept = [m[0] for m in drain(box)]
    assert kept and kept == [f"m{i:02d}" for i in range(20 - len(kept), 20)]
    assert box.nbytes == 0
    box.close()


def test_batch_bigger_than_the_cap_is_refused_whole(tmp_path: Path) -> None:
    box = DiskSpool(tmp_path / "s", 100)
    assert box.append(batch("a", "b", "c")) == 3
    assert len(box) == 0
    box.close()


def test_one_process_per_spool(tmp_path: Path) -> None:
    first = DiskSpool(tmp_path / "s", 1 << 20)
    with pytest.raises(SpoolBusyError, match="in use"):
        DiskSpool(tmp_path / "s", 1 << 20)
    first.close()
    DiskSpool(tmp_path / "s", 1 << 20).close()


def test_disk_spool_survives_a_restart_in_order(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    first = DiskSpool(d, 1 << 20)
    first.append(batch("a1", "a2"))
    first.append(batch("b1"))
    head = first.peek()
    assert head is not None
    first.replace_head(list(head.split()))
    (d / "0000000000000099.batch.tmp").write_bytes(b"half written")
    first.close()
    again = DiskSpool(d, 1 << 20)
    assert again.nbytes == first.nbytes
    again.append(batch("c1"))
    assert drain(again) == [["a1"], ["a2"], ["b1"], ["c1"]]
    assert [p.name for p in d.iterdir()] == [".lock"]
    again.close()


def test_unreadable_spool_file_is_skipped_and_counted(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    box = DiskSpool(d, 1 << 20)
    box.append(batch("a"))
    box.append(batch("b"))
    first = sorted(d.glob("*.batch"))[0]
    first.write_bytes(b"garbage without a header")
    box.close()
    again = DiskSpool(d, 1 << 20)
    assert drain(again) == [["b"]]
    assert again.corrupt_lines == 1
    again.close()
