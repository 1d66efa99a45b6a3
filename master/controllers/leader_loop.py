"""What every leader-only controller shares: a thread that works only while this master leads.

A round runs every `period` seconds, or at once when `wake()` is called (from the
store's apply listener, for controllers that react to changes). Rounds are
level-triggered: each looks at the whole state, so a missed wake-up or a leader
change loses nothing, and a failing round is logged and retried, never fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from master.objects.isolation import describe
from master.observability import UNOBSERVED, MasterMetrics
from master.store.replicated import Store

log = logging.getLogger(__name__)


class Quarantine:
    """A controller's `broken` callback (objects/isolation.py): the object is left out of this
    round, and its error logged once, not every round (a loop runs up to four times a second)."""

    def __init__(self, controller: str, limit: int = 10_000) -> None:
        self.controller = controller
        self.limit = limit
        self._said: dict[str, str] = {}  # object -> the error last logged for it

    def __call__(self, obj: Any, err: Exception) -> bool:
        """True when this is news: the first time, or another error than last time."""
        what, why = describe(obj), f"{err.__class__.__name__}: {err}"[:300]
        if self._said.get(what) == why:
            return False
        if len(self._said) >= self.limit:
            self._said.clear()
        self._said[what] = why
        log.warning("%s: left out %s (%s)", self.controller, what, why)
        return True


class LeaderLoop:
    """A loop the Server (master/server.py) leads and stops: it runs rounds only between
    `lead()` and `follow()`, and only while the store still says this master leads."""

    name = "controller"
    # A loop that creates objects from what it reads (pods, ReplicaSets) first commits a barrier
    # in each term: a new leader may not yet have applied every entry the last one committed, and
    # would make again what is already there.
    fenced = False

    def __init__(self, store: Store, period: float) -> None:
        self.store = store
        self.period = period
        self.quarantine = Quarantine(self.name)
        self._lock = threading.Lock()
        self._leading = False
        self._term = 0  # raised by each lead(): the loop's next round begins a term
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        # the master's metrics (master/observability.py), the Server's one set on every loop; not
        # `metrics`, which is the autoscaler's usage readings
        self.observed: MasterMetrics = UNOBSERVED

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.follow()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():  # a loop driven round by round (tests) was never started
            self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    def lead(self) -> None:
        """This master leads from now on: the loop's next round begins with started_leading."""
        with self._lock:
            self._leading = True
            self._term += 1
        self.wake()

    def follow(self) -> None:
        """This master no longer leads: no round starts, and stopped_leading runs now, in the
        caller's thread, so background work stops at once rather than at the next round."""
        with self._lock:
            was, self._leading = self._leading, False
        if was:
            try:
                self.stopped_leading()
            except Exception:
                log.exception("%s: stopping its leader's work failed", self.name)

    @property
    def leading(self) -> bool:
        """Between lead() and follow(): cheap enough for a store listener to ask."""
        return self._leading

    def queue_depth(self) -> int:
        """Work waiting for this loop, for `berth_controller_queue_depth`. A level-triggered loop keeps
        no queue of keys as Kubernetes' controllers do: by default 1 while a wake-up waits for its
        round; a loop that knows how many items its last round left (pods to place, hosts to look at)
        says that instead. 0 while it does not lead."""
        return int(self._leading and self._wake.is_set())

    def started_leading(self) -> None:
        """Called once each time this master becomes the leader, before its first round."""

    def stopped_leading(self) -> None:
        """Called once when this master stops leading (or the loop stops while it leads): work
        the loop began in the background must stop or be fenced here, not carry on unled."""

    def reconcile(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        begun = 0  # the term whose started_leading ran
        while True:
            self._wake.wait(self.period)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                leading, term = self._leading, self._term
            if not leading or not self.store.is_leader():
                continue
            try:
                if term != begun:
                    if self.fenced:
                        self.store.barrier()  # raises: no round, and the next one tries again
                    begun = term
                    self.started_leading()
                started = time.monotonic()
                try:
                    self.reconcile()
                finally:
                    self.observed.controller_round(self.name, time.monotonic() - started)
            except Exception:  # a bad round must not end the loop
                log.exception("%s round failed", self.name)
