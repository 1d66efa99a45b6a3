"""Leader-only: events older than the TTL are deleted, as Kubernetes keeps them an hour.

Every pod start, restart and scheduling decision records an event; without a TTL they
would fill the store (and every snapshot) for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.store.commands import Delete
from master.store.replicated import Store

log = logging.getLogger(__name__)


def expired(event: dict, before: datetime) -> bool:
    meta = event["metadata"]
    stamp = event.get("lastTimestamp") or event.get("firstTimestamp") or meta.get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(stamp)) < before
    except (ValueError, TypeError):
        return False  # a hand-made event with an odd time: kept rather than guessed at


class EventReaper(LeaderLoop):
    name = "event-reaper"

    def __init__(self, store: Store, clock: Callable[[], datetime], ttl_seconds: float,
                 period: float = 60.0) -> None:
        super().__init__(store, period)
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_seconds)

    def reconcile(self) -> None:
        before = self.clock() - self.ttl
        events, _ = self.store.read(lambda s: s.list("Event"))
        old = [e for e in events if expired(e, before)]  # outside the store's lock
        if not old:
            return
        commands = [Delete("Event", e["metadata"]["namespace"], e["metadata"]["name"],
                           e["metadata"]["resourceVersion"]) for e in old]
        answers = self.store.propose_all(commands)
        done = sum(1 for a in answers if not isinstance(a, ApiError))
        log.info("deleted %d event(s) older than %s", done, self.ttl)
