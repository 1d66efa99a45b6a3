"""Reading volumes, claims and classes, and Kubernetes' binder rules: which volume a claim gets.

Stored objects are read defensively (a garbage field reads as missing), since a round must go on
past one bad object. The rules are the PersistentVolume controller's (`findMatchingVolume`): a
volume pre-bound to the claim (its claimRef names it) wins; otherwise an Available volume of the
claim's class (after defaulting), offering every access mode the claim asks for, at least as large
as its request, and, when the claim waits for its first consumer, whose node affinity admits the
node that consumer was scheduled to; of those, the smallest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.objects import Obj
from berth.quantity import memory_bytes
from master.objects.storage_kinds import DEFAULT_CLASS_ANNOTATION

SELECTED_NODE = "volume.kubernetes.io/selected-node"  # the scheduler's choice for a claim that waited
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"  # which provisioner made a volume (and may delete it)
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"  # the binder, not a user, chose the pair
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"  # on a claim: its binding was written
STORAGE_NODE = "berth.io/storage-node"  # on a provisioned volume: the Node its directory is on
HOSTNAME_LABEL = "kubernetes.io/hostname"  # read as the node's name when the node has no such label
WAIT_FOR_CONSUMER = "WaitForFirstConsumer"
YES = "yes"


class NodeLike(Protocol):
    """What node affinity reads of a node: the scheduler's NodeInfo is one, `NodeRef` another."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class NodeRef:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, node: Obj) -> NodeRef:
        labels = (node.get("metadata") or {}).get("labels")
        return cls(node["metadata"]["name"], dict(labels) if isinstance(labels, dict) else {})


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def key_of(obj: Obj) -> tuple[str, str]:
    return str(obj["metadata"].get("namespace") or ""), name_of(obj)


def uid_of(obj: Obj) -> str:
    return _text(obj["metadata"].get("uid"))


def annotation(obj: Obj, key: str) -> str:
    return _text(_get(obj, "metadata", "annotations", key))


def deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def pod_claims(pod: Obj) -> list[str]:
    """The claims a pod's volumes name (spec.volumes[].persistentVolumeClaim.claimName), in order, once."""
    found: list[str] = []
    volumes = _get(pod, "spec", "volumes")
    for volume in volumes if isinstance(volumes, list) else []:
        name = _get(volume, "persistentVolumeClaim", "claimName")
        if isinstance(name, str) and name and name not in found:
            found.append(name)
    return found


def quantity_bytes(value: Any) -> int | None:
    try:
        return memory_bytes(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except ValueError:
        return None


def capacity(volume: Obj) -> int | None:
    return quantity_bytes(_get(volume, "spec", "capacity", "storage"))


def request(claim: Obj) -> int | None:
    return quantity_bytes(_get(claim, "spec", "resources", "requests", "storage"))


def request_text(claim: Obj) -> str:
    """The claim's request as written (a provisioned volume's capacity); "" when unreadable."""
    value = _get(claim, "spec", "resources", "requests", "storage")
    return str(value) if quantity_bytes(value) is not None else ""


def access_modes(obj: Obj) -> list[str]:
    modes = _get(obj, "spec", "accessModes")
    return [m for m in modes if isinstance(m, str)] if isinstance(modes, list) else []


def volume_phase(volume: Obj) -> str:
    """Its status phase; a volume no controller has looked at yet reads as Pending."""
    return _text(_get(volume, "status", "phase")) or "Pending"


def claim_phase(claim: Obj) -> str:
    return _text(_get(claim, "status", "phase")) or "Pending"


def claim_ref(volume: Obj) -> dict[str, Any] | None:
    ref = _get(volume, "spec", "claimRef")
    return ref if isinstance(ref, dict) and ref.get("name") else None


def volume_class(volume: Obj) -> str:
    return _text(_get(volume, "spec", "storageClassName"))


def default_class(classes: Iterable[Obj]) -> Obj | None:
    """The class annotated default; of several, the newest, as Kubernetes picks since 1.26."""
    marked = [c for c in classes if annotation(c, DEFAULT_CLASS_ANNOTATION) == "true"]
    if not marked:
        return None
    return max(marked, key=lambda c: (_text(c["metadata"].get("creationTimestamp")), name_of(c)))


def claim_class(claim: Obj, classes: Iterable[Obj]) -> str:
    """The class a claim asks for, after defaulting: its storageClassName when it names one ("" too:
    no class), else the default class's name, else "" (the volumes without a class)."""
    named = _get(claim, "spec", "storageClassName")
    if isinstance(named, str):
        return named
    found = default_class(classes)
    return name_of(found) if found is not None else ""


def reserved_for(volume: Obj, claim: Obj) -> bool:
    """The volume's claimRef names this claim (any uid when it names none: a reservation by name)."""
    ref = claim_ref(volume)
    if ref is None or (ref.get("namespace") or "", ref.get("name")) != key_of(claim):
        return False
    return not ref.get("uid") or ref.get("uid") == uid_of(claim)


def bound_to(volume: Obj, claim: Obj) -> bool:
    """The volume's claimRef names this very claim, by uid: the binding written by the binder."""
    ref = claim_ref(volume)
    return ref is not None and bool(ref.get("uid")) and reserved_for(volume, claim)


def claim_bound(claim: Obj) -> bool:
    """Its binding was written (volumeName, with phase Bound or the bind-completed annotation); a
    volumeName alone is a volume asked for."""
    volume = _get(claim, "spec", "volumeName")
    return bool(volume) and (claim_phase(claim) == "Bound" or annotation(claim, BIND_COMPLETED) == YES)


def available(volume: Obj) -> bool:
    return not deleting(volume) and claim_ref(volume) is None and volume_phase(volume) in ("Pending",
                                                                                         "Available")


# --- node affinity ---------------------------------------------------------------------------

def _node_value(node: NodeLike, key: str) -> str | None:
    value = node.labels.get(key)
    if value is None and key == HOSTNAME_LABEL:
        return node.name  # Berth's nodes carry no hostname label: the name is what it would say
    return value


def _requirement_met(requirement: Any, node: NodeLike) -> bool:
    if not isinstance(requirement, dict) or not isinstance(requirement.get("key"), str):
        return False
    value, operator = _node_value(node, requirement["key"]), requirement.get("operator")
    values = requirement.get("values") if isinstance(requirement.get("values"), list) else []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    return False


def node_affinity_admits(volume: Obj, node: NodeLike) -> bool:
    """Kubernetes' rule for a volume's required node affinity: its terms are ORed, each term's
    expressions ANDed. A volume without node affinity is reachable from every node; one whose
    affinity cannot be read from none."""
    affinity = _get(volume, "spec", "nodeAffinity")
    if affinity is None:
        return True
    terms = _get(affinity, "required", "nodeSelectorTerms")
    if not isinstance(terms, list) or not terms:
        return False
    for term in terms:
        expressions = _get(term, "matchExpressions")
        if isinstance(expressions, list) and expressions and all(_requirement_met(r, node)
                                                                 for r in expressions):
            return True
    return False


def affinity_nodes(volume: Obj) -> list[str]:
    """The node names a volume's affinity lists under kubernetes.io/hostname In (its node, for a
    provisioned local volume); [] when it names none that way."""
    names: list[str] = []
    for term in _get(volume, "spec", "nodeAffinity", "required", "nodeSelectorTerms") or []:
        for requirement in _get(term, "matchExpressions") or []:
            if _get(requirement, "key") == HOSTNAME_LABEL and _get(requirement, "operator") == "In":
                names += [v for v in requirement.get("values") or [] if isinstance(v, str)]
    return names


# --- matching --------------------------------------------------------------------------------

def unsatisfied(volume: Obj, claim: Obj, class_name: str) -> str | None:
    """Why this volume cannot serve this claim, whatever its phase (None: it can), as Kubernetes'
    checkVolumeSatisfyClaim words it."""
    size, wanted = capacity(volume), request(claim)
    if size is None or wanted is None or size < wanted:
        return "requested PV is too small"
    if volume_class(volume) != class_name:
        return "storageClassName does not match"
    if not set(access_modes(claim)) <= set(access_modes(volume)):
        return "incompatible accessMode"
    return None


def could_bind(volume: Obj, claim: Obj, class_name: str, *, delayed: bool = False) -> bool:
    """The volume may be bound to the claim on some node: pre-bound to it (of any class), or, unless
    the claim waits for its consumer's node, Available and of its class. Size and access modes always."""
    if deleting(volume):
        return False
    size, wanted = capacity(volume), request(claim)
    if size is None or wanted is None or size < wanted:
        return False
    if not set(access_modes(claim)) <= set(access_modes(volume)):
        return False
    asked = _get(claim, "spec", "volumeName")
    if asked and asked != name_of(volume):
        return False
    if reserved_for(volume, claim):
        return True
    return not delayed and available(volume) and volume_class(volume) == class_name


def matching_volume(claim: Obj, volumes: Iterable[Obj], node: NodeLike | None = None, *,
                    class_name: str | None = None, delayed: bool = False,
                    taken: frozenset[str] | set[str] = frozenset()) -> Obj | None:
    """The volume the binder gives `claim`, or None. `class_name`: the claim's class after defaulting
    (None: as its spec says); `node` (a claim that waited for its first consumer, now scheduled): only
    volumes whose node affinity admits it; `delayed` with no node: only a volume pre-bound to the claim
    (the others wait for the consumer's node); `taken`: volumes this round gave already. A volume
    pre-bound to the claim wins; otherwise the smallest, then the fewest access modes, then by name."""
    wanted_class = class_name if class_name is not None else _text(_get(claim, "spec", "storageClassName"))
    best: tuple[tuple[int, int, str], Obj] | None = None
    for volume in volumes:
        if name_of(volume) in taken:
            continue
        if not could_bind(volume, claim, wanted_class, delayed=delayed and node is None):
            continue
        if node is not None and not node_affinity_admits(volume, node):
            continue
        if reserved_for(volume, claim):
            return volume
        rank = (capacity(volume) or 0, len(access_modes(volume)), name_of(volume))
        if best is None or rank < best[0]:
            best = (rank, volume)
    return best[1] if best is not None else None


@dataclass(frozen=True)
class StorageState:
    """Claims, volumes and classes as one round reads them (the scheduler's snapshot carries one)."""

    claims: dict[tuple[str, str], Obj] = field(default_factory=dict)
    volumes: dict[str, Obj] = field(default_factory=dict)
    classes: dict[str, Obj] = field(default_factory=dict)

    @classmethod
    def of(cls, claims: Iterable[Obj], volumes: Iterable[Obj], classes: Iterable[Obj]) -> StorageState:
        return cls({key_of(c): c for c in claims}, {name_of(v): v for v in volumes},
                   {name_of(c): c for c in classes})

    def class_of(self, claim: Obj) -> str:
        return claim_class(claim, self.classes.values())

    def waits_for_consumer(self, class_name: str) -> bool:
        klass = self.classes.get(class_name) if class_name else None
        return klass is not None and klass.get("volumeBindingMode") == WAIT_FOR_CONSUMER
