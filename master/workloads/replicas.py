"""A ReplicaSet's decision: which pods it owns, how many to make or delete, and its status.

Kubernetes' ReplicaSet controller, pure: the pods its selector finds are claimed (orphans adopted,
pods that stopped matching released), and the active ones (not terminating, not finished) are
counted against `spec.replicas`. Too few: that many new pods (at most `burst` a round). Too many:
the surplus, in the order Kubernetes deletes it (`deletion_rank`): unscheduled before scheduled,
pending before running, not ready before ready, ready for less time before longer, more restarts
before fewer, newer before older.
"""

from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass, field
from datetime import datetime

from berth.objects import Obj
from master.objects.conditions import condition
from master.workloads.names import child_name
from master.workloads.owners import Claim, claim, reference_to

BURST = 500  # pods one round creates or deletes, all ReplicaSets together (Kubernetes' burstReplicas)
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def moment(stamp: object) -> float | None:
    """Seconds since the epoch of a stored timestamp (None when absent or odd)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def ready_since(pod: Obj) -> float | None:
    """When the pod last became Ready (None when it is not)."""
    ready = condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return None
    return moment(ready.get("lastTransitionTime")) or 0.0


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    since = ready_since(pod)
    return since is not None and (min_ready_seconds == 0 or since + min_ready_seconds <= now)


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict))


def deletion_rank(pod: Obj) -> tuple[int, int, int, float, int, float]:
    """Sorts the pods to delete first to the front (Kubernetes' ActivePods ordering)."""
    since = ready_since(pod)
    return (1 if pod["spec"].get("nodeName") else 0,
            _PHASE_RANK.get((pod.get("status") or {}).get("phase") or "Pending", 0),
            0 if since is None else 1,
            -(since or 0.0),  # ready more recently goes first
            -_restarts(pod),
            -(moment(pod["metadata"].get("creationTimestamp")) or 0.0))  # newer goes first


def surplus(pods: list[Obj], count: int) -> list[Obj]:
    """The `count` pods to delete first: nothing ranked when none is to go (every round of a
    ReplicaSet at its size), and only the few asked for sorted (nsmallest is sorted()[:count])."""
    return heapq.nsmallest(count, pods, key=deletion_rank) if count > 0 else []


def replica_status(rs: Obj, active: list[Obj], now: float) -> Obj:
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    labelled = [p for p in active
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())]
    status = {
        **(rs.get("status") or {}),
        "replicas": len(active),
        "fullyLabeledReplicas": len(labelled),
        "readyReplicas": sum(1 for p in active if ready_since(p) is not None),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "observedGeneration": int(rs["metadata"].get("generation") or 0),
    }
    return status


@dataclass(frozen=True)
class ReplicaSetPlan:
    claim: Claim
    create: int = 0
    delete: list[Obj] = field(default_factory=list)
    status: Obj = field(default_factory=dict)


def plan_replicaset(rs: Obj, candidates: list[Obj], now: float, burst: int = BURST) -> ReplicaSetPlan:
    """`candidates`: the pods of the ReplicaSet's namespace that its selector matches or that it
    controls. The counts assume the plan's writes succeed; the next round sees what did."""
    claimed = claim(rs, candidates, rs["spec"]["selector"])
    active = [pod for pod in claimed.owned if is_active(pod)]
    wanted = int(rs["spec"].get("replicas", 1))
    status = replica_status(rs, active, now)
    if rs["metadata"].get("deletionTimestamp"):
        return ReplicaSetPlan(claimed, status=status)
    missing = wanted - len(active)
    if missing > 0:
        return ReplicaSetPlan(claimed, create=min(missing, burst), status=status)
    return ReplicaSetPlan(claimed, delete=surplus(active, min(-missing, burst)), status=status)


def pod_from_template(rs: Obj, suffix: str) -> Obj:
    """A new pod as the ReplicaSet makes it: its template, its name and its controllerRef."""
    template = rs["spec"]["template"]
    meta = template.get("metadata") or {}
    metadata: Obj = {"name": child_name(rs["metadata"]["name"], suffix),
                     "namespace": rs["metadata"]["namespace"], "labels": dict(meta.get("labels") or {}),
                     "ownerReferences": [reference_to(rs)]}
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": metadata,
            "spec": copy.deepcopy(template["spec"])}
