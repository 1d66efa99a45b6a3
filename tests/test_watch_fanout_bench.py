"""bench/watch_fanout.py's pure pieces: a watcher's revisions judged against the writers' (each once, in
order, none missing) and the revisions read from a block of JSON lines without decoding it. The
benchmark itself is not part of the suite (1,000 watchers on three masters)."""

from __future__ import annotations

import base64
import json

import pytest

from bench.watch_fanout import ETCD, WatcherVerdict, check_watcher, revisions_in

CONFIRMED = [3, 5, 6, 9]


@pytest.mark.parametrize(("received", "verdict", "ok"), [
    ([3, 5, 6, 9], WatcherVerdict(4, 0, 0, 0, 0), True),
    ([3, 6, 9], WatcherVerdict(3, 1, 0, 0, 0, first_missing=5), False),  # a gap
    ([], WatcherVerdict(0, 4, 0, 0, 0, first_missing=3, behind=True), False),
    ([3, 5], WatcherVerdict(2, 2, 0, 0, 0, first_missing=6, behind=True), False),  # not caught up
    ([3, 5, 5, 6, 9], WatcherVerdict(5, 0, 1, 0, 0), False),  # a duplicate
    ([3, 6, 5, 9], WatcherVerdict(4, 0, 0, 1, 0), False),  # out of order
    ([3, 5, 6, 9, 5], WatcherVerdict(5, 0, 1, 1, 0), False),  # resent after later ones
    ([3, 4, 5, 6, 9], WatcherVerdict(5, 0, 0, 0, 1), False),  # a revision no writer confirmed
])
def test_a_watcher_passes_with_every_confirmed_revision_once_in_order(
        received: list[int], verdict: WatcherVerdict, ok: bool) -> None:
    assert check_watcher(received, CONFIRMED) == verdict
    assert verdict.ok() is ok


def test_an_unconfirmed_write_may_explain_an_unexpected_revision_and_nothing_else() -> None:
    assert check_watcher([3, 4, 5, 6, 9], CONFIRMED).ok(unconfirmed=1)
    assert not check_watcher([3, 4, 6, 9], CONFIRMED).ok(unconfirmed=1)  # 5 is still missing


def _line(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def test_revisions_come_from_events_only() -> None:
    block = (_line({"type": "BOOKMARK", "revision": 2})
             + _line({"type": "ADDED", "revision": 3, "object": {"metadata": {"name": "revision"}}})
             + _line({"type": "MODIFIED", "revision": 12, "object": {"data": {"k": '"revision":7'}}})
             + _line({"type": "DELETED", "revision": 13, "object": {}})
             + _line({"type": "ERROR", "code": 410, "reason": "Expired", "error": "gone"}))
    assert revisions_in(block) == [3, 12, 13]


def test_etcd_revisions_come_from_each_events_mod_revision() -> None:
    """etcd's gateway: one JSON message a line, events batched in one message, the header's revision
    (the store's, not an event's) and a value's text never counted (it is base64)."""
    value = base64.b64encode(b'{"mod_revision":"99"}').decode()
    kv = {"key": "L3JlZ2lzdHJ5", "create_revision": "5", "version": "2", "value": value}
    def event(revision: str, **more: str) -> dict:
        return {**more, "kv": {**kv, "mod_revision": revision}}

    block = (_line({"result": {"header": {"revision": "4"}, "created": True}})
             + _line({"result": {"header": {"revision": "7"},
                                 "events": [event("6"), event("7", type="DELETE")]}})
             + _line({"result": {"header": {"revision": "9"}, "events": [event("9")]}}))
    assert revisions_in(block, ETCD.event) == [6, 7, 9]
    assert ETCD.opened in block and ETCD.error not in block
