"""One scheduling round: a snapshot and the pods to place in, bindings and reasons out. No I/O.

Pods are placed one at a time, each seeing the room the ones before it took. As in
Kubernetes, a large cluster is not scored whole for every pod: the first feasible nodes
from where the last search stopped, as many as `percentage_of_nodes_to_score` says
(`feasible_to_find`), are scored and the best of those wins; the next pod's search
starts where this one stopped (whole chunks of CHUNK nodes examined), so every node
gets its turn. What the filters and scores found stays known from pod to pod, over the
nodes placements have not changed (memo.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, mul

from master.scheduler.filters import FILTERS, FilterPlugin
from master.scheduler.memo import RoundMemo
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
FEWEST_PERCENT = 5  # Kubernetes: minFeasibleNodesPercentageToFind
CHUNK = 64  # nodes examined together; the search stops at the first chunk that brings enough


@dataclass(frozen=True)
class SchedulerConfig:
    resource_score: str = "LeastAllocated"  # or "MostAllocated" (binpack)
    # Kubernetes' percentageOfNodesToScore: the share of the nodes whose feasible ones are scored
    # for a pod, 0 for its adaptive default (feasible_to_find), 100 for every node
    percentage_of_nodes_to_score: int = 0

    def __post_init__(self) -> None:
        if self.resource_score not in RESOURCE_SCORES:
            raise ValueError(f"resource_score: one of {', '.join(RESOURCE_SCORES)}")
        percentage = self.percentage_of_nodes_to_score
        if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            raise ValueError("percentage_of_nodes_to_score: a whole number from 0 (adaptive) to 100")


@dataclass
class ScheduleResult:
    bindings: list[tuple[PodInfo, str]] = field(default_factory=list)
    unschedulable: list[tuple[PodInfo, str]] = field(default_factory=list)  # (pod, why)


def feasible_to_find(nodes: int, percentage: int = 0) -> int:
    """Kubernetes' numFeasibleNodesToFind: all of a small cluster, else `percentage` of the nodes
    but at least 100; percentage 0 is adaptive, 50% less a point per 125 nodes, at least 5%
    (42% of 1,000 nodes, 10% of 5,000)."""
    if nodes < ALL_NODES_BELOW:
        return nodes
    if percentage == 0:
        percentage = max(FEWEST_PERCENT, 50 - nodes // 125)
    return max(ALL_NODES_BELOW, nodes * percentage // 100)


def unschedulable_message(total: int, reasons: Counter) -> str:
    """Kubernetes' summary: the reasons counted over the nodes, most common first."""
    parts = ", ".join(f"{count} {reason}" for reason, count in
                      sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return f"0/{total} nodes fit: {parts}" if parts else f"0/{total} nodes fit: no nodes"


class Scheduler:
    """Keeps where the last search stopped, so successive pods start at different nodes, and what
    the current snapshot's filters and scores found (`RoundMemo`)."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self._resource_score = RESOURCE_SCORES[self.config.resource_score]
        self._next_start = 0
        self._memo: RoundMemo | None = None

    def schedule(self, snapshot: Snapshot, pods: list[PodInfo]) -> ScheduleResult:
        result = ScheduleResult()
        scores = self.scores(snapshot)
        try:
            for pod in pods:
                node, why = self.place(snapshot, pod, scores)
                if node is None:
                    result.unschedulable.append((pod, why))
                else:
                    node.assume(pod)
                    result.bindings.append((pod, node.name))
        finally:
            self._memo = None  # the round is over: its snapshot is not kept
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
        """The node `pod` goes on, or None and why it fits nowhere. The snapshot's nodes change
        only through NodeInfo.assume and forget while it is used (memo.py keeps up with those)."""
        nodes = snapshot.nodes
        total = len(nodes)
        if total == 0:
            return None, unschedulable_message(0, Counter())
        wanted = feasible_to_find(total, self.config.percentage_of_nodes_to_score)
        plugins = [plugin for plugin in FILTERS if plugin.applies(pod)]
        for plugin in plugins:
            problem = plugin.prefilter(pod)
            if problem is not None:
                return None, f"0/{total} nodes fit: {problem}"
        memo = self._memo
        if memo is None or memo.snapshot is not snapshot:
            memo = self._memo = RoundMemo(snapshot, self._resource_score)
        start = self._next_start % total
        chosen = self._first_feasible(pod, plugins, memo.feasible(pod, plugins), nodes, start, wanted)
        # the search examined whole chunks up to the last of them (all nodes when there are fewer)
        examined = total
        if len(chosen) == wanted:
            position = (chosen[-1] - start) % total + 1
            examined = min(total, -(-position // CHUNK) * CHUNK)
        self._next_start = (start + examined) % total
        if not chosen:
            return None, unschedulable_message(total, self._reasons(pod, plugins, nodes))
        return nodes[self._best(pod, chosen, memo, self.scores(snapshot) if scores is None else scores)], ""

    @staticmethod
    def _first_feasible(pod: PodInfo, plugins: list[FilterPlugin], feasible: list[int], nodes: list[NodeInfo],
                        start: int, wanted: int) -> list[int]:
        """The indexes of the first `wanted` feasible nodes from `start` on, round the end.
        `feasible`: what the remembered filters keep, ascending; the others are asked here, of as
        many of those as it takes."""
        cut = bisect_left(feasible, start)
        later = [plugin for plugin in plugins if not plugin.remembered]
        if not later:
            chosen = feasible[cut:cut + wanted]
            return chosen + feasible[:min(cut, wanted - len(chosen))] if len(chosen) < wanted else chosen
        rotated, chosen = feasible[cut:] + feasible[:cut], []
        for begin in range(0, len(rotated), wanted):
            kept = [nodes[i] for i in rotated[begin:begin + wanted]]
            for plugin in later:
                kept = plugin.keep(pod, kept)
            chosen += [node.index for node in kept]
            if len(chosen) >= wanted:
                break
        return chosen[:wanted]

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

    @staticmethod
    def _best(pod: PodInfo, chosen: list[int], memo: RoundMemo, scores: list[tuple[int, Score]]) -> int:
        """The index of the node with the highest total score; on a tie the first found (the
        search order rotates). `scores`: (weight, score) besides the resource score."""
        resource = memo.resource_scores(pod)
        totals = list(map(resource.__getitem__, chosen))  # weighed 1: the others relative to it
        for weight, score in scores:
            ranks = memo.ranks(score, pod, chosen)
            if ranks is not None:  # a score that ranks all nodes alike changes nothing: skipped
                relative = weight / RESOURCE_WEIGHT
                totals = list(map(add, totals, map(mul, repeat(relative, len(totals)), ranks)))
        return chosen[totals.index(max(totals))]
