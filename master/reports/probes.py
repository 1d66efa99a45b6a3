"""Probe results as the agents report them: soft state on the leader, like heartbeats.

An agent runs its pods' liveness and readiness probes on its own host and reports
each container's current verdict. The leader keeps only the latest report of each
node in memory (a new leader hears every agent again within one report period);
the runtime controller reads it to restart an unhealthy container and to set a
pod's Ready condition. Each verdict names the container start it was made for, so
a verdict about a container that has since been restarted is not acted on again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    started_at: str  # the container start (runtime's StartedAt) the probes ran against
    message: str = ""


Key = tuple[str, str, str]  # (pod uid, container, "liveness" | "readiness")


class ProbeBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_node: dict[str, dict[Key, Verdict]] = {}

    def record(self, node: str, verdicts: dict[Key, Verdict]) -> bool:
        """The node's whole current report: it replaces the previous one. True if it differs."""
        with self._lock:
            changed = self._by_node.get(node) != verdicts
            self._by_node[node] = dict(verdicts)
        return changed

    def snapshot(self) -> dict[Key, Verdict]:
        with self._lock:
            return {key: verdict for verdicts in self._by_node.values() for key, verdict in verdicts.items()}

    def reset(self) -> None:
        with self._lock:
            self._by_node.clear()
