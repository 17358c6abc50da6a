"""The demo's webhook: keeps what Alertmanager posts, rejects junk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fleetobs.demo.notifications import NotificationReceiver, describe

PAGE = {"version": "4", "status": "firing", "receiver": "page", "groupKey": "k",
        "alerts": [{"status": "firing", "labels": {"alertname": "AgentDown", "machine": "mainpc",
                                                   "group": "vision_gpu", "agent": "FaceRecognitionAgent"}}]}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[NotificationReceiver]:
    r = NotificationReceiver("127.0.0.1", 0, tmp_path / "notifications.jsonl").start()
    try:
        yield r
    finally:
        r.stop()


def test_a_notification_is_counted_described_and_written_down(receiver: NotificationReceiver) -> None:
    assert httpx.post(receiver.url, json=PAGE).status_code == 200
    assert httpx.post(receiver.url, json={**PAGE, "receiver": "ticket", "status": "resolved"}).status_code == 200
    got = receiver.snapshot()
    assert dict(got.counts) == {"page": 1, "ticket": 1}
    assert got.last == "ticket resolved: AgentDown mainpc/vision_gpu/FaceRecognitionAgent"
    lines = [json.loads(x) for x in receiver.log.read_text().splitlines()]
    assert [x["receiver"] for x in lines] == ["page", "ticket"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"page"', b"\xff\xfe"])
def test_junk_gets_400_and_is_not_kept(receiver: NotificationReceiver, body: bytes) -> None:
    r = httpx.post(receiver.url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert receiver.snapshot().counts == {}
    assert not receiver.log.exists()


def test_other_paths_are_404(receiver: NotificationReceiver) -> None:
    assert httpx.post(receiver.url.replace("/fleetobs/notify", "/x"), json=PAGE).status_code == 404


def test_stop_is_idempotent(tmp_path: Path) -> None:
    r = NotificationReceiver("127.0.0.1", 0, tmp_path / "n.jsonl").start()
    r.stop()
    r.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(r.url, json=PAGE, timeout=1)


def test_describe_shortens_long_groups() -> None:
    alerts = [{"labels": {"alertname": "AgentDown", "machine": "pc2", "agent": f"A{i}"}} for i in range(5)]
    assert describe({"receiver": "page", "status": "firing", "alerts": alerts}) == \
        "page firing: AgentDown pc2/A0, AgentDown pc2/A1, AgentDown pc2/A2 (+2)"
