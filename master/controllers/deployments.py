"""Leader-only: Deployments roll their ReplicaSets, as Kubernetes' deployment controller.

Each round reads every Deployment with the ReplicaSets of its namespace (claiming those its
selector matches: orphans adopted, those that stopped matching released) and the count of pods
its old ReplicaSets still have, and writes what the pure `plan_deployment` decided: a new
ReplicaSet, new sizes, deletions beyond the revision history, the Deployment's revision
annotation and its status, with ScalingReplicaSet events. A ReplicaSet's name is fixed by its
template's hash, so no round, a new leader's included, can make a second one for a template.
The ReplicaSets' own controller makes and deletes the pods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.isolation import each
from master.store.commands import Batch, Command, Create, Delete, Replace, UpdateStatus
from master.store.replicated import Store
from master.store.state import ClusterState, WatchEvent
from master.workloads.names import child_name, template_hash
from master.workloads.owners import claim
from master.workloads.replicas import is_active
from master.workloads.rollout import (
    REVISION,
    CreateReplicaSet,
    DeleteReplicaSet,
    DeploymentPlan,
    SetRevision,
    UpdateReplicaSet,
    World,
    find_new,
    pending_object,
    plan_deployment,
)

log = logging.getLogger(__name__)
COMPONENT = "deployment-controller"
KIND = "Deployment"


@dataclass(frozen=True)
class Seen:
    """One Deployment as read: its ReplicaSets' claim, the names taken, its old ReplicaSets' pods."""

    deployment: Obj
    owned: list[Obj]
    adopt: list[Obj]
    release: list[Obj]
    taken: dict[str, Obj]
    old_pods: int


@dataclass(frozen=True)
class Read:
    """What one Deployment needs from the store, found through its indexes under the apply lock
    (time proportional to its own ReplicaSets and pods); claiming and counting happen after."""

    deployment: Obj
    replicasets: list[Obj]  # those its selector matches and those it controls
    pods: dict[str, list[Obj]]  # ReplicaSet uid -> its pods
    next_name: tuple[str, Obj | None]  # the name its next ReplicaSet would take, and who has it


def _read(state: ClusterState, deployment: Obj) -> Read:
    meta, spec = deployment["metadata"], deployment["spec"]
    namespace = meta["namespace"]
    found = {rs["metadata"]["name"]: rs for rs in (
        *state.select("ReplicaSet", namespace, labels=spec["selector"].get("matchLabels") or {}),
        *state.select("ReplicaSet", namespace, owner=meta["uid"]))}
    pods = {rs["metadata"]["uid"]: state.select("Pod", namespace, owner=rs["metadata"]["uid"])
            for rs in found.values()}
    collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
    name = child_name(meta["name"], template_hash(spec["template"], collisions))
    return Read(deployment, list(found.values()), pods, (name, state.get("ReplicaSet", namespace, name)))


def _seen(read: Read) -> Seen:
    deployment = read.deployment
    claimed = claim(deployment, read.replicasets, deployment["spec"]["selector"])
    new = find_new(deployment, claimed.owned)
    old = [pod for rs in claimed.owned if rs is not new for pod in read.pods.get(rs["metadata"]["uid"], [])]
    old_pods = sum(1 for pod in old if is_active(pod) or pod["metadata"].get("deletionTimestamp"))
    name, holder = read.next_name
    taken = {name: holder} if holder is not None else {}
    return Seen(deployment, claimed.owned, claimed.adopt, claimed.release, taken, old_pods)


class DeploymentController(LeaderLoop):
    name = "deployment"
    fenced = True

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 period: float = 1.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind in (KIND, "ReplicaSet") for e in events):
            self.wake()

    def reconcile(self) -> None:
        reads, _ = self.store.read(lambda s: [_read(s, d) for d in s.list(KIND)])
        if not reads:
            return
        listed = each(reads, _seen, lambda read, err: self.quarantine(read.deployment, err))
        clock, stamp = time.time(), self.now()
        commands: list[Command] = []

        def look(seen: Seen) -> None:
            world = World(seen.owned, seen.taken, seen.old_pods, clock, stamp)
            commands.extend(self._writes(seen, plan_deployment(seen.deployment, world), stamp))

        each(listed, look, lambda seen, err: self.quarantine(seen.deployment, err))
        if not commands:
            return
        answers = self.store.propose_all(commands)
        failed = [a for a in answers if isinstance(a, ApiError)]
        log.info("deployments: %d write(s), %d refused%s", len(commands), len(failed),
                 f" (first: {failed[0].message})" if failed else "")

    def _writes(self, seen: Seen, plan: DeploymentPlan, now: str) -> list[Command]:
        deployment = seen.deployment
        meta = deployment["metadata"]
        commands: list[Command] = [Replace(rs, rs["metadata"]["resourceVersion"])
                                   for rs in (*seen.adopt, *seen.release)]
        own: list[Command] = []  # the Deployment's own writes: one Batch, all or none
        for action in plan.actions:
            match action:
                case CreateReplicaSet(replicaset=rs):
                    commands.append(Create(rs, self.uid(), now))
                case UpdateReplicaSet():
                    rs = action.replicaset
                    commands.append(Replace(pending_object(action), rs["metadata"]["resourceVersion"]))
                case DeleteReplicaSet(replicaset=rs):
                    commands.append(Delete("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"],
                                           rs["metadata"]["resourceVersion"]))
                case SetRevision(revision=revision):
                    annotations = {**(meta.get("annotations") or {}), REVISION: str(revision)}
                    own.append(Replace({**deployment, "metadata": {**meta, "annotations": annotations}},
                                       meta["resourceVersion"]))
        if plan.status != (deployment.get("status") or {}):
            own.append(UpdateStatus(KIND, meta["namespace"], meta["name"], plan.status,
                                    None if own else meta["resourceVersion"]))
        if own:
            commands.append(Batch(tuple(own)))
        for reason, message in plan.events:
            existing = self.store.get("Event", meta["namespace"], event_name(deployment, reason, message))
            commands.append(record_event(existing, deployment, reason, message, warning=False,
                                         component=COMPONENT, uid=self.uid(), now=now, distinct=message))
        return commands
