"""For each node, the store revision at which a pod bound to it last changed.

An agent needs its node's pods (for their probes) only when they change. Rather than
every agent listing its pods every few seconds (at 1,000 hosts, 500 lists a second,
each a scan of every pod), each heartbeat's answer carries this revision, and the agent
lists only when it moved (agent/probes.py). Every master applies the same log, so any
master's answer will do; one that restarted counts from its start, which costs an agent
one extra list at most.
"""

from __future__ import annotations

import threading

from master.store.state import WatchEvent


class PodRevisions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_node: dict[str, int] = {}

    def observe(self, events: list[WatchEvent]) -> None:
        """The store's apply listener: cheap, as it runs inside Raft's apply."""
        changed = {}
        for event in events:
            if event.kind == "Pod" and (node := event.obj["spec"].get("nodeName")):
                changed[node] = event.revision
        if changed:
            with self._lock:
                self._by_node.update(changed)

    def of(self, node: str) -> int:
        with self._lock:
            return self._by_node.get(node, 0)
