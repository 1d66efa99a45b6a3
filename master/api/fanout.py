"""One thread per master writes every watch stream's events: a watch holds no thread that wakes per batch.

A watch used to run in its waitress thread, waiting on the store's condition, and encode each event
itself. With 1,000 watchers on 3 masters (about 333 threads each) every applied batch (about 100 a
second at 1,000 writes/s) woke all of them at once: they queued for the apply lock and the GIL, Raft's
thread starved, and leadership flapped. Here a watch, once its first bookmark is out, hands its
connection to the master's `Fanout`: one thread waits for the window, filters and encodes each batch
once per group of watches that would be sent the same bytes (`Selection`: kind, namespace, selector,
principal, format, revision reached) and writes those bytes to each connection. The request's thread
blocks on an Event until the stream ends (it wakes once), so waitress's pool still counts the streams
(stream_limit, streams.py). A watch not served by waitress (Flask's test client) runs the same
`frames` in its own thread (watch.py).

A slow reader is skipped while more than BACKLOG_BYTES of its output is unsent: it stays at its
revision and later gets what it missed in one larger write (or, once that is older than the window,
the 410 ERROR a client resuming too late gets). The fan-out thread never waits on one client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from master.api.auth import Principal
from master.store.encryption import SealError
from master.store.replicated import Store
from master.store.state import WatchEvent
from master.store.window import WindowExpired

log = logging.getLogger(__name__)
# unsent output past which a watch is skipped for the round: below waitress's outbuf_overflow (1 MiB),
# past which its buffer moves to a temporary file
BACKLOG_BYTES = 256 << 10
TICK_SECONDS = 1.0  # the longest wait for events: deadlines, departed clients and bookmarks are checked
BEHIND_TICK_SECONDS = 0.05  # the wait while a skipped watch is behind
# Rounds start at most this often: a round's cost is mostly per connection (a write, its TLS record),
# so under a stream of small batches fewer, larger writes carry the same events for less CPU
ROUND_SECONDS = 0.02

Line = Callable[[dict], bytes]  # a payload as its frame: a JSON line or a server-sent event
Show = Callable[[dict], dict]  # an object as the watch's principal may see it (may raise SealError)


@dataclass(frozen=True)
class Selection:
    """What a watch is sent, bar its revision: watches with equal selections get equal bytes."""

    kind: str
    namespace: str | None
    selector: str  # the labelSelector as given
    principal: Principal  # whose view of the objects (Secrets' values, an agent's view of pods): all of it,
    # as a name alone could be a user's and a node agent's
    event_stream: bool  # server-sent events, else JSON lines


def frames(events: Iterable[WatchEvent], selection: Selection, matches: Callable[[dict], bool],
           show: Show, line: Line, encoded: dict[tuple[int, bool], bytes] | None = None
           ) -> tuple[bytes, bytes | None]:
    """The frames of the events this watch sees (bytes), and an ERROR frame that ends it (or None).
    `encoded` shares each event's frame among watches that see it unchanged (`show` gave it back as
    it was): the same event is encoded once per format, whoever watches it."""
    out: list[bytes] = []
    for event in events:
        obj = event.obj
        meta = obj["metadata"]
        if event.kind != selection.kind:
            continue
        if selection.namespace and meta.get("namespace") != selection.namespace:
            continue
        if not matches(meta.get("labels", {})):
            continue
        try:
            visible = show(obj)
        except SealError as err:  # a Secret's value under a key this master lacks
            return b"".join(out), line({"type": "ERROR", "code": err.status, "reason": err.reason,
                                        "error": err.message})
        key = (event.revision, selection.event_stream)
        frame = encoded.get(key) if encoded is not None and visible is obj else None
        if frame is None:
            frame = line({"type": event.type, "revision": event.revision, "object": visible})
            if encoded is not None and visible is obj:
                encoded[key] = frame
        out.append(frame)
    return b"".join(out), None


def bookmark_frame(line: Line, revision: int) -> bytes:
    """The stream has reached `revision`: what its client resumes from."""
    return line({"type": "BOOKMARK", "revision": revision})


def keepalive_frame(line: Line, revision: int, event_stream: bool) -> bytes:
    """An idle stream's bookmark; an event stream's comes after a `: heartbeat` comment."""
    return (b": heartbeat\n\n" if event_stream else b"") + bookmark_frame(line, revision)


def expired_frame(line: Line, err: WindowExpired) -> bytes:
    """The ERROR that ends a stream whose cursor left the event window: the client lists again."""
    return line({"type": "ERROR", "code": 410, "reason": "Expired", "error": str(err)})


def chunk(data: bytes, chunked: bool) -> bytes:
    """`data` as one chunk of a chunked body (HTTP/1.1 with no length), else as it is."""
    return b"%X\r\n%b\r\n" % (len(data), data) if chunked else data


@dataclass(eq=False)
class Watch:
    """One stream the fan-out writes: its selection, how far it got, and its connection."""

    selection: Selection
    matches: Callable[[dict], bool]
    show: Show
    line: Line
    cursor: int  # the newest revision this watch was sent (or passed over)
    deadline: float  # time.monotonic()
    write: Callable[[bytes], Any]  # the connection's (waitress: channel.write_soon)
    backlog: Callable[[], int]  # its bytes not sent yet
    gone: Callable[[], bool]  # true once the client closed the connection
    chunked: bool
    said: float = field(default_factory=time.monotonic)  # when it was last written to
    finished: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def send(self, data: bytes) -> bool:
        """Written (False: the stream is over, or the client is gone)."""
        with self._lock:
            if self._closed:
                return False
            try:
                self.write(chunk(data, self.chunked))
            except Exception:  # waitress's ClientDisconnected, or the socket's error
                return False
        self.said = time.monotonic()
        return True

    def close(self) -> None:
        """No write after this returns: the request's thread may finish the response."""
        with self._lock:
            self._closed = True
        self.finished.set()


class Fanout:
    """The master's watch writer: a thread while any watch is open."""

    def __init__(self, app: Flask, store: Store, bookmark_seconds: float) -> None:
        self.app = app
        self.store = store
        self.bookmark_seconds = bookmark_seconds
        self._lock = threading.Condition()
        self._watches: dict[Watch, None] = {}  # an ordered set: a watch leaves in O(1), in any order
        self._thread: threading.Thread | None = None
        self._fresh = False  # a watch was added: serve it now, not at the next event or tick

    def add(self, watch: Watch) -> None:
        with self._lock:
            self._watches[watch] = None
            self._fresh = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watch-fanout", daemon=True)
                self._thread.start()
        self.store.nudge()

    def remove(self, watch: Watch) -> None:
        watch.close()
        with self._lock:
            self._watches.pop(watch, None)

    def _run(self) -> None:
        seen = self.store.latest()
        behind = False
        started = 0.0
        while True:
            with self._lock:
                if not self._watches:
                    self._thread = None
                    return
            self.store.wait_past(seen, BEHIND_TICK_SECONDS if behind else TICK_SECONDS, lambda: self._fresh)
            self._fresh = False
            if (rest := started + ROUND_SECONDS - time.monotonic()) > 0:
                time.sleep(rest)
            started = time.monotonic()
            seen = self.store.latest()
            with self._lock:
                watches = list(self._watches)
            try:
                with self.app.app_context():  # shown() reads the master's RBAC and keyring
                    behind = self.round(watches)
            except Exception:  # one round's fault must not end every stream for good
                log.exception("the watch fan-out's round failed; its watches end")
                for watch in watches:
                    self.remove(watch)

    def round(self, watches: list[Watch]) -> bool:
        """Each watch gets the events past its cursor; True if one was skipped for its backlog."""
        now = time.monotonic()
        by_cursor: dict[int, list[WatchEvent] | WindowExpired] = {}
        groups: dict[tuple[Selection, int], tuple[bytes, bytes | None, int]] = {}
        encoded: dict[tuple[int, bool], bytes] = {}
        behind = False
        for watch in watches:
            if watch.gone() or now >= watch.deadline:
                self.remove(watch)
                continue
            if watch.backlog() > BACKLOG_BYTES:
                behind = True
                continue
            if watch.cursor not in by_cursor:
                try:
                    by_cursor[watch.cursor] = self.store.events_after(watch.cursor, wait=0)
                except WindowExpired as err:
                    by_cursor[watch.cursor] = err
            events = by_cursor[watch.cursor]
            if isinstance(events, WindowExpired):
                watch.send(expired_frame(watch.line, events))
                self.remove(watch)
                continue
            key = (watch.selection, watch.cursor)
            if key not in groups:
                body, error = frames(events, watch.selection, watch.matches, watch.show, watch.line, encoded)
                groups[key] = (body, error, events[-1].revision if events else watch.cursor)
            body, error, reached = groups[key]
            if not body and error is None and now - watch.said >= self.bookmark_seconds:
                body = keepalive_frame(watch.line, reached, watch.selection.event_stream)
            if error is not None:
                watch.send(body + error)
                self.remove(watch)
                continue
            if body and not watch.send(body):
                self.remove(watch)
                continue
            watch.cursor = reached
        return behind


_created = threading.Lock()


def fanout_of(app: Flask, store: Store, bookmark_seconds: float) -> Fanout:
    """The app's one Fanout (made on its first watch)."""
    with _created:
        fanout = app.extensions.get("berth-fanout")
        if fanout is None:
            fanout = app.extensions["berth-fanout"] = Fanout(app, store, bookmark_seconds)
        return fanout
