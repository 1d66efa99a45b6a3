"""What one scheduling round remembers between pods, so that a pod costs its own choice, not a search.

Placing a pod changes the counts of one node; what every other node is and holds stays. So, per
snapshot, a round keeps (as Kubernetes' scheduler keeps its per-cycle state and its cache):
- the nodes a kind of pod may go on (filters.requirements: pods with equal selectors, tolerations
  and requests are let on the same nodes), as node indexes in order; first the nodes the fixed
  filters keep (per selector and tolerations), then those the dynamic filters keep of them (host
  ports, which few pods ask and each its own, are not remembered: schedule.py asks them last);
- every node's resource score, per pod requests as scoring counts them;
- every node's replica count of each owner (owner spread).
Before use each is brought up to date over the nodes the snapshot's journal names as changed since
(NodeInfo.assume and forget write it; an owner's counts over the nodes its own pods changed), all
of them in one call of the filter or score. The answers come from the filters' and scores' own functions,
over the nodes that changed: the same as asking them of every node for every pod.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Hashable
from typing import TypeVar

from master.scheduler.filters import FilterPlugin, requirements
from master.scheduler.scores import Score, owner_counts, owner_spread, spread_ranks
from master.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

K = TypeVar("K", bound=Hashable)


class _PerNode:
    """A value per node, current up to `seen` entries of the journal."""

    __slots__ = ("seen", "values")

    def __init__(self, values: list, seen: int) -> None:
        self.values = values
        self.seen = seen


class _Feasible:
    """The nodes pods of one requirements may go on: `indexes` ascending, `member` by index."""

    __slots__ = ("fixed", "indexes", "member", "seen")

    def __init__(self, indexes: list[int], total: int, fixed: bytearray, seen: int) -> None:
        self.indexes = indexes
        self.member = bytearray(total)
        for index in indexes:
            self.member[index] = 1
        self.fixed = fixed  # the nodes the fixed filters keep: the others never become feasible
        self.seen = seen


class RoundMemo:
    """Feasible nodes, resource scores and owners' counts over one snapshot, kept current."""

    def __init__(self, snapshot: Snapshot, resource_score: Score) -> None:
        self.snapshot = snapshot
        self._nodes = snapshot.nodes
        self._journal = snapshot.journal
        self._resource_score = resource_score
        self._fixed: dict[Hashable, tuple[list[NodeInfo], bytearray]] = {}
        self._feasible: dict[tuple[Hashable, Hashable], _Feasible] = {}
        self._resources: dict[tuple[int, int], _PerNode] = {}
        self._owners: dict[str, _PerNode] = {}

    def _changed(self, seen: int, owner: str | None = None) -> list[NodeInfo]:
        """The nodes whose counts changed after `seen` journal entries (with `owner`: by its pods)."""
        since = self._journal[seen:]
        nodes = self._nodes
        if owner is None:
            return [nodes[i] for i in {i for i, _ in since}]
        return [nodes[i] for i in {i for i, o in since if o == owner}]

    def feasible(self, pod: PodInfo, plugins: list[FilterPlugin]) -> list[int]:
        """The indexes, ascending, of every node the remembered ones of `plugins` (those that apply
        to `pod`) keep."""
        plugins = [plugin for plugin in plugins if plugin.remembered]
        key = requirements(pod)
        if key is None:  # remembered for no other pod: asked of every node now
            nodes = self._nodes
            for plugin in plugins:
                nodes = plugin.keep(pod, nodes)
            return [n.index for n in nodes]
        dynamic = [plugin for plugin in plugins if plugin.dynamic]
        entry = self._feasible.get(key)
        if entry is None:
            kept, fixed = self._fixed_nodes(key[0], pod, plugins)
            for plugin in dynamic:
                kept = plugin.keep(pod, kept)
            entry = self._feasible[key] = _Feasible([n.index for n in kept], len(self._nodes), fixed,
                                                    len(self._journal))
        elif entry.seen < len(self._journal):
            indexes, member, fixed = entry.indexes, entry.member, entry.fixed
            changed = [n for n in self._changed(entry.seen) if fixed[n.index]]
            kept = changed
            for plugin in dynamic:
                kept = plugin.keep(pod, kept)
            fit = {n.index for n in kept}
            for node in changed:
                index = node.index
                fits = index in fit
                if fits and not member[index]:
                    insort(indexes, index)
                elif member[index] and not fits:
                    del indexes[bisect_left(indexes, index)]
                member[index] = fits
            entry.seen = len(self._journal)
        return entry.indexes

    def _fixed_nodes(self, key: Hashable, pod: PodInfo, plugins: list[FilterPlugin]
                     ) -> tuple[list[NodeInfo], bytearray]:
        """The nodes the fixed filters among `plugins` keep, as a list and by index."""
        found = self._fixed.get(key)
        if found is None:
            kept = self._nodes
            for plugin in plugins:
                if not plugin.dynamic:
                    kept = plugin.keep(pod, kept)
            fixed = bytearray(len(self._nodes))
            for node in kept:
                fixed[node.index] = 1
            found = self._fixed[key] = (kept, fixed)
        return found

    def resource_scores(self, pod: PodInfo) -> list[float]:
        """Every node's resource score for `pod`, by index."""
        return self._column(self._resources, (pod.score_cpu, pod.score_memory),
                            lambda nodes: self._resource_score(pod, nodes))

    def ranks(self, score: Score, pod: PodInfo, chosen: list[int]) -> list[float] | None:
        """`score` over the nodes at `chosen`: owner spread from the counts kept per node, the
        others (PreferNoSchedule taints, static volumes: rare) asked of those nodes."""
        if score is not owner_spread:
            return score(pod, [self._nodes[i] for i in chosen])
        owner = pod.owner
        if owner is None:
            return None
        counts = self._column(self._owners, owner, lambda nodes: owner_counts(owner, nodes), owner)
        return spread_ranks(list(map(counts.__getitem__, chosen)))

    def _column(self, table: dict[K, _PerNode], key: K, compute: Callable[[list[NodeInfo]], list],
                owner: str | None = None) -> list:
        """`compute` over every node, kept in `table` under `key`, and redone only for the nodes the
        journal changed since (with `owner`: the nodes where its pods changed)."""
        column = table.get(key)
        if column is None:
            column = table[key] = _PerNode(compute(self._nodes), len(self._journal))
        elif column.seen < len(self._journal):
            changed = self._changed(column.seen, owner)
            for node, value in zip(changed, compute(changed), strict=True):
                column.values[node.index] = value
            column.seen = len(self._journal)
        return column.values
