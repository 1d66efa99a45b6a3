"""What an update may change in a stored object, beyond what its schema allows.

A pod's spec is fixed once it exists, as in Kubernetes: the runtime made its containers
from it, and a changed command or host would be stored but not true. Only the fields
Kubernetes lets change may change: a container's image (the runtime recreates that
container; an init container's new image is used from its next run, and one that completed
is not run again) and tolerations, only added. `spec.nodeName` is set by binding alone.
A Deployment's or ReplicaSet's selector is fixed too, as in apps/v1. What the cluster assigned
stays assigned (`kept_assigned`): a Node's `spec.podCIDR`, set once by node-ipam, and a Service's
`spec.clusterIP` and node ports (master/objects/services.py); no write drops them by leaving them out.
"""

from __future__ import annotations

import copy
from typing import Any

from berth.objects import Obj
from master.errors import ApiError
from master.objects.services import kept_allocations

SELECTOR_FIXED = ("Deployment", "ReplicaSet")
POD_MUTABLE = "spec.containers[*].image, spec.initContainers[*].image, spec.tolerations (additions only)"


def first_difference(old: Any, new: Any, path: str) -> str | None:
    """The path of the first place two JSON values differ (None when equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if old == new else path


def check_update(old: Obj, new: Obj) -> None:
    """Raise the 422 Kubernetes gives when `new` changes what may not change in `old`."""
    if old.get("kind") in SELECTOR_FIXED:
        _selector_fixed(old, new)
    if old.get("kind") != "Pod":
        return
    before, after = copy.deepcopy(old.get("spec") or {}), new.get("spec") or {}
    for key in ("initContainers", "containers"):
        containers, wanted = before.get(key) or [], after.get(key) or []
        if isinstance(containers, list) and isinstance(wanted, list) and len(containers) == len(wanted):
            for was, now in zip(containers, wanted, strict=True):
                if isinstance(was, dict) and isinstance(now, dict) and "image" in now:
                    was["image"] = now["image"]
    tolerations = before.get("tolerations") or []
    if all(t in (after.get("tolerations") or []) for t in tolerations):
        before["tolerations"] = after.get("tolerations") or []
        if not after.get("tolerations") and "tolerations" not in after:
            before.pop("tolerations", None)
    changed = first_difference(before, after, "spec")
    if changed:
        raise ApiError(422, "Invalid", f"Pod {old['metadata']['name']}: {changed} cannot change once the pod "
                       f"exists (pod updates may change only {POD_MUTABLE}); delete and create it again",
                       changed)


def _selector_fixed(old: Obj, new: Obj) -> None:
    """A changed selector would orphan the pods made under the old one and adopt strangers: fixed
    once made, as in Kubernetes' apps/v1."""
    before = (old.get("spec") or {}).get("selector")
    after = (new.get("spec") or {}).get("selector")
    if before != after:
        raise ApiError(422, "Invalid", f"{old['kind']} {old['metadata']['name']}: spec.selector cannot "
                       "change once it exists; delete and create it again", "spec.selector")


def kept_assigned(old: Obj, new: Obj) -> Obj:
    """`new` as stored over `old`, with what the cluster assigned to `old` that `new` leaves out:
    a replace or apply of a manifest written before it was assigned must not free it."""
    if old.get("kind") == "Service":
        return kept_allocations(old, new)
    return kept_pod_cidr(old, new)


def kept_pod_cidr(old: Obj, new: Obj) -> Obj:
    """`new` as stored over `old`: a Node keeps the subnet node-ipam gave it. Its pods' addresses
    come from it, so a replace or apply of a manifest that never named it (the admin's own, an
    agent's registration) must not free it for another node; naming another is refused."""
    before = (old.get("spec") or {}).get("podCIDR") if old.get("kind") == "Node" else None
    if not before:
        return new
    spec = new.get("spec") or {}
    after = spec.get("podCIDR")
    if after is None:
        return {**new, "spec": {**spec, "podCIDR": before}}
    if after != before:
        raise ApiError(422, "Invalid", f"Node {old['metadata']['name']}: spec.podCIDR cannot change once "
                       f"assigned (it is {before}); delete the Node to free it", "spec.podCIDR")
    return new


def check_pod_cidr_sent(new: Obj, stored: Obj | None) -> None:
    """At the API, before the store: only node-ipam gives a Node its podCIDR (Kubernetes lets a
    client set it once; Berth never does, so two nodes cannot be given one subnet by hand). A
    client may send back the value stored (a GET, then a PUT), nothing else."""
    sent = (new.get("spec") or {}).get("podCIDR")
    held = ((stored or {}).get("spec") or {}).get("podCIDR")
    if sent is not None and sent != held:
        raise ApiError(422, "Invalid", f"Node {new['metadata']['name']}: spec.podCIDR is assigned by the "
                       "cluster from cluster_cidr (the node-ipam controller); leave it out", "spec.podCIDR")
