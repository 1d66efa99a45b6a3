"""What an update may change in a stored object, beyond what its schema allows.

A pod's spec is fixed once it exists, as in Kubernetes: the runtime made its containers
from it, and a changed command or host would be stored but not true. Only the fields
Kubernetes lets change may change: a container's image (the runtime recreates that
container; an init container's new image is used from its next run, and one that completed
is not run again) and tolerations, only added. `spec.nodeName` is set by binding alone.
A Deployment's or ReplicaSet's selector is fixed too, as in apps/v1.
"""

from __future__ import annotations

import copy
from typing import Any

from berth.objects import Obj
from master.errors import ApiError

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
