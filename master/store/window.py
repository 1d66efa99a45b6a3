"""The ordered window of recent events that watches are served from.

Every master applies the same commands in the same order, so every master's
window holds the same revisions: a client may resume a watch on any master.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from master.store.state import WatchEvent


class WindowExpired(Exception):
    """The requested revision is older than the window: the client must list again."""

    def __init__(self, since: int, floor: int) -> None:
        super().__init__(f"revision {since} is older than the oldest kept ({floor}); list again")
        self.since = since
        self.floor = floor


class EventWindow:
    def __init__(self, size: int, floor: int = 0) -> None:
        self._events: deque[WatchEvent] = deque()
        self._size = size
        self.floor = floor  # every event with revision > floor is in the window
        self.latest = floor

    def reset(self, revision: int) -> None:
        """After a snapshot is loaded the history before it is unknown here."""
        self._events.clear()
        self.floor = self.latest = revision

    def extend(self, events: Iterable[WatchEvent]) -> None:
        for event in events:
            self._events.append(event)
            self.latest = event.revision
        while len(self._events) > self._size:
            self.floor = self._events.popleft().revision

    def since(self, revision: int) -> list[WatchEvent]:
        """Events after `revision`, oldest first."""
        if revision < self.floor:
            raise WindowExpired(revision, self.floor)
        newer: list[WatchEvent] = []
        for event in reversed(self._events):
            if event.revision <= revision:
                break
            newer.append(event)
        newer.reverse()
        return newer
