"""The RuleBook of the store's RBAC objects, and the decisions made with it, kept until they change.

The store's listener (called on every master after each apply, leader or follower) counts the
changes to RBAC kinds; a snapshot loaded replaces the state without events, so it counts too. A
request that finds the count moved rebuilds the book from the store (one read of four kinds) and
forgets every decision: a binding written or deleted takes effect on each master's next request
once that master has applied it. Between an apply and its listener (microseconds, on Raft's
thread) a request still sees the book before it, as if it had come a moment earlier.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from master.rbac.book import Decision, RuleBook
from master.rbac.builtin import RBAC_KINDS

MAX_DECISIONS = 50_000  # kept at once; all forgotten when full (one rebuild's worth of work)


class _Store(Protocol):
    snapshots_loaded: int

    def read(self, reader: Callable[[Any], Any]) -> tuple[Any, int]: ...

    def add_listener(self, listener: Callable[[list[Any]], None]) -> None: ...


def rbac_objects(state: Any) -> tuple[list[Any], ...]:
    """What a RuleBook is built of (roles, cluster roles, bindings, cluster bindings): taken under
    the store's lock, so only the lists are taken there; the book is built after."""
    return tuple(state.list(kind) for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"))


class RbacCache:
    def __init__(self, store: _Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._changes = 0
        self._built_at: tuple[int, int] | None = None
        self._book = RuleBook()
        self._decisions: dict[Hashable, Decision] = {}
        store.add_listener(self._changed)

    def _changed(self, events: list[Any]) -> None:
        if any(event.kind in RBAC_KINDS for event in events):
            with self._lock:
                self._changes += 1

    def _current(self) -> tuple[int, int]:
        return self._changes, self._store.snapshots_loaded

    def book(self) -> RuleBook:
        with self._lock:
            seen = self._current()
            if seen == self._built_at:
                return self._book
        lists, _ = self._store.read(rbac_objects)  # read after `seen`: never older than it
        book = RuleBook(*lists, parsed=self._book.parsed)
        with self._lock:
            if self._current() == seen:  # nothing changed meanwhile: it is the current book
                self._book, self._built_at, self._decisions = book, seen, {}
        return book

    def decide(self, key: Hashable, compute: Callable[[RuleBook], Decision]) -> Decision:
        """The decision for `key`, computed with the current book unless already made with it."""
        if self._current() == self._built_at:  # the hit, without the lock (reads of a tuple and a dict)
            found = self._decisions.get(key)
            if found is not None:
                return found
        book = self.book()
        with self._lock:
            found = self._decisions.get(key) if self._book is book else None
        if found is not None:
            return found
        decision = compute(book)
        with self._lock:
            if self._book is book:
                if len(self._decisions) >= MAX_DECISIONS:
                    self._decisions.clear()
                self._decisions[key] = decision
        return decision
