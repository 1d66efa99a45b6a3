"""Node liveness: heartbeats are soft state on the leader; only transitions reach Raft.

As in Nomad, a heartbeat costs no Raft write. The leader remembers when it last
heard from each node (master/reports/heartbeats.py); a node silent for longer than
the grace is NotReady, and the Ready condition is written only when it changes. A new
leader starts every timer afresh, so a leader change never makes healthy nodes look dead.
"""

from __future__ import annotations

from typing import Any

from master.objects.conditions import ready_condition, with_condition
from master.objects.isolation import Broken, each, reraise
from master.reports.heartbeats import HeartbeatBook


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
