"""bench/versus_etcd.py's pure pieces: the etcd create-if-absent txn body and the Berth/etcd ratios.
The benchmark itself is not part of the suite (it installs and runs etcd)."""

from __future__ import annotations

import base64
import json

import pytest

from bench.versus_etcd import idle_cpu, ratio, txn_create_body


def test_txn_body_puts_the_key_only_if_it_was_never_created() -> None:
    value = b'{"kind":"Pod"}'
    body = json.loads(txn_create_body(b"/registry/pods/bench/p1", base64.b64encode(value).decode()))
    key = base64.b64encode(b"/registry/pods/bench/p1").decode()
    assert body["compare"] == [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}]
    assert body["success"] == [{"request_put": {"key": key, "value": base64.b64encode(value).decode()}}]
    assert "failure" not in body  # an existing key is left alone: the answer says succeeded false


@pytest.mark.parametrize(("berth", "etcd", "expected"), [
    (50.0, 500.0, "0.10x"),
    (0.0255, 0.0015, "17.00x"),
    (None, 1.0, "-"),
    (1.0, None, "-"),
    (1.0, 0.0, "-"),
    (float("nan"), 1.0, "-"),
    (1.0, float("nan"), "-"),
])
def test_ratio_is_berth_over_etcd_or_a_dash(berth: float | None, etcd: float | None, expected: str) -> None:
    assert ratio(berth, etcd) == expected


def test_idle_cpu_is_each_members_share_of_a_core_over_the_window() -> None:
    readings = iter([[1.0, 2.0], [1.005, 2.0]])  # before and after: 5 ms of CPU for the first member
    shares = idle_cpu(lambda: next(readings), seconds=0.05)
    assert [round(s, 3) for s in shares] == [10.0, 0.0]
