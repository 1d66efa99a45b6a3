"""Group commit: concurrent proposals travel through Raft as one entry.

PySyncObj's cost is mostly per log entry (pickle, journal, encryption, one
callback each), not per byte. While a few groups are in flight, new proposals
wait here and then go together, so under load one Raft entry carries many
writes, and alone a write goes at once, from its own thread. Each command in a
group is applied on its own, with its own outcome: grouping never makes writes
depend on each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from master.store.commands import Command, Group

Callback = Callable[[Any, int], None]
Apply = Callable[..., None]  # StateMachine.apply(command, callback=...)


class GroupCommitter:
    def __init__(self, apply: Apply, max_in_flight: int = 2, max_group: int = 512,
                 in_flight_timeout: float = 10.0) -> None:
        self._apply = apply
        self._max_in_flight = max_in_flight
        self._max_group = max_group
        self._in_flight_timeout = in_flight_timeout
        self._pending: list[tuple[Command, Callback]] = []
        self._in_flight: dict[int, float] = {}  # group number -> when to stop waiting for it
        self._numbers = iter(range(1 << 62))
        self._changed = threading.Condition()
        self._closed = False
        self._held = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, command: Command, callback: Callback) -> None:
        """With room in flight and nothing waiting, the proposal goes from the caller's thread at once:
        a lone write does not pay a hand-over to this committer's thread (and, on a busy master, a
        wait for the GIL there); otherwise it waits here and goes with the next group."""
        with self._changed:
            alone = not self._closed and not self._held and not self._pending and self._has_room()
            if alone:
                number = self._open_group()
            else:
                self._pending.append((command, callback))
                self._changed.notify()
        if alone:
            self._send(number, [(command, callback)])

    def _open_group(self) -> int:
        """A group number counted in flight (called holding `_changed`)."""
        number = next(self._numbers)
        self._in_flight[number] = time.monotonic() + self._in_flight_timeout
        return number

    def hold(self) -> None:
        """Propose nothing until `release`: a leader handing over (replicated.Store.hand_over) appends
        no entry its successor would lack; what comes meanwhile waits here, then goes to the new one."""
        with self._changed:
            self._held = True

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout=5)

    def _has_room(self) -> bool:
        now = time.monotonic()
        for number, deadline in list(self._in_flight.items()):
            if deadline < now:  # its callback is overdue: its proposers have timed out already
                del self._in_flight[number]
        return len(self._in_flight) < self._max_in_flight

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (self._held or not (self._pending and self._has_room())):
                    self._changed.wait(timeout=0.5 if self._in_flight else None)
                if self._closed:
                    return
                batch = self._pending[: self._max_group]
                del self._pending[: self._max_group]
                number = self._open_group()
            self._send(number, batch)

    def _send(self, number: int, batch: list[tuple[Command, Callback]]) -> None:
        def done(result: Any, error: int) -> None:
            with self._changed:
                self._in_flight.pop(number, None)
                if self._pending:  # room for them now; with none waiting, the committer sleeps on
                    self._changed.notify()
            if len(batch) == 1:
                batch[0][1](result, error)
                return
            for index, (_, callback) in enumerate(batch):
                callback(None if result is None else result[index], error)

        if len(batch) == 1:
            self._apply(batch[0][0], callback=done)
        else:
            self._apply(Group(tuple(command for command, _ in batch)), callback=done)
