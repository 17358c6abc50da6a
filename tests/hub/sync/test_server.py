"""Hostile input on the sync endpoint's handler (the HTTP router calls the same code)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.sync.merge import FleetView
from hub.sync.protocol import HubIdentity
from hub.sync.server import PUSH_PATH, RECONCILE_PATH, SyncServer

TOKEN = "s3cret-token"
AUTH = f"Bearer {TOKEN}"


def server(token: str | None = TOKEN, max_body: int = 64 * 1024) -> SyncServer:
    fleet = FleetView("mainpc", stale_after=8.0, known_machines=["mainpc", "pc2"])
    return SyncServer(fleet, lambda: HubIdentity(machine="mainpc", epoch=42),
                      clock=lambda: 500.0, token=token, max_body_bytes=max_body)


def record(name: str = "a", seq: int = 1, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "owner": "pc2", "machine": "pc2", "epoch": 3, "seq": seq,
                         "state": "up", "status": "ok", "interval_seconds": 5.0,
                         "age_seconds": 1.5}
    r.update(over)
    return r


def push(*records: dict[str, Any], epoch: int = 3, as_of: int = 100, **over: Any) -> bytes:
    body: dict[str, Any] = {"sender": {"machine": "pc2", "epoch": epoch}, "as_of": as_of,
                            "records": list(records)}
    body.update(over)
    return json.dumps(body).encode()


def test_a_valid_push_is_merged_and_acknowledged_with_the_receivers_identity() -> None:
    s = server()
    status, body = s.handle(PUSH_PATH, push(record("a"), record("b", 2)), AUTH)
    assert status == 200
    reply = json.loads(body)
    assert reply["receiver"] == {"machine": "mainpc", "epoch": 42}
    assert (reply["accepted"], reply["stale"], reply["need_full"]) == (2, 0, True)
    held = s.fleet.owners["pc2"].records
    assert held["a"].seen_at == 498.5


@pytest.mark.parametrize("auth", [None, "", "Bearer wrong", f"Basic {TOKEN}", f"bearer {TOKEN}x"])
def test_wrong_or_missing_token_is_401_and_changes_nothing(auth: str | None) -> None:
    s = server()
    status, body = s.handle(PUSH_PATH, push(record()), auth)
    assert status == 401
    assert "token" in json.loads(body)["detail"]
    assert s.fleet.owners == {}
    assert s.stats.rejected["unauthorized"] == 1


def test_no_token_configured_means_open() -> None:
    status, _ = server(token=None).handle(PUSH_PATH, push(record()), None)
    assert status == 200


def test_oversized_body_is_413_before_parsing() -> None:
    s = server(max_body=2048)
    big = push(*(record(f"n{i}", i + 1) for i in range(40)))
    assert len(big) > 2048
    status, body = s.handle(PUSH_PATH, big, AUTH)
    assert status == 413 and "2048" in json.loads(body)["detail"]
    assert s.fleet.owners == {}


@pytest.mark.parametrize(("body", "where"), [
    (b"", "body"),
    (b"\xff\xfe junk", "body"),
    (b"[1,2,3]", "body"),
    pytest.param(b"[" * 30_000 + b"]" * 30_000, "body", id="nesting-bomb"),
    (b'{"as_of": 123456789012345678901234567890}', "sender"),
    (b'{"sender": {"machine": "pc2", "epoch": 1}}', "as_of"),
    (push(record(seq=-1)), "records.0.seq"),
    (push(record(epoch=2**63)), "records.0.epoch"),
    (push(record(state="dead")), "records.0.state"),
    (push(record(name="../../etc")), "records.0.name"),
    (push(record(interval_seconds=float("nan"))), "records.0.interval_seconds"),
    (push(record(age_seconds=-5)), "records.0.age_seconds"),
    (push(record(reason="x" * 1000)), "records.0.reason"),
    (push(record(extra_field=1)), "records.0.extra_field"),
    (push(record(required="yes")), "records.0.required"),
    (push(record(), replace_buckets=[5000], buckets=16), "replace_buckets"),
    (push(record(), sender={"machine": "pc2"}), "sender.epoch"),
])
def test_junk_is_a_precise_422_and_changes_nothing(body: bytes, where: str) -> None:
    s = server()
    status, data = s.handle(PUSH_PATH, body, AUTH)
    assert status == 422, data
    assert json.loads(data)["detail"].startswith(where)
    assert s.fleet.owners == {}


def test_replace_buckets_beyond_the_bucket_count_is_422() -> None:
    s = server()
    status, _ = s.handle(PUSH_PATH, push(record(), buckets=4, replace_buckets=[4]), AUTH)
    assert status == 422


def test_too_many_records_is_422() -> None:
    s = server(max_body=8 * 1024 * 1024)
    body = push(*(record(f"n{i}", i + 1) for i in range(5001)), as_of=10_000)
    status, data = s.handle(PUSH_PATH, body, AUTH)
    assert status == 422 and json.loads(data)["detail"].startswith("records")


def test_forged_records_are_refused_one_by_one() -> None:
    s = server()
    status, data = s.handle(PUSH_PATH, push(
        record("mine", owner="mainpc", machine="mainpc"),
        record("theirs", owner="pc3", machine="pc3"),
        record("good")), AUTH)
    assert status == 200
    reply = json.loads(data)
    assert (reply["accepted"], reply["rejected"]) == (1, 2)
    assert set(s.fleet.owners["pc2"].records) == {"good"}
    assert s.stats.rejected == {"self_owner": 1, "forged_owner": 1}


def test_a_peer_claiming_to_be_this_hub_gets_409() -> None:
    s = server()
    body = push(record(owner="mainpc", machine="mainpc"), sender={"machine": "mainpc", "epoch": 1})
    status, data = s.handle(PUSH_PATH, body, AUTH)
    assert status == 409 and "self_owner" in json.loads(data)["detail"]
    assert s.fleet.owners == {}


def test_stale_versions_are_ignored_and_a_stale_epoch_is_409() -> None:
    s = server()
    assert s.handle(PUSH_PATH, push(record(seq=5, state="down")), AUTH)[0] == 200
    status, data = s.handle(PUSH_PATH, push(record(seq=4, state="up")), AUTH)
    assert status == 200 and json.loads(data)["stale"] == 1
    status, data = s.handle(PUSH_PATH, push(record(epoch=2, seq=99), epoch=2), AUTH)
    assert status == 409 and "stale_epoch" in json.loads(data)["detail"]
    assert s.fleet.owners["pc2"].records["a"].record.facts.state == "down"


def test_reconcile_validates_digests_and_answers_differing_buckets() -> None:
    s = server()
    ok = json.dumps({"sender": {"machine": "pc2", "epoch": 3}, "as_of": 0, "count": 0,
                     "digests": ["", "", "", ""]}).encode()
    status, data = s.handle(RECONCILE_PATH, ok, AUTH)
    assert status == 200 and json.loads(data)["differing"] == []
    bad = json.dumps({"sender": {"machine": "pc2", "epoch": 3}, "as_of": 0, "count": 0,
                      "digests": ["not-hex!"]}).encode()
    assert s.handle(RECONCILE_PATH, bad, AUTH)[0] == 422
    empty = json.dumps({"sender": {"machine": "pc2", "epoch": 3}, "as_of": 0, "count": 0,
                        "digests": []}).encode()
    assert s.handle(RECONCILE_PATH, empty, AUTH)[0] == 422


def test_unknown_path_is_404() -> None:
    assert server().handle("/v1/sync/other", b"{}", AUTH)[0] == 404
