"""master/api/fanout.py: the frames a watch is sent from a batch of events, each event encoded once
for every watch that sees it unchanged, and one fan-out round over fake connections. The streams
themselves, through waitress on real masters, are test_ui_masters.py's and test_replication.py's."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from master.api.auth import Principal
from master.api.fanout import Fanout, Selection, Watch, chunk, frames
from master.objects.selectors import parse_selector
from master.store.encryption import SealError
from master.store.state import WatchEvent
from master.store.window import EventWindow, WindowExpired


def _line(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def _cm(name: str, namespace: str = "a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


EVENTS = [
    WatchEvent(1, "ADDED", _cm("x")),
    WatchEvent(2, "ADDED", {"kind": "Secret", "metadata": {"name": "s", "namespace": "a"}}),
    WatchEvent(3, "MODIFIED", _cm("y", "b")),
    WatchEvent(4, "DELETED", _cm("z", labels={"app": "web"})),
]


def _revisions(body: bytes) -> list[int]:
    return [json.loads(line)["revision"] for line in body.splitlines()]


@pytest.mark.parametrize(("namespace", "selector", "expected"), [
    (None, "", [1, 3, 4]),
    ("a", "", [1, 4]),
    ("b", "", [3]),
    (None, "app=web", [4]),
    ("b", "app=web", []),
])
def test_a_watch_is_sent_the_events_of_its_kind_namespace_and_labels(
        namespace: str | None, selector: str, expected: list[int]) -> None:
    selection = Selection("ConfigMap", namespace, selector, Principal("alice"), False)
    body, error = frames(EVENTS, selection, parse_selector(selector), lambda obj: obj, _line)
    assert _revisions(body) == expected and error is None


def test_an_event_seen_unchanged_is_encoded_once_for_every_watch() -> None:
    encoded: dict[tuple[int, bool], bytes] = {}
    calls: list[int] = []

    def counting(payload: dict) -> bytes:
        calls.append(payload["revision"])
        return _line(payload)

    selection = Selection("ConfigMap", None, "", Principal("alice"), False)
    first, _ = frames(EVENTS, selection, parse_selector(""), lambda obj: obj, counting, encoded)
    second, _ = frames(EVENTS, Selection("ConfigMap", "a", "", Principal("bob"), False), parse_selector(""),
                       lambda obj: obj, counting, encoded)
    assert calls == [1, 3, 4] and _revisions(second) == [1, 4] and first.startswith(second.split(b"\n")[0])
    # a view that changes the object (a Secret's values hidden) is that watch's own, never shared
    carol = Selection("ConfigMap", None, "", Principal("carol"), False)
    hidden, _ = frames(EVENTS, carol, parse_selector(""), lambda obj: {**obj, "hidden": True}, counting,
                       encoded)
    assert calls == [1, 3, 4, 1, 3, 4] and all(json.loads(x)["object"]["hidden"] for x in hidden.splitlines())


def test_a_value_that_does_not_open_ends_the_watch_with_an_error_after_the_events_before_it() -> None:
    def show(obj: dict) -> dict:
        if obj["kind"] == "Secret":
            raise SealError("secret a/s: key 1234 unknown here")
        return obj

    selection = Selection("Secret", None, "", Principal("alice"), False)
    body, error = frames(EVENTS, selection, parse_selector(""), show, _line)
    assert body == b"" and error is not None and json.loads(error)["code"] == 500


@pytest.mark.parametrize(("data", "chunked", "expected"), [
    (b"abc\n", True, b"4\r\nabc\n\r\n"),
    (b"x" * 26, True, b"1A\r\n" + b"x" * 26 + b"\r\n"),
    (b"abc\n", False, b"abc\n"),
])
def test_a_chunk_is_framed_only_for_a_chunked_body(data: bytes, chunked: bool, expected: bytes) -> None:
    assert chunk(data, chunked) == expected


class FakeStore:
    def __init__(self, events: list[WatchEvent], floor: int = 0) -> None:
        self.window = EventWindow(100, floor=floor)
        self.window.extend(events)

    def events_after(self, revision: int, wait: float) -> list[WatchEvent]:
        return self.window.since(revision)


class Conn:
    def __init__(self, backlog: int = 0, gone: bool = False) -> None:
        self.sent: list[bytes] = []
        self.unsent, self.closed = backlog, gone

    def watch(self, cursor: int, selection: Selection | None = None, chunked: bool = False,
              said: float | None = None) -> Watch:
        selection = selection or Selection("ConfigMap", None, "", Principal("alice"), False)
        return Watch(selection, parse_selector(""), lambda obj: obj, _line, cursor, time.monotonic() + 60,
                     self.sent.append, lambda: self.unsent, lambda: self.closed, chunked,
                     said=time.monotonic() if said is None else said)


def _fanout(store: FakeStore) -> Fanout:
    return Fanout(None, store, bookmark_seconds=5.0)  # type: ignore[arg-type]


def test_a_round_brings_each_watch_to_the_newest_revision_from_its_own() -> None:
    fanout = _fanout(FakeStore(EVENTS))
    behind, fresh = Conn(), Conn()
    watches = [behind.watch(0), fresh.watch(3, chunked=True)]
    assert fanout.round(watches) is False
    assert _revisions(behind.sent[0]) == [1, 3, 4] and fresh.sent == [chunk(_line({
        "type": "DELETED", "revision": 4, "object": EVENTS[3].obj}), True)]
    assert [w.cursor for w in watches] == [4, 4]
    fanout.round(watches)  # nothing new: nothing sent, no bookmark yet
    assert len(behind.sent) == len(fresh.sent) == 1


def test_watches_share_bytes_only_with_the_same_principal_not_the_same_name() -> None:
    fanout = _fanout(FakeStore(EVENTS))
    user, agent = Conn(), Conn()
    watches = [user.watch(0, Selection("ConfigMap", None, "", Principal("n1", "admin"), False)),
               agent.watch(0, Selection("ConfigMap", None, "", Principal("n1", "agent"), False))]
    watches[1].show = lambda obj: {**obj, "peer": True}  # as an agent sees another node's pods
    fanout.round(watches)
    assert not any("peer" in json.loads(x)["object"] for x in user.sent[0].splitlines())
    assert all(json.loads(x)["object"]["peer"] for x in agent.sent[0].splitlines())


def test_a_slow_reader_is_skipped_then_catches_up_and_a_gone_one_ends() -> None:
    fanout = _fanout(FakeStore(EVENTS))
    slow, gone = Conn(backlog=2 << 20), Conn(gone=True)
    watches = [slow.watch(0), gone.watch(0)]
    assert fanout.round(watches) is True
    assert slow.sent == [] and watches[0].cursor == 0 and not watches[0].finished.is_set()
    assert gone.sent == [] and watches[1].finished.is_set()
    slow.unsent = 0
    assert fanout.round(watches[:1]) is False and _revisions(slow.sent[0]) == [1, 3, 4]


def test_an_idle_watch_gets_a_bookmark_and_one_behind_the_window_a_410() -> None:
    fanout = _fanout(FakeStore(EVENTS, floor=0))
    idle, old = Conn(), Conn()
    fanout.store.window.reset(10)  # a snapshot: history before 10 is gone
    watches = [idle.watch(10, said=time.monotonic() - 6), old.watch(4)]
    fanout.round(watches)
    assert json.loads(idle.sent[0]) == {"type": "BOOKMARK", "revision": 10}
    assert json.loads(old.sent[0])["code"] == 410 and watches[1].finished.is_set()
    with pytest.raises(WindowExpired):
        fanout.store.events_after(4, 0)


def test_nothing_is_written_once_a_watch_is_closed() -> None:
    conn = Conn()
    watch = conn.watch(0)
    watch.close()
    assert watch.send(b"late\n") is False and conn.sent == [] and watch.finished.is_set()
