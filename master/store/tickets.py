"""Tickets: how a master learns the fate of a write whose leader changed under it.

A follower forwards its proposals to the leader. If the leader changes before it has told the
follower where in the log it put one (PySyncObj's LEADER_CHANGED, or a stale answer's
UNKNOWN_OUTCOME), the write may be committed or lost, and Raft says nothing more of it: the
client used to get a 503 OutcomeUnknown, a write it could neither trust nor safely repeat
(issue 19 item 8: one per master restarted in a rolling upgrade).

Each entry carries a ticket, and this master notes the outcome of every entry it applies whose
ticket it still awaits. Once a barrier proposed after the failure is applied here, the fate is
settled: an entry of the old leader's term that the new leader did not commit before the
barrier is not in the log of any leader to come (every later leader holds the barrier, and the
entries before it, at the positions it committed them), so a ticket not seen by then never will
be, and the write can be proposed again. This is the proposer's own bookkeeping, in memory only:
nothing about tickets is replicated or snapshotted, so masters of different releases agree.
"""

from __future__ import annotations

import random
import threading
from typing import Any

_AWAITED = object()  # issued, its entry not applied here yet


class Tickets:
    """The tickets of this master's proposals in flight, and the outcomes of those applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._book: dict[int, Any] = {}
        self._random = random.Random()

    def issue(self) -> int:
        """A new ticket (never 0, which marks entries without one), awaited from now on."""
        with self._lock:
            ticket = self._random.getrandbits(63) | 1
            self._book[ticket] = _AWAITED
        return ticket

    def applied(self, ticket: int, outcomes: Any) -> None:
        """Called on the apply of every ticketed entry, on every master: kept only by the one
        awaiting it."""
        with self._lock:
            if self._book.get(ticket) is _AWAITED:
                self._book[ticket] = outcomes

    def forget(self, ticket: int) -> None:
        """Its proposal was answered by Raft itself: no need to remember."""
        with self._lock:
            self._book.pop(ticket, None)

    def settle(self, ticket: int) -> tuple[bool, Any]:
        """(applied, outcomes): whether the ticket's entry has been applied here, and its outcomes.
        Only meaningful once a barrier proposed after the proposal was lost is applied here."""
        with self._lock:
            outcomes = self._book.pop(ticket, _AWAITED)
        return outcomes is not _AWAITED, None if outcomes is _AWAITED else outcomes

    def __len__(self) -> int:
        return len(self._book)
