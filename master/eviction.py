"""Voluntary disruptions: the one eviction every caller goes through, and the rebalancer's round.

The eviction API (`POST .../pods/NAME/eviction`, which `berth drain` uses) and the rebalancer
(master/controllers/rebalancer.py, and `POST /api/v1/rebalance`) evict here, so a disruption budget
means the same to all of them. An eviction reads the pod and the budgets of its namespace, lets
`disruption.eviction_verdict` decide, and writes the pod's deletion and the budget's charge as one
`Batch`, the budget at the resourceVersion read: a budget changed meanwhile (another eviction, the
disruption controller's count) fails the whole write, and the eviction reads and decides again, a
few times, then answers 429 as a budget that allows nothing would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from berth.objects import Obj
from master.errors import ApiError, not_found
from master.events import event_name, record_event
from master.objects.isolation import Broken, reraise
from master.scheduler.rebalance import Move, Plan, RebalanceConfig, plan_rebalance
from master.store.commands import Batch, Command, Op, UpdateStatus, deletion
from master.store.replicated import Store
from master.store.state import ClusterState, Outcome
from master.workloads.disruption import KIND, AlreadyGoing, Refuse, eviction_verdict, too_many_requests

log = logging.getLogger(__name__)
ATTEMPTS = 5  # reads and decisions again after a budget changed under the write
COMPONENT = "rebalancer"


@dataclass(frozen=True)
class Evicted:
    pod: Obj  # as stored once the eviction was written (or as it was, already terminating)
    budget: str | None = None  # the budget that paid for it


def evict(store: Store, namespace: str, name: str, now: Callable[[], str], grace: int | None = None,
          propose: Callable[[Command], Outcome] | None = None) -> Evicted:
    """Evict the pod, or raise why not (404, 422, 429). `grace`: the deletion's grace period (None:
    the pod's own); `propose`: how the write is made (the API's passes `?dryRun=All` through)."""
    write = propose or store.propose

    def read(state: ClusterState) -> tuple[Obj | None, list[Obj]]:
        return state.get("Pod", namespace, name), state.select(KIND, namespace)

    for _ in range(ATTEMPTS):
        (pod, budgets), _ = store.read(read)
        if pod is None:
            raise not_found("Pod", namespace, name)
        stamp = now()
        verdict = eviction_verdict(pod, budgets, stamp)
        if isinstance(verdict, AlreadyGoing):
            return Evicted(pod)
        if isinstance(verdict, Refuse):
            raise verdict.error
        ops: list[Op] = []
        budget = None
        if verdict.budget is not None and verdict.status is not None:
            meta = verdict.budget["metadata"]
            budget = meta["name"]
            ops.append(UpdateStatus(KIND, namespace, budget, verdict.status, meta["resourceVersion"]))
        pinned = pod["metadata"]["resourceVersion"] if verdict.pinned else None
        ops.append(deletion(pod, stamp, grace, pinned))
        try:
            outcome = write(Batch(tuple(ops)))
        except ApiError as err:
            if err.status != 409:
                raise
            store.barrier()  # a follower's copy may lag the write that changed it: catch up, then read
            continue
        return Evicted(outcome.objects[-1], budget)
    raise too_many_requests(f"The disruption budget over pod {name} kept changing: {ATTEMPTS} writes in a "
                            "row found it changed; try again")


# --- the rebalancer's round ----------------------------------------------------------------------

def current_plan(store: Store, config: RebalanceConfig, stamp: str, broken: Broken = reraise) -> Plan:
    """What the rebalancer would move now, from this master's state (the API's dry run, a round)."""
    (nodes, pods, budgets), _ = store.read(lambda s: (s.list("Node"), s.list("Pod"), s.list(KIND)))
    return plan_rebalance(nodes, pods, budgets, config, stamp, broken)


@dataclass(frozen=True)
class MoveResult:
    move: Move
    error: ApiError | None = None  # why it was not evicted after all


def carry_out(store: Store, plan: Plan, now: Callable[[], str], uid: Callable[[], str]) -> list[MoveResult]:
    """Evict each pod of the plan through `evict` (its budget is checked again as it is written),
    and tell each one's eviction as a Rebalanced event on the pod."""
    results = []
    events: list[Command] = []
    for move in plan.moves:
        try:
            evicted = evict(store, move.namespace, move.pod, now)
        except ApiError as err:
            results.append(MoveResult(move, err))
            continue
        results.append(MoveResult(move))
        pod = evicted.pod
        existing = store.get("Event", move.namespace, event_name(pod, "Rebalanced"))
        events.append(record_event(existing, pod, "Rebalanced", f"Evicted from node {move.node} by the "
                                   f"rebalancer: {move.reason}", warning=False, component=COMPONENT,
                                   uid=uid(), now=now()))
    if events:
        refused = [a for a in store.propose_all(events) if isinstance(a, ApiError)]
        if refused:
            log.debug("rebalancer: %d event(s) not recorded: %s", len(refused), refused[0].message)
    return results
