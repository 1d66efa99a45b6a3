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
from master.objects.tolerations import NOT_READY, RETURNING, UNREACHABLE
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


def wanted_lifecycle_taints(ready: bool, current: tuple[str, ...]) -> tuple[str, ...]:
    """The lost-node taints a node should carry (master/objects/tolerations.py): NotReady, the
    NoExecute one (unreachable, or not-ready when its agent said its runtime is failing);
    back from that, `returning` (NoSchedule) until the runtime has cleaned the host, which takes
    it off; a node that was never lost, none."""
    if not ready:
        return (NOT_READY,) if NOT_READY in current else (UNREACHABLE,)
    if UNREACHABLE in current or NOT_READY in current or RETURNING in current:
        return (RETURNING,)
    return ()


def lost_pod_status(pod: dict[str, Any], timestamp: str) -> dict[str, Any] | None:
    """A pod on a lost node: phase Unknown and not Ready, at once, so nothing counts it as serving
    (None: already so, or finished, or going). Its host's next look, if it comes back, says again."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed", "Unknown"):
        return None
    lost = {**status, "phase": "Unknown", "reason": "NodeLost",
            "message": f"node {pod['spec'].get('nodeName')} which was running the pod is unresponsive",
            "containerStatuses": [{**c, "ready": False} for c in status.get("containerStatuses") or []
                                  if isinstance(c, dict)]}
    return with_condition(lost, {"type": "Ready", "status": "False", "reason": "NodeLost",
                                 "message": "the node is not ready", "lastTransitionTime": timestamp})
