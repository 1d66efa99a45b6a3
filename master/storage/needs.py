"""What a pod's claims ask of the node it goes to: the scheduler's VolumeBinding filter, pure.

Resolved once per pod and round from the round's StorageState (`volume_needs`), then asked per node
(`node_problem`), as Kubernetes' VolumeBinding plugin does in PreFilter and Filter:

- a claim missing, being deleted, or unbound under an Immediate class (the binder binds it; the pod
  waits for that) keeps the pod off every node, with Kubernetes' words;
- a bound claim's volume must admit the node (its node affinity): "node(s) had volume node affinity
  conflict";
- an unbound claim that waits for its first consumer needs, on the node, an Available volume that
  could be bound to it and admits the node, or a provisioner that can make one there (Berth's two can
  on any node): "node(s) didn't find available persistent volumes to bind".

`static_volumes` counts the claims a volume made beforehand would serve on a node: the scheduler
prefers such nodes (Kubernetes' volume binding score), so an admin's local volume is used rather than
a new one made elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.objects import Obj
from master.objects.storage_kinds import PROVISIONERS
from master.storage.volumes import (
    NodeLike,
    StorageState,
    claim_bound,
    could_bind,
    deleting,
    node_affinity_admits,
)

AFFINITY_CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUME_TO_BIND = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


@dataclass(frozen=True)
class ClaimNeed:
    claim: Obj
    volume: Obj | None = None  # bound: its volume, which the node must be admitted by
    waiting: bool = False  # unbound, waiting for its first consumer: the scheduler picks its node
    candidates: tuple[Obj, ...] = ()  # waiting: volumes it could be bound to, on the nodes they admit
    provisionable: bool = False  # waiting: its class's provisioner can make a volume on any node


@dataclass(frozen=True)
class VolumeNeeds:
    problem: str | None  # the pod can go nowhere now (the first claim's reason)
    claims: tuple[ClaimNeed, ...] = ()

    @property
    def waiting(self) -> tuple[ClaimNeed, ...]:
        return tuple(c for c in self.claims if c.waiting)


def _need(namespace: str, name: str, storage: StorageState) -> ClaimNeed | str:
    claim = storage.claims.get((namespace, name))
    if claim is None:
        return f'persistentvolumeclaim "{name}" not found'
    if deleting(claim):
        return f'persistentvolumeclaim "{name}" is being deleted'
    if claim_bound(claim):
        volume_name = str((claim.get("spec") or {}).get("volumeName"))
        volume = storage.volumes.get(volume_name)
        if volume is None:
            return (f'persistentvolumeclaim "{name}" is bound to persistentvolume "{volume_name}", '
                    "which is gone")
        return ClaimNeed(claim, volume=volume)
    class_name = storage.class_of(claim)
    if not storage.waits_for_consumer(class_name):
        return UNBOUND_IMMEDIATE
    candidates = tuple(v for v in storage.volumes.values() if could_bind(v, claim, class_name))
    provisioner = storage.classes[class_name].get("provisioner")
    return ClaimNeed(claim, waiting=True, candidates=candidates, provisionable=provisioner in PROVISIONERS)


def volume_needs(namespace: str, claims: list[str], storage: StorageState) -> VolumeNeeds:
    """The needs of a pod in `namespace` whose volumes name `claims`."""
    needs: list[ClaimNeed] = []
    for name in claims:
        found = _need(namespace, name, storage)
        if isinstance(found, str):
            return VolumeNeeds(found)
        needs.append(found)
    return VolumeNeeds(None, tuple(needs))


def node_problem(needs: VolumeNeeds, node: NodeLike) -> str | None:
    """Why the pod's claims keep it off `node` (None: they do not)."""
    if needs.problem is not None:
        return needs.problem
    for need in needs.claims:
        if need.volume is not None and not node_affinity_admits(need.volume, node):
            return AFFINITY_CONFLICT
        if need.waiting and not need.provisionable and not any(node_affinity_admits(v, node)
                                                               for v in need.candidates):
            return NO_VOLUME_TO_BIND
    return None


def static_volumes(needs: VolumeNeeds, node: NodeLike) -> int:
    """How many of the pod's waiting claims a volume made beforehand would serve on `node`."""
    return sum(1 for need in needs.waiting if any(node_affinity_admits(v, node) for v in need.candidates))
