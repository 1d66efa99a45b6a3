"""What every leader-only controller shares: a thread that works only while this master leads.

A round runs every `period` seconds, or at once when `wake()` is called (from the
store's apply listener, for controllers that react to changes). Rounds are
level-triggered: each looks at the whole state, so a missed wake-up or a leader
change loses nothing, and a failing round is logged and retried, never fatal.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from master.objects.isolation import describe
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
    name = "controller"

    def __init__(self, store: Store, period: float) -> None:
        self.store = store
        self.period = period
        self.quarantine = Quarantine(self.name)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():  # a loop driven round by round (tests) was never started
            self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    def started_leading(self) -> None:
        """Called once each time this master becomes the leader, before its first round."""

    def stopped_leading(self) -> None:
        """Called once when this master stops leading (or the loop stops while it leads): work
        the loop began in the background must stop or be fenced here, not carry on unled."""

    def reconcile(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        leading = False
        while True:
            self._wake.wait(self.period)
            self._wake.clear()
            is_leader = self.store.is_leader() and not self._stop.is_set()
            try:
                if is_leader != leading:
                    leading = is_leader
                    if leading:
                        self.started_leading()
                    else:
                        self.stopped_leading()
                if self._stop.is_set():
                    return
                if leading:
                    self.reconcile()
            except Exception:  # a bad round must not end the loop
                log.exception("%s round failed", self.name)
