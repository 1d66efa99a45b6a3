"""Leader-only: every ReplicaSet keeps `spec.replicas` pods, as Kubernetes' ReplicaSet controller.

Level-triggered: each round reads every ReplicaSet with the pods its selector finds or it owns
(from the store's label and owner indexes), decides with the pure `plan_replicaset`, and submits
the whole round's writes at once (`propose_all`): group commit carries a hundred new pods in a
handful of Raft entries. Pod names are `<replicaset>-<5 random>`; a name that happens to be
taken fails alone and the next round makes another. Woken by changes to pods and ReplicaSets;
the period catches pods that became available after minReadySeconds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.isolation import each
from master.objects.tolerations import with_default_tolerations
from master.store.commands import Command, Create, Replace, UpdateStatus, deletion
from master.store.replicated import Store
from master.store.state import ClusterState, WatchEvent
from master.workloads.names import random_suffix
from master.workloads.replicas import BURST, ReplicaSetPlan, plan_replicaset, pod_from_template

log = logging.getLogger(__name__)
COMPONENT = "replicaset-controller"
KIND = "ReplicaSet"


def candidates(state: ClusterState, rs: Obj) -> list[Obj]:
    """The pods a ReplicaSet may claim: those its selector matches and those it controls (indexed)."""
    meta = rs["metadata"]
    matching = state.select("Pod", meta["namespace"], labels=rs["spec"]["selector"].get("matchLabels") or {})
    owned = state.select("Pod", meta["namespace"], owner=meta["uid"])
    return list({p["metadata"]["name"]: p for p in (*matching, *owned)}.values())


def admitted(pod: Obj, eviction_seconds: int) -> Obj:
    return {**pod, "spec": with_default_tolerations(pod["spec"], eviction_seconds)}


def _names(pods: list[Obj], limit: int = 5) -> str:
    shown = ", ".join(p["metadata"]["name"] for p in pods[:limit])
    return shown + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


class ReplicaSetController(LeaderLoop):
    name = "replicaset"
    fenced = True

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 period: float = 1.0, rng: random.Random | None = None,
                 default_eviction_seconds: int = 5) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self.default_eviction_seconds = default_eviction_seconds  # the API's admission, for its pods
        self.rng = rng or random.SystemRandom()
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind in ("Pod", KIND) for e in events):
            self.wake()

    def reconcile(self) -> None:
        def read(state: ClusterState) -> list[tuple[Obj, list[Obj]]]:
            return [(rs, candidates(state, rs)) for rs in state.list(KIND)]

        listed, _ = self.store.read(read)
        if not listed:
            return
        clock = time.time()
        commands: list[Command] = []

        budget = [BURST]  # pods one round creates or deletes across all ReplicaSets: the next round goes on

        def look(item: tuple[Obj, list[Obj]]) -> None:
            rs, pods = item
            plan = plan_replicaset(rs, pods, clock, burst=budget[0])
            budget[0] -= plan.create + len(plan.delete)
            commands.extend(self._writes(rs, plan))

        each(listed, look, lambda item, err: self.quarantine(item[0], err))
        if not commands:
            return
        answers = self.store.propose_all(commands)
        failed = [a for a in answers if isinstance(a, ApiError)]
        created = sum(1 for c, a in zip(commands, answers, strict=True)
                      if isinstance(c, Create) and c.obj["kind"] == "Pod" and not isinstance(a, ApiError))
        log.info("replicasets: %d write(s), %d pod(s) created, %d refused%s", len(commands), created,
                 len(failed), f" (first: {failed[0].message})" if failed else "")

    def _writes(self, rs: Obj, plan: ReplicaSetPlan) -> list[Command]:
        meta, now = rs["metadata"], self.now()
        commands: list[Command] = [Replace(p, p["metadata"]["resourceVersion"])
                                   for p in (*plan.claim.adopt, *plan.claim.release)]
        made = [admitted(pod_from_template(rs, random_suffix(self.rng)), self.default_eviction_seconds)
                for _ in range(plan.create)]
        commands += [Create(pod, self.uid(), now) for pod in made]
        commands += [deletion(pod, now) for pod in plan.delete]
        if made:
            commands.append(self._event(rs, "SuccessfulCreate", f"Created pod: {_names(made)}", now))
        if plan.delete:
            commands.append(self._event(rs, "SuccessfulDelete", f"Deleted pod: {_names(plan.delete)}", now))
        if plan.status != (rs.get("status") or {}):
            commands.append(UpdateStatus(KIND, meta["namespace"], meta["name"], plan.status,
                                         meta["resourceVersion"]))
        return commands

    def _event(self, rs: Obj, reason: str, message: str, now: str) -> Command:
        existing = self.store.get("Event", rs["metadata"]["namespace"], event_name(rs, reason))
        return record_event(existing, rs, reason, message, warning=False, component=COMPONENT,
                            uid=self.uid(), now=now)

