"""Feasibility: small named filters, each keeping the nodes a pod may go on and saying why not.

As in the Kubernetes scheduler framework each filter has one job. A filter works on a
list of nodes at once (`keep`: a comprehension, no call per node, which is what makes
10,000 pods on 1,000 nodes fast in Python) and explains a node it rejected (`reason`).
The reasons of all nodes are counted into the message a pod that fits nowhere gets
("0/3 nodes fit: 2 Insufficient memory, 1 node(s) had taint dedicated=db:NoSchedule").

A remembered filter reads of the pod only what `requirements` names: pods with equal requirements
are let on the same nodes, which is what lets a round remember them (memo.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from master.objects.kinds import Taint
from master.scheduler.snapshot import NodeInfo, PodInfo
from master.storage.needs import node_problem

Reasons = tuple[str, ...]
_HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})  # PreferNoSchedule steers (scores.py), never excludes


@dataclass(frozen=True)
class FilterPlugin:
    name: str
    keep: Callable[[PodInfo, list[NodeInfo]], list[NodeInfo]]
    reason: Callable[[PodInfo, NodeInfo], Reasons]  # why `keep` left this node out
    applies: Callable[[PodInfo], bool] = lambda _pod: True  # False: skipped for this pod (PreFilter)
    # why the pod can go on no node at all, before any node is looked at (PreFilter); None: it may
    prefilter: Callable[[PodInfo], str | None] = lambda _pod: None
    # True: its verdict on a node changes as pods are placed there (requests, ports); False: it reads
    # only what a node is (readiness, labels, taints), fixed for a snapshot
    dynamic: bool = False
    # False: never remembered by a round (memo.py), asked only of the nodes a pod's search reaches;
    # for what few pods ask, each for its own (host ports)
    remembered: bool = True


# --- NodeReady, NodeUnschedulable -----------------------------------------------------------

def _ready(_pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    return [n for n in nodes if n.ready]


def _schedulable(_pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    return [n for n in nodes if not n.unschedulable]


# --- NodeResourcesFit -----------------------------------------------------------------------

def _fits(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    """Requests against allocatable minus what the pods already there requested."""
    cpu, memory = pod.cpu, pod.memory  # a resource the pod does not request is not checked
    return [n for n in nodes if (not cpu or n.requested_cpu + cpu <= n.allocatable_cpu)
            and (not memory or n.requested_memory + memory <= n.allocatable_memory)]


def _insufficient(pod: PodInfo, node: NodeInfo) -> Reasons:
    short = []
    if pod.cpu and node.requested_cpu + pod.cpu > node.allocatable_cpu:
        short.append("Insufficient cpu")
    if pod.memory and node.requested_memory + pod.memory > node.allocatable_memory:
        short.append("Insufficient memory")
    return tuple(short)


# --- NodeSelector ---------------------------------------------------------------------------

def _selected(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    wanted = pod.node_selector
    return [n for n in nodes if all(n.labels.get(k) == v for k, v in wanted)]


# --- TaintToleration ------------------------------------------------------------------------

def tolerates(toleration: dict[str, Any], taint: Taint) -> bool:
    """Kubernetes' rule: an empty key with Exists tolerates everything; an empty effect any effect."""
    effect = toleration.get("effect")
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key")
    if toleration.get("operator", "Equal") == "Exists":
        return not key or key == taint.key
    return key == taint.key and (toleration.get("value") or "") == (taint.value or "")


def untolerated(pod: PodInfo, node: NodeInfo) -> Taint | None:
    for taint in node.taints:
        if taint.effect in _HARD_EFFECTS and not any(tolerates(t, taint) for t in pod.tolerations):
            return taint
    return None


def _tolerated(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    return [n for n in nodes if not n.taints or untolerated(pod, n) is None]


def _taint_reason(pod: PodInfo, node: NodeInfo) -> Reasons:
    return (f"node(s) had taint {untolerated(pod, node)}",)


# --- NodePorts ------------------------------------------------------------------------------

def _free_ports(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    ports = pod.host_ports
    return [n for n in nodes if ports.isdisjoint(n.host_ports)]


# --- VolumeBinding --------------------------------------------------------------------------

def _volumes_reachable(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    """The pod's claims' volumes are reachable there, or can be bound or made there (storage/needs.py)."""
    needs = pod.volumes
    return nodes if needs is None else [n for n in nodes if node_problem(needs, n) is None]


def _volume_reason(pod: PodInfo, node: NodeInfo) -> Reasons:
    return (node_problem(pod.volumes, node) or "",) if pod.volumes is not None else ()


# In the order they run: the cheapest and most often failing first.
FILTERS: tuple[FilterPlugin, ...] = (
    FilterPlugin("NodeReady", _ready, lambda _p, _n: ("node(s) were not ready",)),
    FilterPlugin("NodeUnschedulable", _schedulable, lambda _p, _n: ("node(s) were unschedulable",)),
    FilterPlugin("NodeSelector", _selected, lambda _p, _n: ("node(s) didn't match Pod's node selector",),
                 lambda pod: bool(pod.node_selector)),
    FilterPlugin("TaintToleration", _tolerated, _taint_reason),
    FilterPlugin("NodePorts", _free_ports,
                 lambda _p, _n: ("node(s) didn't have free ports for the requested pod ports",),
                 lambda pod: bool(pod.host_ports), dynamic=True, remembered=False),
    FilterPlugin("NodeResourcesFit", _fits, _insufficient, lambda pod: bool(pod.cpu or pod.memory),
                 dynamic=True),
    FilterPlugin("VolumeBinding", _volumes_reachable, _volume_reason, lambda pod: pod.volumes is not None,
                 lambda pod: pod.volumes.problem if pod.volumes is not None else None),
)


def requirements(pod: PodInfo) -> tuple[Hashable, Hashable] | None:
    """What the remembered filters read of `pod`: what the fixed ones read, then what the dynamic
    ones do. Pods with equal requirements are let on the same nodes by them. None for a pod with
    claims (their needs are its own) or tolerations that cannot be a key."""
    if pod.volumes is not None:
        return None
    fixed = (pod.node_selector, tuple(tuple(sorted(t.items())) for t in pod.tolerations))
    try:
        hash(fixed)
    except TypeError:
        return None
    return fixed, (pod.cpu, pod.memory)
