"""Node liveness: heartbeats are soft state on the leader; only transitions reach Raft.

As in Nomad, a heartbeat costs no Raft write. The leader remembers when it last
heard from each node; a node silent for longer than the grace is NotReady, and
the Ready condition is written only when it changes. A new leader starts every
timer afresh, so a leader change never makes healthy nodes look dead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from master.objects.conditions import condition, with_condition
from master.objects.isolation import Broken, each, reraise


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

    def usage(self, node: str) -> dict[str, Any] | None:
        with self._lock:
            heartbeat = self._last.get(node)
            return None if heartbeat is None else heartbeat.usage


def ready_condition(node: dict[str, Any]) -> bool | None:
    """The node's stored Ready condition: True, False, or None if never set."""
    ready = condition(node, "Ready")
    return None if ready is None else ready.get("status") == "True"


def transitions(nodes: list[dict[str, Any]], book: HeartbeatBook, now: float,
                grace: float, broken: Broken = reraise) -> list[tuple[dict[str, Any], bool]]:
    """(node, ready) for each node whose stored Ready condition is no longer true; a node that
    cannot be read goes to `broken` (objects/isolation.py)."""
    def change(node: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        alive = now - book.last_heard(node["metadata"]["name"], now) <= grace
        # Ready needs a heartbeat this term; NotReady needs a full grace of silence
        if ready_condition(node) != alive and (not alive or book.has_heard(node["metadata"]["name"])):
            return node, alive
        return None

    return [c for c in each(nodes, change, broken) if c is not None]


def with_ready(status: dict[str, Any], ready: bool, timestamp: str) -> dict[str, Any]:
    """`status` with its Ready condition set (the other conditions kept)."""
    return with_condition(status, {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "AgentHeartbeat" if ready else "NodeStatusUnknown",
        "message": "the agent is heartbeating" if ready else "the agent stopped heartbeating",
        "lastTransitionTime": timestamp,
    })
