"""The leader's memory of heartbeats: when each node was last heard of, and its usage."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Heartbeat:
    at: float  # monotonic seconds
    usage: dict[str, Any]


class HeartbeatBook:
    """The leader's memory of heartbeats; empty (and unused) on followers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, Heartbeat] = {}
        self._started: dict[str, float] = {}

    def record(self, node: str, usage: dict[str, Any], at: float | None = None) -> None:
        """A heartbeat heard at monotonic time `at` (default now); an older one than held is ignored.

        Relayed batches and direct heartbeats of one node can arrive out of order when its
        agent moves from one master to another.
        """
        at = time.monotonic() if at is None else at
        with self._lock:
            last = self._last.get(node)
            if last is None or at >= last.at:
                self._last[node] = Heartbeat(at, usage)

    def reset(self, nodes: list[str], now: float) -> None:
        """A new term of leadership: every node gets a full grace from now."""
        with self._lock:
            self._last.clear()
            self._started = dict.fromkeys(nodes, now)

    def last_heard(self, node: str, now: float) -> float:
        """When the node was last heard of; a node first seen now starts its timer now."""
        with self._lock:
            if node in self._last:
                return self._last[node].at
            return self._started.setdefault(node, now)

    def has_heard(self, node: str) -> bool:
        with self._lock:
            return node in self._last

    def seconds_since(self, node: str) -> float | None:
        with self._lock:
            heartbeat = self._last.get(node)
            return None if heartbeat is None else time.monotonic() - heartbeat.at

    def runtime_problem(self, node: str) -> str | None:
        """What the node's agent last said is wrong with its container engine (None: nothing)."""
        with self._lock:
            heartbeat = self._last.get(node)
        if heartbeat is None or heartbeat.usage.get("runtimeReady", True):
            return None
        return str(heartbeat.usage.get("runtimeMessage") or "the container runtime is not ready")

    def usage(self, node: str) -> dict[str, Any] | None:
        with self._lock:
            heartbeat = self._last.get(node)
            return None if heartbeat is None else heartbeat.usage
