"""Leader-only: turns heartbeat silence into NotReady and heartbeats back into Ready."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from master.errors import ApiError
from master.liveness import HeartbeatBook, transitions, with_ready
from master.store.commands import UpdateStatus
from master.store.replicated import Store

log = logging.getLogger(__name__)


class NodeLifecycle:
    def __init__(self, store: Store, book: HeartbeatBook, grace: float, now: Callable[[], str],
                 period: float = 0.25) -> None:
        self.store = store
        self.book = book
        self.grace = grace
        self.period = period
        self.now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-lifecycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        leading = False
        while not self._stop.wait(self.period):
            is_leader = self.store.is_leader()
            if is_leader and not leading:
                names, _ = self.store.read(lambda s: [n["metadata"]["name"] for n in s.list("Node")])
                self.book.reset(names, time.monotonic())
                log.info("leading: node timers restarted with a %.1fs grace", self.grace)
            leading = is_leader
            if leading:
                try:
                    self.reconcile()
                except Exception:  # a bad round must not end the loop
                    log.exception("node lifecycle round failed")

    def reconcile(self) -> None:
        nodes, _ = self.store.read(lambda state: state.list("Node"))
        for node, ready in transitions(nodes, self.book, time.monotonic(), self.grace):
            meta = node["metadata"]
            status = with_ready(node.get("status") or {}, ready, self.now())
            try:
                self.store.propose(UpdateStatus("Node", "", meta["name"], status,
                                                meta["resourceVersion"]), timeout=2.0)
            except ApiError as err:  # a conflict or no quorum: the next round looks again
                log.debug("node %s: %s", meta["name"], err.message)
                continue
            log.info("node %s is %s", meta["name"], "Ready" if ready else "NotReady")
