"""Leader-only, off by default (`rebalance: true`): pods of crowded nodes move to idle ones.

Each round plans with the pure `plan_rebalance` (master/scheduler/rebalance.py: the descheduler's
RemoveDuplicates and LowNodeUtilization, at most `max_evictions` a round, budgets charged as it
plans) and evicts through the eviction API's own function (master/eviction.py), which checks each
pod's disruption budget again as it writes. The owners make the pods again and the scheduler places
them. A round runs every `period` seconds, and at once when a node becomes usable (it joined, was
uncordoned, or turned Ready): the moment a new node wants pods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.eviction import carry_out, current_plan
from master.objects.conditions import ready_condition
from master.scheduler.rebalance import RebalanceConfig
from master.store.replicated import Store
from master.store.state import DELETED, WatchEvent

log = logging.getLogger(__name__)


def usable(node: Obj) -> bool:
    return ready_condition(node) is True and not (node.get("spec") or {}).get("unschedulable")


class Rebalancer(LeaderLoop):
    name = "rebalancer"
    fenced = True  # it evicts from what it read: a new leader first applies what the last one committed

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str], config: RebalanceConfig,
                 period: float = 30.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self.config = config
        self._usable: set[str] = set()  # nodes seen usable: one that becomes so wakes a round
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        woken = False
        for event in events:
            if event.kind != "Node":
                continue
            name = event.obj["metadata"]["name"]
            if event.type != DELETED and usable(event.obj):
                woken |= name not in self._usable
                self._usable.add(name)
            else:
                self._usable.discard(name)
        if woken and self.leading:
            self.wake()

    def reconcile(self) -> None:
        plan = current_plan(self.store, self.config, self.now(), self.quarantine)
        if not plan.moves:
            if plan.waiting:
                log.debug("rebalancer: waiting (%s)", plan.waiting)
            return
        results = carry_out(self.store, plan, self.now, self.uid)
        refused = [r for r in results if r.error is not None]
        log.info("rebalancer: %d pod(s) evicted, %d refused%s", len(results) - len(refused), len(refused),
                 f" (first: {refused[0].error.message})" if refused and refused[0].error else "")
