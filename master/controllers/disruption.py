"""Leader-only: every PodDisruptionBudget's status counts its pods, as Kubernetes' disruption controller.

Level-triggered: each round reads every budget with the pods its selector matches (label index) and
the scale of their controllers (a pod's ReplicaSet, and that ReplicaSet's Deployment when it has
one, by uid), and writes the status `disruption.budget_status` makes when it differs from the
stored one, at the resourceVersion read: an eviction that charged the budget meanwhile makes the
write fail, and the next round counts again with that eviction in. Woken by changes to pods and
budgets; the period drops evictions whose pod never went (after `DELETION_TIMEOUT`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.objects.isolation import each
from master.store.commands import Command, UpdateStatus
from master.store.replicated import Store
from master.store.state import ClusterState, WatchEvent
from master.workloads.disruption import KIND, Scale, budget_status
from master.workloads.owners import controller_of

log = logging.getLogger(__name__)


def _controlling(state: ClusterState, namespace: str, ref: Obj | None, kind: str) -> Obj | None:
    """The object `ref` names, if it is of `kind` and still the one named (same uid)."""
    if ref is None or ref.get("kind") != kind:
        return None
    found = state.get(kind, namespace, str(ref.get("name")))
    return found if found is not None and found["metadata"].get("uid") == ref.get("uid") else None


def scale_of(state: ClusterState, pod: Obj) -> Scale | None:
    """Whose replicas the pod counts towards: its ReplicaSet's Deployment, or its ReplicaSet (None:
    no controller Berth scales, and the pod counts as one)."""
    namespace = pod["metadata"].get("namespace") or ""
    rs = _controlling(state, namespace, controller_of(pod), "ReplicaSet")
    if rs is None:
        return None
    deployment = _controlling(state, namespace, controller_of(rs), "Deployment")
    owner = deployment if deployment is not None else rs
    return Scale(owner["metadata"]["uid"], int(owner["spec"].get("replicas", 1)))


Looked = tuple[Obj, list[Obj], dict[str, Scale | None]]


def read_budgets(state: ClusterState) -> list[Looked]:
    """Each budget with its pods and their controllers' scale, read under the apply lock (index
    lookups and gets: time proportional to the pods)."""
    looked = []
    for pdb in state.list(KIND):
        selector = (pdb.get("spec") or {}).get("selector") or {}
        labels = selector.get("matchLabels") or {}
        pods = state.select("Pod", pdb["metadata"]["namespace"], labels=labels) if labels else []
        looked.append((pdb, pods, {p["metadata"].get("uid") or "": scale_of(state, p) for p in pods}))
    return looked


class DisruptionController(LeaderLoop):
    name = "disruption"

    def __init__(self, store: Store, now: Callable[[], str], period: float = 1.0) -> None:
        super().__init__(store, period)
        self.now = now
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind in ("Pod", KIND, "ReplicaSet", "Deployment") for e in events):
            self.wake()

    def reconcile(self) -> None:
        looked, _ = self.store.read(read_budgets)
        if not looked:
            return
        clock, stamp = time.time(), self.now()

        def write(item: Looked) -> Command | None:
            pdb, pods, scales = item
            status = budget_status(pdb, pods, scales, clock, stamp)
            if status == (pdb.get("status") or {}):
                return None
            meta = pdb["metadata"]
            return UpdateStatus(KIND, meta["namespace"], meta["name"], status, meta["resourceVersion"])

        commands = [c for c in each(looked, write, lambda item, err: self.quarantine(item[0], err))
                    if c is not None]
        if not commands:
            return
        refused = [a for a in self.store.propose_all(commands) if isinstance(a, ApiError)]
        for error in refused:  # an eviction charged it meanwhile: the next round counts again
            log.debug("disruption budget status refused: %s", error.message)
