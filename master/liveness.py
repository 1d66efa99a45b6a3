"""Node liveness: heartbeats are soft state on the leader; only transitions reach Raft.

As in Nomad, a heartbeat costs no Raft write. The leader remembers when it last
heard from each node (master/reports/heartbeats.py); a node silent for longer than
the grace is NotReady (Ready Unknown), so is one whose agent says its container engine
fails (Ready False), and the Ready condition is written only when it changes. A new
leader starts every timer afresh, so a leader change never makes healthy nodes look dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from master.objects.conditions import ready_status, with_condition
from master.objects.isolation import Broken, each, reraise
from master.objects.tolerations import NOT_READY, RETURNING, UNREACHABLE
from master.reports.heartbeats import HeartbeatBook


@dataclass(frozen=True)
class Readiness:
    """What a node's Ready condition should say. As in Kubernetes, `Unknown` is silence (nothing is
    known of the host: tainted unreachable) and `False` is the agent itself saying its host cannot
    run pods (tainted not-ready)."""

    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str


READY = Readiness("True", "AgentHeartbeat", "the agent is heartbeating")
SILENT = Readiness("Unknown", "NodeStatusUnknown", "the agent stopped heartbeating")


def runtime_not_ready(problem: str) -> Readiness:
    return Readiness("False", "RuntimeNotReady", f"container runtime is not ready: {problem}")


def wanted_readiness(name: str, book: HeartbeatBook, now: float, grace: float) -> Readiness | None:
    """None: no opinion yet (not heard this term, and the grace not over): the stored one stands."""
    if now - book.last_heard(name, now) > grace:
        return SILENT  # a full grace of silence
    if not book.has_heard(name):
        return None  # Ready (or not) needs a heartbeat this term
    problem = book.runtime_problem(name)
    return READY if problem is None else runtime_not_ready(problem)


def transitions(nodes: list[dict[str, Any]], book: HeartbeatBook, now: float,
                grace: float, broken: Broken = reraise) -> list[tuple[dict[str, Any], Readiness]]:
    """(node, readiness) for each node whose stored Ready condition's status is no longer the wanted
    one; a node that cannot be read goes to `broken` (objects/isolation.py)."""
    def change(node: dict[str, Any]) -> tuple[dict[str, Any], Readiness] | None:
        wanted = wanted_readiness(node["metadata"]["name"], book, now, grace)
        if wanted is not None and ready_status(node) != wanted.status:
            return node, wanted
        return None

    return [c for c in each(nodes, change, broken) if c is not None]


def with_ready(status: dict[str, Any], readiness: Readiness, timestamp: str) -> dict[str, Any]:
    """`status` with its Ready condition set (the other conditions kept)."""
    return with_condition(status, {"type": "Ready", "status": readiness.status, "reason": readiness.reason,
                                   "message": readiness.message, "lastTransitionTime": timestamp})


def wanted_lifecycle_taints(ready_status: str, current: tuple[str, ...]) -> tuple[str, ...]:
    """The lost-node taints a node should carry (master/objects/tolerations.py), from its Ready
    condition's status: silent (Unknown), unreachable; NotReady by its agent's word (False),
    not-ready; both NoExecute. Back from either, `returning` (NoSchedule) until the runtime has
    cleaned the host, which takes it off; a node that was never lost, none."""
    if ready_status == "Unknown":
        return (UNREACHABLE,)
    if ready_status == "False":
        return (NOT_READY,)
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
