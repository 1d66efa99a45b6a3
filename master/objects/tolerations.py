"""The taints a lost node gets, and the tolerations every pod gets for them unless it has its own.

As Kubernetes' node lifecycle controller and its DefaultTolerationSeconds admission: a node
whose heartbeats stopped is tainted `node.berth.io/unreachable:NoExecute` (`not-ready` when its
agent says its runtime is not working), and a pod that does not tolerate those taints itself is
given, when it is made, tolerations for them for `default_eviction_seconds`. The taint evictor
(master/controllers/taint_eviction.py) then moves such pods off a lost node after that long;
Berth's default is seconds where Kubernetes' is five minutes, because a master here can confirm
over SSH whether the host is really gone (master/controllers/node_check.py).
"""

from __future__ import annotations

import copy

from berth.objects import Obj
from master.errors import ApiError

UNREACHABLE = "node.berth.io/unreachable"
NOT_READY = "node.berth.io/not-ready"
MAX_TOLERATIONS = 64  # a pod spec's, the two added here included (kinds.PodSpec)
RETURNING = "node.berth.io/returning"  # NoSchedule until the runtime has cleaned a host that came back
LIFECYCLE_TAINTS = (UNREACHABLE, NOT_READY, RETURNING)


def lifecycle_taint(key: str) -> Obj:
    return {"key": key, "effect": "NoSchedule" if key == RETURNING else "NoExecute"}


def with_lifecycle_taints(spec: Obj, keys: tuple[str, ...]) -> Obj:
    """The node's spec with exactly these of the lifecycle taints (the others it carries kept)."""
    kept = [t for t in spec.get("taints") or [] if t.get("key") not in LIFECYCLE_TAINTS]
    return {**spec, "taints": kept + [lifecycle_taint(key) for key in keys]}


def lifecycle_keys(node: Obj) -> tuple[str, ...]:
    taints = (node.get("spec") or {}).get("taints") or []
    return tuple(sorted(t["key"] for t in taints if isinstance(t, dict) and t.get("key") in LIFECYCLE_TAINTS))


def with_default_tolerations(pod_spec: Obj, seconds: int) -> Obj:
    """The pod's spec with a NoExecute toleration of `seconds` for each lost-node taint it does not
    already tolerate (one of its own, an `Exists` without key included, wins)."""
    tolerations = list(pod_spec.get("tolerations") or [])

    def tolerated(key: str) -> bool:
        return any((t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                   and t.get("effect") in (None, "NoExecute") for t in tolerations)

    added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
             for key in (NOT_READY, UNREACHABLE) if not tolerated(key)]
    if not added:
        return pod_spec
    return {**copy.copy(pod_spec), "tolerations": tolerations + added}


def check_room_for_defaults(pod_spec: Obj, field: str) -> None:
    """A pod spec (a pod's or a template's) whose tolerations, with those the master adds, pass the
    limit every stored pod keeps to: a 422, since only the master's additions break it (a pod
    with 63 of its own was stored with 65, more than its own schema allows when read)."""
    count = len(with_default_tolerations(pod_spec, 0).get("tolerations") or [])
    if count > MAX_TOLERATIONS:
        raise ApiError(422, "Invalid", f"{field}: at most {MAX_TOLERATIONS} tolerations, the lost-node "
                       f"tolerations the master adds included: this spec would hold {count}", field)
