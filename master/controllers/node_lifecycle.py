"""Leader-only: turns heartbeat silence into NotReady and heartbeats back into Ready."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.liveness import transitions, with_ready
from master.reports.heartbeats import HeartbeatBook
from master.store.commands import UpdateStatus
from master.store.replicated import Store

log = logging.getLogger(__name__)


class NodeLifecycle(LeaderLoop):
    name = "node-lifecycle"

    def __init__(self, store: Store, book: HeartbeatBook, grace: float, now: Callable[[], str],
                 period: float = 0.25) -> None:
        super().__init__(store, period)
        self.book = book
        self.grace = grace
        self.now = now

    def started_leading(self) -> None:
        """The book's timers were restarted when this term began (ReportBooks.new_term)."""
        log.info("leading: nodes silent for %.1fs become NotReady", self.grace)

    def reconcile(self) -> None:
        """Write this round's transitions together: after a leader change or a mass registration
        hundreds of nodes turn at once, and one write each, waited for in turn, took a minute."""
        nodes, _ = self.store.read(lambda state: state.list("Node"))
        changes = transitions(nodes, self.book, time.monotonic(), self.grace, self.quarantine)
        if not changes:
            return
        timestamp = self.now()
        commands = [UpdateStatus("Node", "", node["metadata"]["name"],
                                 with_ready(node.get("status") or {}, ready, timestamp),
                                 node["metadata"]["resourceVersion"])
                    for node, ready in changes]
        for (node, ready), answer in zip(changes, self.store.propose_all(commands, timeout=5.0), strict=True):
            name = node["metadata"]["name"]
            if isinstance(answer, ApiError):  # a conflict or no quorum: the next round looks again
                log.debug("node %s: %s", name, answer.message)
            else:
                log.info("node %s is %s", name, "Ready" if ready else "NotReady")
