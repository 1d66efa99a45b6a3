"""What the scheduler sees: nodes and pods reduced to the numbers and sets it decides on.

Built once per round from the store's objects; the scheduler then only reads these
and records its own placements in them (`NodeInfo.assume`), so the next pod of the
same round sees the room the previous one took.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from berth.objects import Obj
from berth.quantity import cpu_millis, memory_bytes
from master.objects.conditions import ready_condition
from master.objects.isolation import Broken, each, reraise
from master.objects.kinds import Taint
from master.storage.needs import VolumeNeeds, volume_needs
from master.storage.volumes import StorageState, pod_claims

DEFAULT_CPU = 100  # millicores: Kubernetes' DefaultMilliCPURequest, for scoring only
DEFAULT_MEMORY = 200 << 20  # bytes: its DefaultMemoryRequest


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    resource_version: int
    cpu: int  # millicores requested: the effective request (effective_request)
    memory: int  # bytes requested
    node_selector: tuple[tuple[str, str], ...]
    tolerations: tuple[dict[str, Any], ...]
    host_ports: frozenset[tuple[str, int]]  # (protocol, hostPort)
    owner: str | None  # "Kind/name" of its controller, for spreading replicas
    # what scoring counts (Kubernetes' non-zero requests): a container without a request
    # counts DEFAULT_CPU / DEFAULT_MEMORY, so pods without requests spread instead of piling up
    score_cpu: int = 0
    score_memory: int = 0
    claims: tuple[str, ...] = ()  # the PersistentVolumeClaims its volumes name
    # what those claims ask of a node (master/storage/needs.py); None: no claims, or not resolved
    # (a pod already placed, counted against its node)
    volumes: VolumeNeeds | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class NodeInfo:
    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    ready: bool
    unschedulable: bool
    allocatable_cpu: int
    allocatable_memory: int
    requested_cpu: int = 0
    requested_memory: int = 0
    scored_cpu: int = 0  # the pods' score_cpu: what the resource scores weigh
    scored_memory: int = 0
    host_ports: set[tuple[str, int]] = field(default_factory=set)
    owners: Counter = field(default_factory=Counter)
    pods: int = 0
    # where it is in its snapshot's nodes, and that snapshot's journal of the nodes whose counts
    # changed (Snapshot sets both): what the scheduler remembers between pods is redone only for those
    index: int = field(default=-1, repr=False, compare=False)
    journal: list[tuple[int, str | None]] | None = field(default=None, repr=False, compare=False)

    def assume(self, pod: PodInfo) -> None:
        """Count `pod` as placed here."""
        if self.journal is not None:
            self.journal.append((self.index, pod.owner))
        self.requested_cpu += pod.cpu
        self.requested_memory += pod.memory
        self.scored_cpu += pod.score_cpu
        self.scored_memory += pod.score_memory
        self.host_ports |= pod.host_ports
        if pod.owner is not None:
            self.owners[pod.owner] += 1
        self.pods += 1

    def forget(self, pod: PodInfo) -> None:
        """Count `pod` as gone from here (the rebalancer's plan moves it)."""
        if self.journal is not None:
            self.journal.append((self.index, pod.owner))
        self.requested_cpu -= pod.cpu
        self.requested_memory -= pod.memory
        self.scored_cpu -= pod.score_cpu
        self.scored_memory -= pod.score_memory
        self.host_ports -= pod.host_ports  # two pods never share a host port on one node
        if pod.owner is not None:
            self.owners[pod.owner] -= 1
        self.pods -= 1


def _request(container: Obj, resource: str) -> Any:
    resources = container.get("resources") or {}
    # as in Kubernetes: a limit without a request requests the limit
    value = (resources.get("requests") or {}).get(resource)
    return value if value is not None else (resources.get("limits") or {}).get(resource)


def _requests(containers: list[Obj], resource: str) -> list[int | None]:
    """Each container's request of `resource` in whole units (None: it requests none)."""
    parse = cpu_millis if resource == "cpu" else memory_bytes
    return [parse(q) if (q := _request(c, resource)) is not None else None for c in containers]


def effective_request(init: list[int | None], app: list[int | None], default: int = 0) -> int:
    """Kubernetes' effective request of a pod: its init containers run one at a time before the
    app containers, which then run together, so the pod needs the larger of the largest init
    container's request and the app containers' sum. `default` stands for a container that
    requests none (0 to fit; DEFAULT_CPU or DEFAULT_MEMORY to score, as Kubernetes' non-zero
    requests count init containers too)."""
    def value(request: int | None) -> int:
        return default if request is None else request

    return max(sum(value(r) for r in app), max((value(r) for r in init), default=0))


def pod_info(pod: Obj, storage: StorageState | None = None) -> PodInfo:
    """`storage`: the round's claims, volumes and classes, to resolve what the pod's claims need of a
    node (a pod to place); without it they are named only."""
    meta, spec = pod["metadata"], pod["spec"]
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    cpus, init_cpus = _requests(containers, "cpu"), _requests(inits, "cpu")
    memories, init_memories = _requests(containers, "memory"), _requests(inits, "memory")
    # an init container's host ports are published nowhere (runtime/driver.py): not counted here
    ports = frozenset((p.get("protocol", "TCP"), p["hostPort"]) for c in containers
                      for p in c.get("ports") or [] if p.get("hostPort"))
    owner = next((f"{ref['kind']}/{ref['name']}" for ref in meta.get("ownerReferences") or []
                  if ref.get("controller", True)), None)
    claims = tuple(pod_claims(pod))
    needs = volume_needs(meta.get("namespace", ""), list(claims), storage) if claims and storage else None
    return PodInfo(
        namespace=meta.get("namespace", ""), name=meta["name"], uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", 0),
        cpu=effective_request(init_cpus, cpus), memory=effective_request(init_memories, memories),
        score_cpu=effective_request(init_cpus, cpus, DEFAULT_CPU),
        score_memory=effective_request(init_memories, memories, DEFAULT_MEMORY),
        node_selector=tuple(sorted((spec.get("nodeSelector") or {}).items())),
        tolerations=tuple(spec.get("tolerations") or []), host_ports=ports, owner=owner, claims=claims,
        volumes=needs)


def node_taints(node: Obj) -> tuple[Taint, ...]:
    """A Node's taints as the scheduler and the taint evictor read them."""
    listed = (node.get("spec") or {}).get("taints") or []
    return tuple(Taint.model_construct(key=t["key"], value=t.get("value") or None, effect=t["effect"])
                 for t in listed)


def node_info(node: Obj) -> NodeInfo:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    return NodeInfo(
        name=node["metadata"]["name"], labels=dict(node["metadata"].get("labels") or {}),
        taints=node_taints(node),
        ready=ready_condition(node) is True, unschedulable=bool(spec.get("unschedulable")),
        allocatable_cpu=int(allocatable.get("cpu") or 0),
        allocatable_memory=int(allocatable.get("memory") or 0))


def is_finished(pod: Obj) -> bool:
    """Succeeded or Failed pods hold no resources on their node."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass
class Snapshot:
    nodes: list[NodeInfo]
    by_name: dict[str, NodeInfo]
    # the claims, volumes and classes read with the nodes and pods: what pods' claims need
    storage: StorageState = field(default_factory=StorageState)
    # (index, the pod's owner) of each node whose counts changed (assume, forget), in order:
    # appended to, never cut
    journal: list[tuple[int, str | None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for index, node in enumerate(self.nodes):
            node.index, node.journal = index, self.journal

    @cached_property  # a snapshot's nodes and their taints do not change; placements do not touch them
    def soft_tainted(self) -> bool:
        """Some node has a PreferNoSchedule taint (else that score is skipped: most clusters)."""
        return any(t.effect == "PreferNoSchedule" for n in self.nodes for t in n.taints)


class PodInfos:
    """`pod_info` of bound pods, kept from one scheduling round to the next: a pod at one
    resourceVersion reads the same, and at 10,000 pods reading them all again was most of a round's
    snapshot. What a round did not ask for is forgotten at its end (`turn`)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[object, PodInfo]] = {}
        self._asked: dict[str, tuple[object, PodInfo]] = {}

    def of(self, pod: Obj) -> PodInfo:
        meta = pod["metadata"]
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if not uid:
            return pod_info(pod)
        known = self._asked.get(uid) or self._kept.get(uid)
        if known is None or known[0] != version:
            known = (version, pod_info(pod))
        self._asked[uid] = known
        return known[1]

    def turn(self) -> None:
        self._kept, self._asked = self._asked, {}


def build_snapshot(nodes: list[Obj], pods: list[Obj], broken: Broken = reraise,
                   storage: StorageState | None = None, infos: PodInfos | None = None) -> Snapshot:
    """Every node, with the pods already bound to it counted against it. A node or pod that
    cannot be read goes to `broken` (objects/isolation.py) and is left out. `storage`: the claims,
    volumes and classes read in the same store read; `infos`: bound pods read in earlier rounds."""
    infos_of = pod_info if infos is None else infos.of
    node_infos = sorted(each(nodes, node_info, broken), key=lambda n: n.name)
    by_name = {n.name: n for n in node_infos}

    def count(pod: Obj) -> None:
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound in by_name and not is_finished(pod):
            by_name[bound].assume(infos_of(pod))

    each(pods, count, broken)
    if infos is not None:
        infos.turn()
    return Snapshot(node_infos, by_name, storage or StorageState())
