"""What every leader-only controller shares: a thread that works only while this master leads.

A round runs every `period` seconds, or at once when `wake()` is called (from the
store's apply listener, for controllers that react to changes). Rounds are
level-triggered: each looks at the whole state, so a missed wake-up or a leader
change loses nothing, and a failing round is logged and retried, never fatal.
"""

from __future__ import annotations

import logging
import threading

from master.store.replicated import Store

log = logging.getLogger(__name__)


class LeaderLoop:
    name = "controller"

    def __init__(self, store: Store, period: float) -> None:
        self.store = store
        self.period = period
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    def started_leading(self) -> None:
        """Called once each time this master becomes the leader, before its first round."""

    def reconcile(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        leading = False
        while True:
            self._wake.wait(self.period)
            self._wake.clear()
            if self._stop.is_set():
                return
            is_leader = self.store.is_leader()
            try:
                if is_leader and not leading:
                    self.started_leading()
                leading = is_leader
                if leading:
                    self.reconcile()
            except Exception:  # a bad round must not end the loop
                log.exception("%s round failed", self.name)
