"""The Loki stand-in follows Loki's documented push contract (it is the yardstick)."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest

from fleetobs.testing.loki import LokiLimits, LokiStandIn, Reply

NOW = time.time_ns()


def push(loki: LokiStandIn, doc: Any, *, gz: bool = True, ctype: str = "application/json",
         headers: dict[str, str] | None = None) -> httpx.Response:
    raw = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    h = {"Content-Type": ctype, **(headers or {})}
    if gz:
        raw = gzip.compress(raw)
        h["Content-Encoding"] = "gzip"
    return httpx.post(loki.url + "/loki/api/v1/push", content=raw, headers=h, timeout=5)


def stream(values: list[list[Any]], **labels: str) -> dict[str, Any]:
    return {"stream": labels or {"source": "t"}, "values": values}


def test_valid_push_is_204_and_stored(loki: LokiStandIn) -> None:
    r = push(loki, {"streams": [stream([[str(NOW), "a"], [str(NOW + 1), "b"]], agent="x")]})
    assert r.status_code == 204
    assert [(s.label_dict, s.line) for s in loki.stored] == [({"agent": "x"}, "a"), ({"agent": "x"}, "b")]
    assert loki.requests[0].content_encoding == "gzip"


def test_partial_400_stores_the_valid_entries_and_says_what_was_refused(loki: LokiStandIn) -> None:
    too_old = NOW - 200 * 3600 * 10**9
    too_new = NOW + 3600 * 10**9
    r = push(loki, {"streams": [stream([[str(too_old), "old"], [str(NOW), "ok"],
                                        [str(too_new), "future"]])]})
    assert r.status_code == 400
    assert "timestamp too old" in r.text and "timestamp too new" in r.text
    assert "total ignored: 2 out of 3" in r.text
    assert [s.line for s in loki.stored] == ["ok"]


def test_out_of_order_is_refused_when_unordered_writes_are_off(loki: LokiStandIn) -> None:
    assert push(loki, {"streams": [stream([[str(NOW), "first"]])]}).status_code == 204
    r = push(loki, {"streams": [stream([[str(NOW - 5), "earlier"], [str(NOW + 5), "later"]])]})
    assert r.status_code == 400 and "entry out of order" in r.text
    assert [s.line for s in loki.stored] == ["first", "later"]


def test_unordered_writes_accept_within_the_window_only() -> None:
    with LokiStandIn() as loki:
        push(loki, {"streams": [stream([[str(NOW), "new"]])]})
        assert push(loki, {"streams": [stream([[str(NOW - 10**9), "a bit older"]])]}).status_code == 204
        r = push(loki, {"streams": [stream([[str(NOW - 2 * 3600 * 10**9), "way behind"]])]})
        assert r.status_code == 400 and "too far behind" in r.text


def test_exact_duplicates_are_ignored_like_loki_does(loki: LokiStandIn) -> None:
    doc = {"streams": [stream([[str(NOW), "same"]])]}
    assert push(loki, doc).status_code == 204
    assert push(loki, doc).status_code == 204
    assert len(loki.stored) == 1 and loki.duplicates == 1


@pytest.mark.parametrize(("doc", "status", "text"), [
    (b"{not json", 400, "invalid JSON"),
    ({"streams": {}}, 400, "must be an array"),
    ({"streams": [{"stream": {"a": 1}, "values": []}]}, 400, "label values must be strings"),
    ({"streams": [stream([[NOW, "ts is a number"]])]}, 400, "unix ns"),
    ({"streams": [stream([[str(NOW)]])]}, 400, "unix ns"),
    ({"streams": [{"stream": {}, "values": [[str(NOW), "x"]]}]}, 400, "at least one label pair"),
    ({"streams": [{"stream": {"bad-name": "v"}, "values": [[str(NOW), "x"]]}]}, 400, "invalid label name"),
])
def test_junk_is_400_with_a_reason(loki: LokiStandIn, doc: Any, status: int, text: str) -> None:
    r = push(loki, doc)
    assert (r.status_code, text in r.text) == (status, True), r.text
    assert loki.stored == []


def test_structured_metadata_refused_when_disallowed() -> None:
    with LokiStandIn(LokiLimits(allow_structured_metadata=False)) as loki:
        r = push(loki, {"streams": [stream([[str(NOW), "x", {"level": "info"}]])]})
        assert r.status_code == 400 and "structured metadata" in r.text
    with LokiStandIn() as loki:
        assert push(loki, {"streams": [stream([[str(NOW), "x", {"level": "info"}]])]}).status_code == 204
        assert loki.stored[0].metadata == (("level", "info"),)


def test_limits_413_415_401() -> None:
    with LokiStandIn(LokiLimits(max_body_bytes=2000, multi_tenant=True)) as loki:
        small = {"streams": [stream([[str(NOW), "x"]])]}
        assert push(loki, small).status_code == 401
        assert push(loki, small, headers={"X-Scope-OrgID": "t1"}).status_code == 204
        big = {"streams": [stream([[str(NOW + i), "y" * 100] for i in range(50)])]}
        assert push(loki, big, headers={"X-Scope-OrgID": "t1"}).status_code == 413
        assert push(loki, b"\x00", gz=False, ctype="application/x-protobuf",
                    headers={"X-Scope-OrgID": "t1"}).status_code == 415
        assert loki.requests[1].tenant == "t1"


def test_scripted_replies_then_normal_service(loki: LokiStandIn) -> None:
    loki.script(Reply(429, retry_after="7"), Reply(503, body="ingester down"))
    doc = {"streams": [stream([[str(NOW), "x"]])]}
    r1, r2, r3 = push(loki, doc), push(loki, doc), push(loki, doc)
    assert (r1.status_code, r1.headers["retry-after"]) == (429, "7")
    assert (r2.status_code, r2.text) == (503, "ingester down")
    assert r3.status_code == 204 and len(loki.stored) == 1


def test_down_refuses_connections_and_up_serves_on_the_same_port(loki: LokiStandIn) -> None:
    url = loki.url
    loki.down()
    with pytest.raises(httpx.ConnectError):
        push(loki, {"streams": [stream([[str(NOW), "x"]])]})
    loki.up()
    assert loki.url == url
    assert push(loki, {"streams": [stream([[str(NOW), "x"]])]}).status_code == 204


def test_hang_holds_requests_until_released(loki: LokiStandIn) -> None:
    loki.hang()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(loki.url + "/loki/api/v1/push", content=b"{}",
                   headers={"Content-Type": "application/json"}, timeout=0.2)
    assert loki.held == 1
    loki.release()
    assert push(loki, {"streams": [stream([[str(NOW), "x"]])]}).status_code == 204
