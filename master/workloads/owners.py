"""Owner references: which controller an object belongs to, claiming by selector, what is orphaned.

As in Kubernetes, an object has at most one controlling owner (`controller: true`). A controller
adopts an object its selector matches that has none, and releases one it owns that its selector
no longer matches; an object owned by another controller is never touched. The garbage collector
(master/controllers/garbage_collector.py) deletes an object whose owners are all gone: that is
how deleting a Deployment takes its ReplicaSets, and theirs their pods (background cascade).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from berth.objects import Obj

API_VERSION = "berth/v1"


def owner_references(obj: Obj) -> list[Obj]:
    refs = obj["metadata"].get("ownerReferences") or []
    return [ref for ref in refs if isinstance(ref, dict)]


def controller_of(obj: Obj) -> Obj | None:
    return next((ref for ref in owner_references(obj) if ref.get("controller")), None)


def controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


def reference_to(owner: Obj) -> Obj:
    """What a dependent carries to name its controller (Kubernetes' controllerRef)."""
    meta = owner["metadata"]
    return {"apiVersion": API_VERSION, "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def matches(selector: Obj, labels: dict[str, str] | None) -> bool:
    """A LabelSelector's matchLabels (never empty: the schema refuses a selector that takes all)."""
    wanted = selector.get("matchLabels") or {}
    have = labels or {}
    return bool(wanted) and all(have.get(key) == value for key, value in wanted.items())


@dataclass(frozen=True)
class Claim:
    """What an owner's selector finds: those it controls (adopted ones included) and the changes."""

    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)  # matching orphans, as they will be stored
    release: list[Obj] = field(default_factory=list)  # owned, no longer matching, as they will be stored


def claim(owner: Obj, candidates: list[Obj], selector: Obj) -> Claim:
    """Kubernetes' ControllerRefManager: an owner being deleted adopts nothing, and an object being
    deleted is neither adopted nor released (it is going anyway)."""
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    uid = owner["metadata"]["uid"]
    for obj in candidates:
        ref = controller_of(obj)
        fits = matches(selector, obj["metadata"].get("labels"))
        gone = bool(obj["metadata"].get("deletionTimestamp"))
        if ref is not None and ref.get("uid") == uid:
            if fits or gone:
                owned.append(obj)
            else:
                release.append(without_owner(obj, uid))
        elif ref is None and fits and not gone and not deleting:
            adopted = with_owner(obj, owner)
            adopt.append(adopted)
            owned.append(adopted)
    return Claim(owned, adopt, release)


def with_owner(obj: Obj, owner: Obj) -> Obj:
    refs = [*owner_references(obj), reference_to(owner)]
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}}


def without_owner(obj: Obj, uid: str) -> Obj:
    refs = [ref for ref in owner_references(obj) if ref.get("uid") != uid]
    meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
    if refs:
        meta["ownerReferences"] = refs
    return {**obj, "metadata": meta}


@dataclass(frozen=True)
class Orphaned:
    """The garbage collector's verdict on one dependent: delete it, or drop its dangling refs."""

    obj: Obj
    delete: bool
    kept: Obj | None = None  # when some owners remain: the object without the gone ones


def orphaned(obj: Obj, exists: Callable[[Obj, Obj], bool]) -> Orphaned | None:
    """None while every owner exists (`exists(dependent, ref)`: an object of the ref's kind and
    name, with its uid, where the dependent lives). All gone: delete; some: forget those. A ref
    without a uid names no object for certain (Berth once took such refs for spreading replicas
    only), so it never counts as gone."""
    refs = owner_references(obj)
    if not refs:
        return None
    gone = [ref for ref in refs if ref.get("uid") and not exists(obj, ref)]
    if not gone:
        return None
    if len(gone) == len(refs):
        return Orphaned(obj, delete=True)
    kept = obj
    for ref in gone:
        kept = without_owner(kept, str(ref.get("uid")))
    return Orphaned(obj, delete=False, kept=kept)
