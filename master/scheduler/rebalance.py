"""The rebalancer's decision: which pods to evict so that their owners make them again on idler nodes.

The scheduler places a pod once; nodes that join later, or come back from a cordon, stay empty
while the others hold everything. In the spirit of the Kubernetes descheduler, over the nodes
that are Ready and schedulable, two strategies pick pods to evict (their owners make new ones,
which the scheduler places by its usual scores):

- **RemoveDuplicates**: a node holding at least two more of one owner's pods than another node
  they could run on gives one up to it, until no two such nodes differ by more than one (several
  on one node while another holds none is the plain case; the descheduler stops at its average
  rounded up, which leaves two, two and none on three nodes as they are).
- **LowNodeUtilization**, with deviation thresholds: a node whose requested CPU or memory (as the
  scheduler scores them: Kubernetes' non-zero requests) is more than `threshold_percent` points of
  its allocatable above the nodes' average gives up pods while an idle node can take them without
  going above the average itself. Idle: no resource above the average, one below it by as many
  points (all below by that much, the descheduler's rule, would never hold for a resource nobody
  asks much of: 2% of memory on average leaves no node 20 points under).

LowNodeUtilization is off while the scheduler packs pods (MostAllocated): its next placements would
fill the crowded nodes again. Only pods with a controller go (never bare pods: nothing would make
them again; nor pods with PersistentVolumeClaims, whose volumes may hold them to a node), only to a
node the scheduler's filters would let them on and that it would not avoid
(a PreferNoSchedule taint they do not tolerate), and each is checked as the eviction API checks it
(`disruption.eviction_verdict`), budgets charged as the plan goes: a plan never holds more evictions
than the budgets allow, nor more than `max_evictions`. While some pod waits for its first
scheduling no plan is made: its place would change every count here. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.objects import Obj
from master.objects.conditions import condition
from master.objects.isolation import Broken, each, reraise
from master.scheduler.filters import FILTERS, tolerates
from master.scheduler.snapshot import NodeInfo, PodInfo, build_snapshot, is_finished, pod_info
from master.storage.volumes import pod_claims
from master.workloads.disruption import Evict, eviction_verdict, terminating
from master.workloads.owners import controller_of
from master.workloads.replicas import deletion_rank

RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class RebalanceConfig:
    threshold_percent: int = 20  # points of allocatable above (or below) the average that count as over
    max_evictions: int = 5  # a round's evictions, both strategies together
    # False when the scheduler packs pods (MostAllocated): moving them to idle nodes would be undone
    # by the next placement, every round
    low_utilization: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.threshold_percent <= 100:
            raise ValueError("rebalance_threshold_percent: from 1 to 100")
        if not 1 <= self.max_evictions <= 1000:
            raise ValueError("rebalance_max_evictions: from 1 to 1000")


@dataclass(frozen=True)
class Move:
    """Evict this pod from `node`, for `reason`; its owner makes another, placed elsewhere."""

    namespace: str
    pod: str
    node: str
    reason: str


@dataclass(frozen=True)
class Plan:
    moves: tuple[Move, ...] = ()
    waiting: str | None = None  # why no move is planned now


@dataclass
class _Candidate:
    pod: Obj
    info: PodInfo
    node: str
    owner: tuple[str, str]  # (namespace, controller uid or Kind/name)
    owner_name: str  # Kind/name, as a person reads it


@dataclass
class _Round:
    """What the plan has taken so far: moves, the pods moved, the budgets as charged."""

    budgets: dict[str, list[Obj]]  # by namespace
    stamp: str
    limit: int
    moves: list[Move] = field(default_factory=list)
    moved: set[tuple[str, str]] = field(default_factory=set)

    @property
    def full(self) -> bool:
        return len(self.moves) >= self.limit

    def take(self, candidate: _Candidate, source: NodeInfo, target: NodeInfo, reason: str) -> bool:
        """Move the pod in the plan if its eviction would be allowed now; its budget pays for it."""
        namespace = candidate.info.namespace
        verdict = eviction_verdict(candidate.pod, self.budgets.get(namespace, []), self.stamp)
        if not isinstance(verdict, Evict):
            return False
        if verdict.budget is not None:
            name = verdict.budget["metadata"]["name"]
            self.budgets[namespace] = [{**b, "status": verdict.status} if b["metadata"]["name"] == name else b
                                       for b in self.budgets[namespace]]
        self.moves.append(Move(namespace, candidate.info.name, source.name, reason))
        self.moved.add(candidate.info.key)
        source.forget(candidate.info)
        target.assume(candidate.info)
        return True


def avoided(pod: PodInfo, node: NodeInfo) -> bool:
    """The node has a PreferNoSchedule taint the pod does not tolerate."""
    return any(taint.effect == "PreferNoSchedule" and not any(tolerates(t, taint) for t in pod.tolerations)
               for taint in node.taints)


def feasible(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    """The nodes the scheduler's filters would let `pod` on, less those it avoids (its replacement
    would rather go back where it came from, and be moved again next round)."""
    for plugin in FILTERS:
        if plugin.applies(pod):
            nodes = plugin.keep(pod, nodes)
    return [n for n in nodes if not avoided(pod, n)]


def awaiting_scheduling(pod: Obj) -> bool:
    """Not bound and not yet judged by the scheduler (one it found no room for does not hold
    rebalancing up: that could wait for ever)."""
    if pod["spec"].get("nodeName") or terminating(pod) or is_finished(pod):
        return False
    scheduled = condition(pod, "PodScheduled")
    return scheduled is None or scheduled.get("status") != "False"


def plan_rebalance(nodes: list[Obj], pods: list[Obj], budgets: list[Obj], config: RebalanceConfig,
                   stamp: str, broken: Broken = reraise) -> Plan:
    """`pods`: every pod; `budgets`: every PodDisruptionBudget; `stamp`: now, as the eviction
    records it in a budget."""
    unplaced = sum(1 for pod in pods if awaiting_scheduling(pod))
    if unplaced:
        return Plan(waiting=f"{unplaced} pod(s) not scheduled yet")
    staying = [p for p in pods if p["spec"].get("nodeName") and not terminating(p) and not is_finished(p)]
    snapshot = build_snapshot(nodes, staying, broken)
    usable = [n for n in snapshot.nodes if n.ready and not n.unschedulable]
    if len(usable) < 2:
        return Plan()
    names = {n.name for n in usable}
    candidates = _candidates(staying, names, broken)
    by_namespace: dict[str, list[Obj]] = {}
    for budget in budgets:
        by_namespace.setdefault(budget["metadata"].get("namespace") or "", []).append(budget)
    plan = _Round(by_namespace, stamp, config.max_evictions)
    _remove_duplicates(plan, candidates, usable, snapshot.by_name)
    if config.low_utilization:
        _low_node_utilization(plan, candidates, usable, config.threshold_percent)
    return Plan(tuple(plan.moves))


def _candidates(pods: list[Obj], usable: set[str], broken: Broken) -> list[_Candidate]:
    """The pods a plan may move (a controller's, on a usable node), the first to go first."""
    def candidate(pod: Obj) -> _Candidate | None:
        ref = controller_of(pod)
        if ref is None or pod["spec"]["nodeName"] not in usable or pod_claims(pod):
            return None  # a pod with claims may be held where its volumes are: it stays
        owner_name = f"{ref.get('kind')}/{ref.get('name')}"
        info = pod_info(pod)
        owner = (info.namespace, str(ref.get("uid") or owner_name))
        return _Candidate(pod, info, pod["spec"]["nodeName"], owner, owner_name)

    found = [c for c in each(pods, candidate, broken) if c is not None]
    return sorted(found, key=lambda c: (deletion_rank(c.pod), c.info.key))


def _remove_duplicates(plan: _Round, candidates: list[_Candidate], usable: list[NodeInfo],
                       by_name: dict[str, NodeInfo]) -> None:
    groups: dict[tuple[str, str], list[_Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.owner, []).append(candidate)
    for owner in sorted(groups):
        members = groups[owner]
        counts = {n.name: 0 for n in usable}
        for member in members:
            counts[member.node] += 1
        while not plan.full:
            source = max(counts, key=lambda name: (counts[name], name))
            targets = [n for n in feasible(members[0].info, usable) if counts[source] - counts[n.name] >= 2]
            if not targets:
                break
            target = min(targets, key=lambda n: (counts[n.name], n.pods, n.name))
            reason = (f"{counts[source]} pods of {members[0].owner_name} on this node, "
                      f"{counts[target.name]} on {target.name}")
            here = [m for m in members if m.node == source and m.info.key not in plan.moved]
            if not any(plan.take(m, by_name[source], target, reason) for m in here):
                break  # their budget allows no more now
            counts[source] -= 1
            counts[target.name] += 1


def _percent(node: NodeInfo, resource: str, extra: PodInfo | None = None) -> float:
    scored = node.scored_cpu if resource == "cpu" else node.scored_memory
    allocatable = node.allocatable_cpu if resource == "cpu" else node.allocatable_memory
    if extra is not None:
        scored += extra.score_cpu if resource == "cpu" else extra.score_memory
    return 100.0 * scored / allocatable


def _low_node_utilization(plan: _Round, candidates: list[_Candidate], usable: list[NodeInfo],
                          threshold: int) -> None:
    measured = [n for n in usable if n.allocatable_cpu > 0 and n.allocatable_memory > 0]
    if len(measured) < 2 or plan.full:
        return
    average = {r: sum(_percent(n, r) for n in measured) / len(measured) for r in RESOURCES}

    def excess(node: NodeInfo) -> float:
        return max(_percent(node, r) - average[r] for r in RESOURCES)

    def over(node: NodeInfo) -> bool:
        return excess(node) > threshold

    under = [n for n in measured if all(_percent(n, r) <= average[r] for r in RESOURCES)
             and any(_percent(n, r) < average[r] - threshold for r in RESOURCES)]
    sources = sorted((n for n in measured if over(n)), key=lambda n: (-excess(n), n.name))
    if not under or not sources:
        return
    for source in sources:
        for candidate in (c for c in candidates if c.node == source.name):
            if plan.full or not over(source):
                break
            if candidate.info.key in plan.moved:
                continue
            targets = [n for n in feasible(candidate.info, under)
                       if all(_percent(n, r, candidate.info) <= average[r] for r in RESOURCES)]
            if not targets:
                continue
            target = min(targets, key=lambda n: (sum(_percent(n, r) for r in RESOURCES), n.name))
            resource = max(RESOURCES, key=lambda r: _percent(source, r) - average[r])
            reason = (f"{resource} requests {_percent(source, resource):.0f}% of allocatable, "
                      f"average {average[resource]:.0f}%")
            plan.take(candidate, source, target, reason)
