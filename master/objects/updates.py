"""What an update may change in a stored object, beyond what its schema allows.

A pod's spec is fixed once it exists, as in Kubernetes: the runtime made its containers
from it, and a changed command or host would be stored but not true. Only the fields
Kubernetes lets change may change: a container's image (the runtime recreates that
container; an init container's new image is used from its next run, and one that completed
is not run again) and tolerations, only added. `spec.nodeName` is set by binding alone.
A Deployment's or ReplicaSet's selector is fixed too, as in apps/v1. What the cluster assigned
stays assigned (`kept_assigned`): a Node's `spec.podCIDR`, set once by node-ipam, and a Service's
`spec.clusterIP` and node ports (master/objects/services.py); no write drops them by leaving them out.
Storage follows Kubernetes' rules: a PersistentVolumeClaim's spec is fixed once made, except that
`volumeName` (the binder's, or the volume asked for) and `storageClassName` (the default class, written
in) may each be set once, and a write that leaves them out keeps them; a PersistentVolume's source,
volumeMode and nodeAffinity are fixed (its claimRef, capacity, reclaim policy may change); a
StorageClass's provisioner, parameters, reclaimPolicy and volumeBindingMode are fixed.
"""

from __future__ import annotations

import copy
from typing import Any

from berth.objects import Obj
from master.errors import ApiError
from master.objects.services import kept_allocations

SELECTOR_FIXED = ("Deployment", "ReplicaSet")
# what may not change, by kind: the fields (under spec, or at the top for a class), and why
STORAGE_FIXED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "PersistentVolume": ("spec", ("local", "hostPath", "nfs", "sshfs", "volumeMode", "nodeAffinity"),
                         "a volume's source, volumeMode and nodeAffinity are fixed once it exists"),
    "StorageClass": ("", ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"),
                     "a class's provisioner, parameters, reclaimPolicy and volumeBindingMode are fixed"),
}
CLAIM_SET_ONCE = ("volumeName", "storageClassName")  # the binder's writes: unset to set, once
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
    if old.get("kind") in STORAGE_FIXED:
        _storage_fixed(old, new)
    if old.get("kind") == "PersistentVolumeClaim":
        _claim_fixed(old, new)
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


def _storage_fixed(old: Obj, new: Obj) -> None:
    where, fields, why = STORAGE_FIXED[old["kind"]]
    before = (old.get(where) or {}) if where else old
    after = (new.get(where) or {}) if where else new
    for name in fields:
        if before.get(name) != after.get(name):
            path = f"{where}.{name}" if where else name
            changed = first_difference(before.get(name), after.get(name), path) or path
            raise ApiError(422, "Invalid", f"{old['kind']} {old['metadata']['name']}: {changed} cannot "
                           f"change ({why}); delete and create it again", changed)


def _claim_fixed(old: Obj, new: Obj) -> None:
    """A claim's spec is fixed once made (Kubernetes': "spec is immutable after creation"), but for
    the fields the binder writes once: its volume, and the default class."""
    before, after = dict(old.get("spec") or {}), new.get("spec") or {}
    for name in CLAIM_SET_ONCE:
        if before.get(name) is None and after.get(name) is not None:
            before[name] = after[name]
    changed = first_difference(before, after, "spec")
    if changed:
        raise ApiError(422, "Invalid", f"PersistentVolumeClaim {old['metadata']['name']}: {changed} cannot "
                       "change once the claim exists (only spec.volumeName and spec.storageClassName may be "
                       "set, once, where unset); delete and create it again", changed)


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
    if old.get("kind") == "PersistentVolumeClaim":
        return kept_claim_binding(old, new)
    return kept_pod_cidr(old, new)


def kept_claim_binding(old: Obj, new: Obj) -> Obj:
    """`new` as stored over `old`: a claim keeps the volume it is bound to and the class written in,
    when a replace or apply of its manifest leaves them out (naming others is refused by check_update)."""
    before, spec = old.get("spec") or {}, new.get("spec") or {}
    kept = {name: before[name] for name in CLAIM_SET_ONCE
            if before.get(name) is not None and name not in spec}
    return {**new, "spec": {**spec, **kept}} if kept else new


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
