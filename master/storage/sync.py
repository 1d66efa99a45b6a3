"""The volumes controller's round, pure: what each claim and each volume needs done next.

As Kubernetes' PersistentVolume controller (syncClaim, syncVolume) and its pvc- and pv-protection
controllers, level-triggered: every round looks at every claim and volume and says the next step.
The controller (master/controllers/volumes.py) carries the steps out: bindings as one Batch of both
objects, provisioning over SSH first and then the volume's creation and the claim's binding in one
Batch, events, phases.

Claims, oldest first:
- being deleted: removed once no pod scheduled to a node and not finished uses it (Kubernetes counts
  only scheduled pods: one waiting to be scheduled can never be, its claim being deleted);
- bound: its volume must still be there and bound to it (else Lost, ClaimLost or ClaimMisbound);
- asking for a volume by name (spec.volumeName): bound to it if it can serve it, else FailedBinding;
- otherwise, under its class after defaulting (the default class is written into its spec): an
  Immediate claim is bound to the matching volume, or provisioned by its class, or (no class) waits
  with FailedBinding; a WaitForFirstConsumer claim waits (WaitForFirstConsumer) until the scheduler
  chose a node for a pod using it (annotation volume.kubernetes.io/selected-node) or such a pod is
  bound to a node, then is bound to a matching volume that node may reach, or provisioned there.
Volumes: Available with no claim, Bound while their claim is, Released once it is gone; a Released
volume is kept (Retain), or its data deleted and the volume removed (Delete, if Berth made it, tried
again while it fails, the volume Failed meanwhile; Failed at once otherwise); a volume being deleted
is removed once it is not Bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

from berth.objects import Obj
from master.objects.storage_kinds import PROVISIONERS
from master.storage.volumes import (
    BOUND_BY_CONTROLLER,
    PROVISIONED_BY,
    SELECTED_NODE,
    YES,
    NodeRef,
    StorageState,
    annotation,
    bound_to,
    claim_bound,
    claim_phase,
    claim_ref,
    deleting,
    key_of,
    matching_volume,
    name_of,
    pod_claims,
    reserved_for,
    uid_of,
    unsatisfied,
    volume_phase,
)

NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
WAITING = "waiting for first consumer to be created before binding"
LOST = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
LOST_REFERENCE = "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
MISBOUND = "Two claims are bound to the same volume, this one is bound incorrectly"


@dataclass(frozen=True)
class Bind:
    claim: Obj
    volume: Obj
    class_name: str | None  # written into the claim's spec with the binding (None: it has its own)


@dataclass(frozen=True)
class Provision:
    claim: Obj
    klass: Obj
    node: str | None  # the node the claim's consumer was scheduled to (None: Immediate)
    class_name: str | None


@dataclass(frozen=True)
class Pending:
    """The claim waits: its phase Pending written if it has none, the default class if it names none."""

    claim: Obj
    class_name: str | None
    set_phase: bool


@dataclass(frozen=True)
class SetPhase:
    obj: Obj
    phase: str
    message: str = ""


@dataclass(frozen=True)
class Tell:
    obj: Obj
    reason: str
    message: str
    warning: bool = True


@dataclass(frozen=True)
class Unbind:
    """A volume the binder bound to a claim that is now bound to another: Available again."""

    volume: Obj


@dataclass(frozen=True)
class Reclaim:
    """A Released volume under reclaim policy Delete: its data deleted, then the object."""

    volume: Obj


@dataclass(frozen=True)
class Remove:
    """A claim or volume being deleted that nothing holds any more."""

    obj: Obj


Action = Union[Bind, Provision, Pending, SetPhase, Tell, Unbind, Reclaim, Remove]  # noqa: UP007


def _active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def consumers(pods: Iterable[Obj]) -> dict[tuple[str, str], list[str]]:
    """Each claim's users: the nodes of the pods using it that are scheduled and not finished (a pod
    being deleted still counts until it is gone), oldest pod first."""
    found: dict[tuple[str, str], list[str]] = {}
    for pod in sorted(pods, key=lambda p: (str(p["metadata"].get("creationTimestamp") or ""), name_of(p))):
        if _active(pod):
            for claim in pod_claims(pod):
                found.setdefault((str(pod["metadata"].get("namespace") or ""), claim), []).append(
                    str(pod["spec"]["nodeName"]))
    return found


def wants_pods(claims: Iterable[Obj], storage: StorageState) -> bool:
    """Whether a round must read the pods: a claim is being deleted, or waits for its consumer's node."""
    for claim in claims:
        if deleting(claim):
            return True
        if (not claim_bound(claim) and not annotation(claim, SELECTED_NODE)
                and storage.waits_for_consumer(storage.class_of(claim))):
            return True
    return False


class _Round:
    def __init__(self, storage: StorageState, nodes: dict[str, Obj], users: dict[tuple[str, str], list[str]]):
        self.storage = storage
        self.nodes = nodes
        self.users = users
        self.taken: set[str] = set()  # volumes bound, before or this round: not given to another claim
        self.binding: set[str] = set()  # volumes this round binds: their own step waits for the next round
        self.actions: list[Action] = []

    # --- claims ------------------------------------------------------------------------------
    def claim(self, claim: Obj) -> None:
        if deleting(claim):
            if not self.users.get(key_of(claim)):
                self.actions.append(Remove(claim))
            return
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if claim_bound(claim):
            self._bound(claim, str(volume_name))
        elif claim_phase(claim) == "Bound":
            self._lost(claim, LOST_REFERENCE)
        elif volume_name:
            self._asked_for(claim, str(volume_name))
        else:
            self._unbound(claim)

    def _bound(self, claim: Obj, volume_name: str) -> None:
        volume = self.storage.volumes.get(volume_name)
        if volume is None:
            self._lost(claim, LOST)
        elif not bound_to(volume, claim):
            self._lost(claim, MISBOUND, "ClaimMisbound")
        elif claim_phase(claim) != "Bound":
            self.actions.append(SetPhase(claim, "Bound"))
        self.taken.add(volume_name)

    def _lost(self, claim: Obj, message: str, reason: str = "ClaimLost") -> None:
        if claim_phase(claim) != "Lost":
            self.actions += [SetPhase(claim, "Lost"), Tell(claim, reason, message)]

    def _class_to_write(self, claim: Obj) -> tuple[str, str | None]:
        """The claim's class after defaulting, and the name to write in its spec (None: nothing)."""
        name = self.storage.class_of(claim)
        named = (claim.get("spec") or {}).get("storageClassName")
        return name, (name if named is None and name else None)

    def _wait(self, claim: Obj, class_name: str | None, *tell: Tell) -> None:
        has_phase = bool((claim.get("status") or {}).get("phase"))
        if class_name is not None or not has_phase:
            self.actions.append(Pending(claim, class_name, not has_phase))
        self.actions.extend(tell)

    def _asked_for(self, claim: Obj, volume_name: str) -> None:
        class_name, to_write = self._class_to_write(claim)
        volume = self.storage.volumes.get(volume_name)
        if volume is None or deleting(volume):
            message = f'volume "{volume_name}" requested by this claim was not found'
        elif claim_ref(volume) is not None and not reserved_for(volume, claim):
            message = f'volume "{volume_name}" already bound to a different claim.'
        elif volume_name in self.taken:
            message = f'volume "{volume_name}" was bound to another claim this round'
        else:
            why = unsatisfied(volume, claim, class_name) if not reserved_for(volume, claim) else None
            if why is None:
                self._bind(claim, volume, to_write)
                return
            message = f'Cannot bind to requested volume "{volume_name}": {why}'
        self._wait(claim, to_write, Tell(claim, "FailedBinding", message))

    def _unbound(self, claim: Obj) -> None:
        class_name, to_write = self._class_to_write(claim)
        klass = self.storage.classes.get(class_name) if class_name else None
        delayed = self.storage.waits_for_consumer(class_name)
        node_name: str | None = None
        if delayed:
            users = self.users.get(key_of(claim)) or []
            node_name = annotation(claim, SELECTED_NODE) or (users[0] if users else None)
        node = self.nodes.get(node_name) if node_name else None
        if delayed and node_name and node is None:
            gone = f'node "{node_name}" chosen for this claim\'s first pod is gone'
            self._wait(claim, to_write, Tell(claim, "ProvisioningFailed", gone))
            return
        volumes = self.storage.volumes.values()
        found = matching_volume(claim, volumes, NodeRef.of(node) if node is not None else None,
                                class_name=class_name, delayed=delayed, taken=self.taken)
        if found is not None:
            self._bind(claim, found, to_write)
        elif delayed and node_name is None:
            self._wait(claim, to_write, Tell(claim, "WaitForFirstConsumer", WAITING, warning=False))
        elif not class_name:
            self._wait(claim, to_write, Tell(claim, "FailedBinding", NO_CLASS))
        elif klass is None:
            self._wait(claim, to_write, Tell(claim, "ProvisioningFailed",
                                             f'storageclass.storage.k8s.io "{class_name}" not found'))
        else:
            self.actions.append(Provision(claim, klass, node_name, to_write))

    def _bind(self, claim: Obj, volume: Obj, class_name: str | None) -> None:
        self.taken.add(name_of(volume))
        self.binding.add(name_of(volume))
        self.actions.append(Bind(claim, volume, class_name))

    # --- volumes -----------------------------------------------------------------------------
    def volume(self, volume: Obj) -> None:
        if name_of(volume) in self.binding:
            return
        phase, ref = volume_phase(volume), claim_ref(volume)
        if ref is None or not ref.get("uid"):
            self._settle(volume, "Available")
            return
        claim = self.storage.claims.get((str(ref.get("namespace") or ""), str(ref.get("name"))))
        if claim is None or uid_of(claim) != ref.get("uid"):
            self._released(volume, phase)
            return
        if (claim.get("spec") or {}).get("volumeName") == name_of(volume):
            self._settle(volume, "Bound")
        elif (claim.get("spec") or {}).get("volumeName") and annotation(volume, BOUND_BY_CONTROLLER) == YES:
            self.actions.append(Unbind(volume))  # its claim was bound to another: free again
        # else: a binding under way (the claim's side finishes it) or a user's reservation

    def _settle(self, volume: Obj, phase: str) -> None:
        if deleting(volume) and phase != "Bound":
            self.actions.append(Remove(volume))
        elif volume_phase(volume) != phase:
            self.actions.append(SetPhase(volume, phase))

    def _released(self, volume: Obj, phase: str) -> None:
        if phase not in ("Released", "Failed"):
            self.actions.append(SetPhase(volume, "Released"))
            return
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete" and annotation(volume, PROVISIONED_BY) in PROVISIONERS:
            self.actions.append(Reclaim(volume))  # Failed too: a failed deletion is tried again (Kubernetes)
        elif policy == "Delete" and phase != "Failed":
            message = ("no provisioner of Berth made this volume, so none deletes it: delete its data "
                       "and the PersistentVolume by hand")
            self.actions += [SetPhase(volume, "Failed", message), Tell(volume, "VolumeFailedDelete", message)]
        elif deleting(volume):
            self.actions.append(Remove(volume))


def _age(obj: Obj) -> tuple[str, str, str]:
    meta: dict[str, Any] = obj["metadata"]
    return str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta["name"])


def plan_storage(storage: StorageState, nodes: dict[str, Obj], pods: Iterable[Obj] = ()) -> list[Action]:
    """One round's steps. `nodes`: every Node by name (a consumer's node, for node affinity); `pods`:
    needed only when `wants_pods` says so (they tell each claim's consumers)."""
    work = _Round(storage, nodes, consumers(pods))
    claims = sorted(storage.claims.values(), key=_age)
    for claim in claims:  # the bound ones first: their volumes are taken before any new binding
        if claim_bound(claim) and not deleting(claim):
            work.claim(claim)
    for claim in claims:
        if not claim_bound(claim) or deleting(claim):
            work.claim(claim)
    for volume in sorted(storage.volumes.values(), key=_age):
        work.volume(volume)
    return work.actions
