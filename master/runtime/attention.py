"""Which hosts the runtime lists this round: the leader's soft state, as Nomad keeps its timers.

Listing a host costs it a `podman ps` (about 70 ms of CPU, measured on a lab host), so
listing every Ready host every second, as a naive level-triggered loop would, costs
each host 7 % of a core and the leader one SSH command per host per second. A host is
listed only when it may have changed:
- a pod bound to it, or its Node, changed in the store;
- its agent reported runtime events (a container died, was removed by hand ...) or a
  new probe verdict;
- the last look found it unsettled (something started, restarting, terminating, or
  waiting for an address or a back-off): it is looked at again next round;
- `resync_seconds` passed since its last listing: the level-triggered safety net that
  catches whatever no signal told (a dead agent, a lost report).
A new leader starts with every host due.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from berth.objects import Obj


def pod_settled(pod: Obj) -> bool:
    """Nothing about this pod will change by itself: finished, or all running with an address."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    entries = status.get("containerStatuses") or []
    return (status.get("phase") == "Running" and bool(status.get("podIP"))
            and len(entries) == len(pod["spec"]["containers"])
            and all("running" in (e.get("state") or {}) for e in entries))


class Attention:
    def __init__(self, resync_seconds: float = 10.0) -> None:
        self.resync_seconds = resync_seconds
        self._lock = threading.Lock()
        self._marked: set[str] = set()
        self._all = True
        self._listed_at: dict[str, float] = {}
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Called after each mark (the runtime controller's wake)."""
        self._subscribers.append(callback)

    def mark(self, nodes: Iterable[str]) -> None:
        with self._lock:
            self._marked.update(nodes)
        for callback in self._subscribers:
            callback()

    def mark_all(self) -> None:
        with self._lock:
            self._all = True
        for callback in self._subscribers:
            callback()

    def marked(self) -> int:
        """How many hosts a change marked for the next round (the runtime's queue depth)."""
        with self._lock:
            return len(self._marked)

    def take_due(self, nodes: Iterable[str], now: float) -> set[str]:
        """The nodes to list this round; their marks are consumed (a look may mark them again)."""
        names = set(nodes)
        with self._lock:
            if self._all:
                due = names
            else:
                due = (self._marked & names) | {n for n in names
                                                if now - self._listed_at.get(n, -1e18) >= self.resync_seconds}
            self._marked -= due
            self._all = False
            for gone in set(self._listed_at) - names:
                del self._listed_at[gone]
        return due

    def listed(self, node: str, now: float, settled: bool) -> None:
        """A look happened; an unsettled node (or a failed look: settled=False) is due again next round."""
        with self._lock:
            self._listed_at[node] = now
            if not settled:
                self._marked.add(node)
