"""One scheduling round: a snapshot and the pods to place in, bindings and reasons out. No I/O.

Pods are placed one at a time, each seeing the room the ones before it took. As in
Kubernetes, a large cluster is not searched whole for every pod: once enough
feasible nodes are found (`feasible_to_find`), the best of those wins, and the
next pod's search starts where this one stopped, so every node gets its turn.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from master.scheduler.filters import FILTERS, FilterPlugin
from master.scheduler.scores import (
    RESOURCE_SCORES,
    RESOURCE_WEIGHT,
    SPREAD_WEIGHT,
    TAINT_WEIGHT,
    VOLUME_WEIGHT,
    Score,
    owner_spread,
    prefer_static_volumes,
    prefer_untainted,
)
from master.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

ALL_NODES_BELOW = 100  # Kubernetes: minFeasibleNodesToFind
CHUNK = 64  # nodes filtered together; the search stops at the first chunk that brings enough


@dataclass(frozen=True)
class SchedulerConfig:
    resource_score: str = "LeastAllocated"  # or "MostAllocated" (binpack)

    def __post_init__(self) -> None:
        if self.resource_score not in RESOURCE_SCORES:
            raise ValueError(f"resource_score: one of {', '.join(RESOURCE_SCORES)}")


@dataclass
class ScheduleResult:
    bindings: list[tuple[PodInfo, str]] = field(default_factory=list)
    unschedulable: list[tuple[PodInfo, str]] = field(default_factory=list)  # (pod, why)


def feasible_to_find(nodes: int) -> int:
    """Kubernetes' adaptive percentage: all of a small cluster, 42% of 1,000 nodes, at least 100."""
    if nodes < ALL_NODES_BELOW:
        return nodes
    percentage = max(5, 50 - nodes // 125)
    return max(ALL_NODES_BELOW, nodes * percentage // 100)


def unschedulable_message(total: int, reasons: Counter) -> str:
    """Kubernetes' summary: the reasons counted over the nodes, most common first."""
    parts = ", ".join(f"{count} {reason}" for reason, count in
                      sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return f"0/{total} nodes fit: {parts}" if parts else f"0/{total} nodes fit: no nodes"


class Scheduler:
    """Keeps where the last search stopped, so successive pods start at different nodes."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self._resource_score = RESOURCE_SCORES[self.config.resource_score]
        self._next_start = 0

    def schedule(self, snapshot: Snapshot, pods: list[PodInfo]) -> ScheduleResult:
        result = ScheduleResult()
        scores = self.scores(snapshot)
        for pod in pods:
            node, why = self.place(snapshot, pod, scores)
            if node is None:
                result.unschedulable.append((pod, why))
            else:
                node.assume(pod)
                result.bindings.append((pod, node.name))
        return result

    @staticmethod
    def scores(snapshot: Snapshot) -> list[tuple[int, Score]]:
        """(weight, score) besides the resource score, for this snapshot's nodes."""
        scores = [(SPREAD_WEIGHT, owner_spread)]
        if snapshot.soft_tainted:
            scores.append((TAINT_WEIGHT, prefer_untainted))
        if snapshot.storage.volumes:
            scores.append((VOLUME_WEIGHT, prefer_static_volumes))
        return scores

    def place(self, snapshot: Snapshot, pod: PodInfo, scores: list[tuple[int, Score]] | None = None
              ) -> tuple[NodeInfo | None, str]:
        nodes = snapshot.nodes
        total = len(nodes)
        if total == 0:
            return None, unschedulable_message(0, Counter())
        wanted = feasible_to_find(total)
        plugins = [plugin for plugin in FILTERS if plugin.applies(pod)]
        for plugin in plugins:
            problem = plugin.prefilter(pod)
            if problem is not None:
                return None, f"0/{total} nodes fit: {problem}"
        start = self._next_start % total
        order = nodes[start:] + nodes[:start]
        feasible: list[NodeInfo] = []
        examined = 0
        while examined < total and len(feasible) < wanted:
            chunk = order[examined:examined + CHUNK]
            examined += len(chunk)
            for plugin in plugins:
                chunk = plugin.keep(pod, chunk)
            feasible.extend(chunk)
        self._next_start = (start + examined) % total
        if not feasible:
            return None, unschedulable_message(total, self._reasons(pod, plugins, nodes))
        return self._best(pod, feasible[:wanted], self.scores(snapshot) if scores is None else scores), ""

    @staticmethod
    def _reasons(pod: PodInfo, plugins: list[FilterPlugin], nodes: list[NodeInfo]) -> Counter:
        """Why each node was left out: the first filter that rejected it explains it."""
        reasons: Counter = Counter()
        for node in nodes:
            for plugin in plugins:
                if not plugin.keep(pod, [node]):
                    reasons.update(plugin.reason(pod, node))
                    break
        return reasons

    def _best(self, pod: PodInfo, feasible: list[NodeInfo], scores: list[tuple[int, Score]]) -> NodeInfo:
        """The highest total score; on a tie the first found (the search order rotates).
        `scores`: (weight, score) besides the resource score."""
        totals = self._resource_score(pod, feasible)  # weighed 1: the others relative to it
        for weight, score in scores:
            ranks = score(pod, feasible)
            if ranks is not None:  # a score that ranks all nodes alike changes nothing: skipped
                relative = weight / RESOURCE_WEIGHT
                totals = [t + relative * r for t, r in zip(totals, ranks, strict=True)]
        return feasible[max(range(len(feasible)), key=totals.__getitem__)]
