"""Ranking: small named scores from 0 to 100 over the feasible nodes, weighted and summed.

Like the filters, a score takes the whole list of nodes (a comprehension, no call per node).
"""

from __future__ import annotations

from collections.abc import Callable

from master.scheduler.filters import tolerates
from master.scheduler.snapshot import NodeInfo, PodInfo
from master.storage.needs import static_volumes

MAX_SCORE = 100
RESOURCE_WEIGHT = 1
SPREAD_WEIGHT = 2  # as Kubernetes weighs PodTopologySpread against NodeResourcesFit
TAINT_WEIGHT = 3  # as Kubernetes weighs TaintToleration
# above the others together: a claim's volume made beforehand is used, not a new one made elsewhere
VOLUME_WEIGHT = 10
Score = Callable[[PodInfo, list[NodeInfo]], list[float] | None]  # None: ranks every node the same
# A resource score reads only the pod's score_cpu and score_memory, and ranks each node on its own
# (a round keeps them per node and per those two: memo.py).


def most_allocated(pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Binpack: the fuller the node would be, the better (keeps whole hosts free). The mean of
    the CPU and memory shares requested once the pod is there (requests as scoring counts them:
    snapshot.DEFAULT_CPU and DEFAULT_MEMORY for a container without one); a resource the node
    has none of counts as full."""
    cpu, memory, half = pod.score_cpu, pod.score_memory, MAX_SCORE / 2
    return [((n.scored_cpu + cpu) / n.allocatable_cpu if n.allocatable_cpu else 1.0)
            * half + ((n.scored_memory + memory) / n.allocatable_memory if n.allocatable_memory else 1.0)
            * half for n in nodes]


def least_allocated(pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Spread: the emptier the node would be, the better (Kubernetes' default)."""
    return [MAX_SCORE - score for score in most_allocated(pod, nodes)]


def owner_spread(pod: PodInfo, nodes: list[NodeInfo]) -> list[float] | None:
    """Fewer replicas of the pod's owner on a node, higher: 100 with none, 0 with the most any
    feasible node has. None when it ranks every node the same (no owner, or no replica yet)."""
    return None if pod.owner is None else spread_ranks(owner_counts(pod.owner, nodes))


def owner_counts(owner: str, nodes: list[NodeInfo]) -> list[int]:
    """The replicas of `owner` on each node (a round keeps these per node: memo.py)."""
    return [n.owners.get(owner, 0) for n in nodes]


def spread_ranks(counts: list[int]) -> list[float] | None:
    """owner_spread's ranks from the owner's replica counts on the feasible nodes."""
    most = max(counts)
    if most == 0:
        return None
    if most > len(counts) or min(counts) < 0:
        return [(most - count) / most * MAX_SCORE for count in counts]
    by_count = [(most - count) / most * MAX_SCORE for count in range(most + 1)]  # few: looked up
    return list(map(by_count.__getitem__, counts))


def prefer_untainted(pod: PodInfo, nodes: list[NodeInfo]) -> list[float] | None:
    """Kubernetes' TaintToleration score: fewer PreferNoSchedule taints the pod does not
    tolerate, higher (100 with none, 0 with the most any feasible node has). None when it ranks
    every node the same."""
    counts = [sum(1 for taint in n.taints if taint.effect == "PreferNoSchedule"
                  and not any(tolerates(t, taint) for t in pod.tolerations)) for n in nodes]
    most = max(counts, default=0)
    if most == 0:
        return None
    return [(most - count) / most * MAX_SCORE for count in counts]


def prefer_static_volumes(pod: PodInfo, nodes: list[NodeInfo]) -> list[float] | None:
    """Nodes where volumes made beforehand would serve more of the pod's claims that wait for their
    first consumer, higher (Kubernetes' VolumeBinding score favours static bindings the same way).
    None when it ranks every node the same (no such claim, or every node alike)."""
    if pod.volumes is None or not pod.volumes.waiting:
        return None
    counts = [static_volumes(pod.volumes, n) for n in nodes]
    most = max(counts, default=0)
    if most == 0 or min(counts) == most:
        return None
    return [count / most * MAX_SCORE for count in counts]


RESOURCE_SCORES = {"LeastAllocated": least_allocated, "MostAllocated": most_allocated}
