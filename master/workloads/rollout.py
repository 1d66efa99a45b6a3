"""A Deployment's decision for one round: Kubernetes' deployment controller, pure.

A Deployment owns one ReplicaSet per template revision. The one whose template (less its
`pod-template-hash` label) equals the Deployment's is the new one; the others are old. A round
takes the first step that applies, and the next round (after the ReplicaSets' controller acted)
takes the next, so every step is decided on what is stored, never on what a step expects:

1. Paused: no new ReplicaSet, only scaling (below) and status.
2. A scaling event (`spec.replicas` differs from what the active ReplicaSets were sized for, the
   `desired-replicas` annotation): the change is spread over them in proportion (`proportional`).
3. Recreate: old ReplicaSets to 0; once none of their pods is left, the new one at full size.
4. RollingUpdate: the new ReplicaSet grows while all ReplicaSets' replicas stay within
   `replicas + maxSurge` (`new_replicas`); old ones shrink while the available pods stay at least
   `replicas - maxUnavailable`, unhealthy pods first (`old_scale_down`).
5. Complete: old ReplicaSets beyond `revisionHistoryLimit` are deleted, oldest revision first.

The status follows: counts from the ReplicaSets' statuses, the `Available` condition, and
`Progressing`, whose `lastUpdateTime` moves with every sign of progress and which turns False
with reason ProgressDeadlineExceeded when none came for `progressDeadlineSeconds`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from berth.objects import Obj
from master.objects.conditions import condition
from master.workloads.names import HASH_LABEL, child_name, template_hash, without_hash
from master.workloads.owners import reference_to
from master.workloads.replicas import moment

REVISION = "deployment.berth.io/revision"
DESIRED = "deployment.berth.io/desired-replicas"
MAX_REPLICAS = "deployment.berth.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
COPIED = (CHANGE_CAUSE,)  # a Deployment's annotations its ReplicaSets carry (history shows them)


# --- the maths -----------------------------------------------------------------------------

def scaled(value: int | str, total: int, round_up: bool) -> int:
    """An integer, or a percentage of `total` rounded as Kubernetes rounds it (surge up, unavailable down)."""
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * total / 100
    return math.ceil(share) if round_up else math.floor(share)


def fenceposts(max_surge: int | str, max_unavailable: int | str, desired: int) -> tuple[int, int]:
    """(surge, unavailable); both 0 would never move, so unavailable becomes 1, as in Kubernetes."""
    surge = scaled(max_surge, desired, round_up=True)
    unavailable = scaled(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass(frozen=True)
class Sized:
    """What the maths needs of a ReplicaSet: its name, spec and status counts, age and revision."""

    name: str
    replicas: int
    available: int = 0
    created: float = 0.0
    revision: int = 0


def new_replicas(desired: int, surge: int, all_replicas: int, new: int) -> int:
    """The new ReplicaSet's next size: grown while every ReplicaSet's replicas fit in desired + surge."""
    room = desired + surge - all_replicas
    if room <= 0:
        return new
    return new + max(0, min(room, desired - new))


def old_scale_down(old: list[Sized], new: Sized | None, desired: int, unavailable: int) -> dict[str, int]:
    """Old ReplicaSets' next sizes (only those that change). Kubernetes' reconcileOldReplicaSets:
    at most all replicas - (desired - unavailable) - the new ReplicaSet's unavailable ones go,
    its unhealthy pods first (not available: nothing is lost), then available pods while the
    available ones, all ReplicaSets counted, stay at least desired - unavailable. Both steps are
    bounded by the first figure, so a status that lags its spec never takes more."""
    total_old = sum(rs.replicas for rs in old)
    if total_old == 0:
        return {}
    new_replicas_, new_available = (new.replicas, new.available) if new else (0, 0)
    min_available = desired - unavailable
    room = total_old + new_replicas_ - min_available - (new_replicas_ - new_available)
    if room <= 0:
        return {}
    sizes = {rs.name: rs.replicas for rs in old}
    oldest_first = sorted(old, key=lambda rs: (rs.created, rs.name))
    taken = 0
    for rs in oldest_first:
        unhealthy = sizes[rs.name] - rs.available
        if taken >= room:
            break
        if unhealthy > 0:
            step = min(room - taken, unhealthy)
            sizes[rs.name] -= step
            taken += step
    spare = sum(rs.available for rs in old) + new_available - min_available
    for rs in oldest_first:
        if taken >= room or spare <= 0:
            break
        step = min(sizes[rs.name], spare, room - taken)
        sizes[rs.name] -= step
        spare -= step
        taken += step
    return {rs.name: sizes[rs.name] for rs in old if sizes[rs.name] != rs.replicas}


def proportional(active: list[Sized], newest: str | None, desired: int, surge: int) -> dict[str, int]:
    """A Deployment scaled mid-rollout: the difference between what all ReplicaSets may hold
    (desired + surge) and what they hold goes to them in proportion to their sizes, rounding
    leftovers to the newest when growing and the largest old one when shrinking, never below 0."""
    total = sum(rs.replicas for rs in active)
    change = (desired + surge if desired > 0 else 0) - total
    if not active or change == 0 or total == 0:
        return {}
    grow = change > 0
    order = sorted(active, key=lambda rs: (-rs.replicas, -rs.created if grow else rs.created, rs.name))
    sizes = {rs.name: rs.replicas for rs in active}
    given = 0
    for rs in order:
        share = (rs.replicas * change) / total
        step = math.floor(share) if grow else -math.floor(-share)
        if abs(given + step) > abs(change):
            step = change - given
        step = max(step, -sizes[rs.name])
        sizes[rs.name] += step
        given += step
    leftover = change - given
    if leftover:
        target = newest if grow and newest in sizes else order[0].name
        for name in [target, *(rs.name for rs in order)]:
            step = max(leftover, -sizes[name])
            sizes[name] += step
            leftover -= step
            if not leftover:
                break
    return {rs.name: sizes[rs.name] for rs in active if sizes[rs.name] != rs.replicas}


# --- the ReplicaSets of a Deployment --------------------------------------------------------

def revision_of(obj: Obj) -> int:
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "")
    return int(value) if value.isdigit() else 0


def sized(rs: Obj) -> Sized:
    return Sized(rs["metadata"]["name"], int(rs["spec"].get("replicas", 0)),
                 int((rs.get("status") or {}).get("availableReplicas") or 0),
                 moment(rs["metadata"].get("creationTimestamp")) or 0.0, revision_of(rs))


def find_new(deployment: Obj, owned: list[Obj]) -> Obj | None:
    """The ReplicaSet made from the Deployment's template; the oldest if (by hand) there are two."""
    template = deployment["spec"]["template"]
    same = [rs for rs in owned if without_hash(rs["spec"]["template"]) == without_hash(template)]
    return min(same, key=lambda rs: (sized(rs).created, rs["metadata"]["name"])) if same else None


def _int(annotations: dict[str, str], key: str) -> int | None:
    value = annotations.get(key, "")
    return int(value) if value.isdigit() else None


def new_replicaset(deployment: Obj, replicas: int, revision: int, surge: int, collisions: int) -> Obj:
    meta, spec = deployment["metadata"], deployment["spec"]
    template = copy.deepcopy(spec["template"])
    digest = template_hash(spec["template"], collisions)
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: digest}
    template.setdefault("metadata", {})["labels"] = labels
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in COPIED}
    annotations.update({REVISION: str(revision), DESIRED: str(spec["replicas"]),
                        MAX_REPLICAS: str(spec["replicas"] + surge)})
    return {"apiVersion": "berth/v1", "kind": "ReplicaSet",
            "metadata": {"name": child_name(meta["name"], digest), "namespace": meta["namespace"],
                         "labels": labels, "annotations": annotations,
                         "ownerReferences": [reference_to(deployment)]},
            "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0),
                     "selector": {"matchLabels": {**spec["selector"]["matchLabels"], HASH_LABEL: digest}},
                     "template": template}}


# --- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreateReplicaSet:
    replicaset: Obj


@dataclass(frozen=True)
class UpdateReplicaSet:
    """A new size and/or annotations (revision, desired and max replicas) and minReadySeconds."""

    replicaset: Obj
    replicas: int
    annotations: dict[str, str]
    min_ready_seconds: int


@dataclass(frozen=True)
class DeleteReplicaSet:
    replicaset: Obj


@dataclass(frozen=True)
class SetRevision:
    """The Deployment's own revision annotation follows its new ReplicaSet's."""

    revision: int


Action = CreateReplicaSet | UpdateReplicaSet | DeleteReplicaSet | SetRevision


@dataclass(frozen=True)
class DeploymentPlan:
    actions: list[Action] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (reason, message), Normal
    status: Obj = field(default_factory=dict)


@dataclass(frozen=True)
class World:
    """What the controller read for one Deployment: the ReplicaSets it controls, the names taken
    in its namespace (a clash bumps collisionCount), the pods its old ReplicaSets still have
    (Recreate waits for none), and the time."""

    owned: list[Obj]
    taken: dict[str, Obj]
    old_pods: int
    now: float
    stamp: str


class _Planner:
    def __init__(self, deployment: Obj, world: World) -> None:
        self.d, self.w = deployment, world
        spec = deployment["spec"]
        self.desired = int(spec["replicas"])
        self.paused = bool(spec.get("paused"))
        strategy = spec.get("strategy") or {}
        self.recreate = strategy.get("type") == "Recreate"
        rolling = strategy.get("rollingUpdate") or {}
        self.surge, self.unavailable = (0, 0) if self.recreate else fenceposts(
            rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"), self.desired)
        self.new = find_new(deployment, world.owned)
        self.old = [rs for rs in world.owned if rs is not self.new]
        self.sizes = {rs["metadata"]["name"]: int(rs["spec"].get("replicas", 0)) for rs in world.owned}
        self.collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
        self.created: Obj | None = None
        self.updates: dict[str, UpdateReplicaSet] = {}
        self.deletes: list[Obj] = []
        self.events: list[tuple[str, str]] = []

    def run(self) -> DeploymentPlan:
        """The first step that applies: a new ReplicaSet, or sizes for a changed spec.replicas, or
        the strategy's next step; a paused Deployment only scales (and cleans up, as Kubernetes')."""
        if not self.paused and self.new is None:
            self._make_new()
        else:
            self._new_details()
            if self.paused:
                self._scale_paused() or self._cleanup()
            elif not self._scaling_event():
                self._recreate() if self.recreate else self._rolling()
        return self._finish()

    def _max_old_revision(self) -> int:
        return max((revision_of(rs) for rs in self.old), default=0)

    def _make_new(self) -> None:
        """The new ReplicaSet at its first size; a name taken by another object raises collisionCount
        (stored with the status), and the next round tries the next hash."""
        if self.recreate:
            busy = any(self.sizes.values()) or self.w.old_pods
            replicas = 0 if busy else self.desired
        else:
            replicas = new_replicas(self.desired, self.surge, sum(self.sizes.values()), 0)
        made = new_replicaset(self.d, replicas, self._max_old_revision() + 1, self.surge, self.collisions)
        if made["metadata"]["name"] in self.w.taken:
            self.collisions += 1
            return
        self.created = made
        self.events.append(("ScalingReplicaSet",
                            f"Scaled up replica set {made['metadata']['name']} to {replicas}"))

    def _new_details(self) -> None:
        """The new ReplicaSet carries the next revision (an undo brings an old one back to the top)
        and the Deployment's minReadySeconds."""
        if self.new is None:
            return
        revision = max(revision_of(self.new), self._max_old_revision() + 1)
        min_ready = int(self.d["spec"].get("minReadySeconds") or 0)
        if revision != revision_of(self.new) or self.new["spec"].get("minReadySeconds", 0) != min_ready:
            self._update(self.new, self.sizes[self.new["metadata"]["name"]], revision)

    def _update(self, rs: Obj, replicas: int, revision: int | None = None) -> None:
        name = rs["metadata"]["name"]
        pending = self.updates.get(name)
        annotations = dict(pending.annotations if pending else rs["metadata"].get("annotations") or {})
        if revision is not None:
            annotations[REVISION] = str(revision)
        annotations[DESIRED] = str(self.desired)
        annotations[MAX_REPLICAS] = str(self.desired + self.surge)
        min_ready = int((self.d if rs is self.new else rs)["spec"].get("minReadySeconds") or 0)
        self.updates[name] = UpdateReplicaSet(rs, replicas, annotations, min_ready)
        before = self.sizes[name]
        self.sizes[name] = replicas
        if replicas != before:
            way = "up" if replicas > before else "down"
            self.events.append(("ScalingReplicaSet",
                                f"Scaled {way} replica set {name} to {replicas} from {before}"))

    def _new_name(self) -> str | None:
        return self.new["metadata"]["name"] if self.new is not None else None

    def _scaling_event(self) -> bool:
        """Kubernetes' isScalingEvent and scale(): the active ReplicaSets were sized for another
        spec.replicas, so their sizes follow it at once, in proportion mid-rollout."""
        active = [rs for rs in self.w.owned if self.sizes[rs["metadata"]["name"]] > 0]
        if not active or all(_int(rs["metadata"].get("annotations") or {}, DESIRED) == self.desired
                             for rs in active):
            return False
        if len(active) == 1:
            self._update(active[0], self.desired)
        elif self._saturated():
            for rs in self.old:
                self._update(rs, 0)
        else:
            changes = proportional([sized(rs) for rs in active], self._new_name(), self.desired, self.surge)
            for rs in active:
                self._update(rs, changes.get(rs["metadata"]["name"], self.sizes[rs["metadata"]["name"]]))
        return True

    def _scale_paused(self) -> bool:
        """Kubernetes' sync() for a paused Deployment: with no ReplicaSet active, the newest one
        (by revision) takes spec.replicas, so scaling a paused Deployment up from 0 works."""
        if any(self.sizes.values()):
            return self._scaling_event()
        latest = self.new or max(self.old, key=lambda rs: (revision_of(rs), sized(rs).created), default=None)
        if latest is None or self.desired == 0:
            return False
        self._update(latest, self.desired)
        return True

    def _saturated(self) -> bool:
        new = self.new
        return new is not None and self.sizes[new["metadata"]["name"]] == self.desired and \
            int((new.get("status") or {}).get("availableReplicas") or 0) == self.desired

    def _recreate(self) -> None:
        assert self.new is not None  # made by run() unless paused
        running_old = [rs for rs in self.old if self.sizes[rs["metadata"]["name"]] > 0]
        if running_old:
            for rs in running_old:
                self._update(rs, 0)
        elif self.w.old_pods:
            pass  # the new pods start once every old one is gone
        elif self.sizes[self.new["metadata"]["name"]] != self.desired:
            self._update(self.new, self.desired)
        else:
            self._cleanup()

    def _rolling(self) -> None:
        assert self.new is not None  # made by run() unless paused
        name = self.new["metadata"]["name"]
        if self.sizes[name] > self.desired:  # scaled down mid-rollout, or by hand: back to desired
            self._update(self.new, self.desired)
            return
        grown = new_replicas(self.desired, self.surge, sum(self.sizes.values()), self.sizes[name])
        if grown > self.sizes[name]:
            self._update(self.new, grown)
            return
        new = Sized(name, self.sizes[name], sized(self.new).available)
        shrunk = old_scale_down([sized(rs) for rs in self.old], new, self.desired, self.unavailable)
        for rs in self.old:
            if rs["metadata"]["name"] in shrunk:
                self._update(rs, shrunk[rs["metadata"]["name"]])
        if not shrunk:
            self._cleanup()

    def _cleanup(self) -> None:
        """Old ReplicaSets beyond revisionHistoryLimit, oldest revision first, once the rollout is
        complete (as last written) or the Deployment paused, and only those at 0 whose status
        says, for their current generation, that no pod is left (Kubernetes' cleanupDeployment)."""
        if not (self.paused or self._was_complete()):
            return
        limit = int(self.d["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in self.old if self.sizes[rs["metadata"]["name"]] == 0
                and not int((rs.get("status") or {}).get("replicas") or 0)
                and int((rs.get("status") or {}).get("observedGeneration") or 0)
                == int(rs["metadata"].get("generation") or 0)]
        idle.sort(key=lambda rs: (revision_of(rs), sized(rs).created))
        self.deletes = idle[:max(0, len(idle) - limit)]

    # --- the plan and the status -----------------------------------------------------------
    def _finish(self) -> DeploymentPlan:
        actions: list[Action] = []
        if self.created is not None:
            actions.append(CreateReplicaSet(self.created))
        actions += list(self.updates.values())
        actions += [DeleteReplicaSet(rs) for rs in self.deletes]
        revision = self._revision()
        if revision and revision != revision_of(self.d):
            actions.append(SetRevision(revision))
        return DeploymentPlan(actions, self.events, self._status())

    def _revision(self) -> int:
        if self.created is not None:
            return revision_of(self.created)
        if self.new is None:
            return 0
        pending = self.updates.get(self.new["metadata"]["name"])
        return revision_of(pending_object(pending)) if pending else revision_of(self.new)

    def _status(self) -> Obj:
        statuses = [rs.get("status") or {} for rs in self.w.owned]
        new_status = (self.new.get("status") or {}) if self.new is not None else {}
        available = sum(int(s.get("availableReplicas") or 0) for s in statuses)
        previous = self.d.get("status") or {}
        status: Obj = {
            "observedGeneration": int(self.d["metadata"].get("generation") or 0),
            "replicas": sum(int(s.get("replicas") or 0) for s in statuses),
            "updatedReplicas": int(new_status.get("replicas") or 0),
            "readyReplicas": sum(int(s.get("readyReplicas") or 0) for s in statuses),
            "availableReplicas": available,
            "unavailableReplicas": max(0, sum(self.sizes.values()) - available),
        }
        if self.collisions:
            status["collisionCount"] = self.collisions
        status["conditions"] = [self._available(available, previous), self._progressing(status, previous)]
        return status

    def _condition(self, previous: Obj, kind: str, state: str, reason: str, message: str,
                   touched: bool = False) -> Obj:
        """Its transition time stays while its status does; its update time moves when its reason
        changes or `touched` (Progressing: progress was seen)."""
        before = condition({"status": previous}, kind) or {}
        same_status = before.get("status") == state
        stamp = self.w.stamp
        kept = same_status and before.get("reason") == reason and not touched
        return {"type": kind, "status": state, "reason": reason, "message": message,
                "lastUpdateTime": (before.get("lastUpdateTime") if kept else None) or stamp,
                "lastTransitionTime": (before.get("lastTransitionTime") if same_status else None) or stamp}

    def _available(self, available: int, previous: Obj) -> Obj:
        if available >= self.desired - self.unavailable:
            return self._condition(previous, "Available", "True", "MinimumReplicasAvailable",
                                   "Deployment has minimum availability.")
        return self._condition(previous, "Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.")

    def _progressing(self, status: Obj, previous: Obj) -> Obj:
        """Kubernetes' syncRolloutStatus, with its pause and resume reasons."""
        before = condition({"status": previous}, "Progressing")
        reason = (before or {}).get("reason")
        name = self.created["metadata"]["name"] if self.created is not None else self._new_name()
        if self.paused:  # a rollout that already timed out stays so (Kubernetes' checkPausedConditions)
            if before is not None and reason == "ProgressDeadlineExceeded":
                return before
            return self._condition(previous, "Progressing", "Unknown", "DeploymentPaused",
                                   "Deployment is paused")
        if reason == "DeploymentPaused":
            return self._condition(previous, "Progressing", "Unknown", "DeploymentResumed",
                                   "Deployment is resumed", touched=True)
        if self.created is not None:
            return self._condition(previous, "Progressing", "True", "NewReplicaSetCreated",
                                   f'Created new replica set "{name}"', touched=True)
        if before is not None and reason == "NewReplicaSetAvailable" \
                and status["replicas"] == status["updatedReplicas"]:
            return before  # no rollout under way: a scale or a flapping pod is no progress to time
        if self._complete(status):
            return self._condition(previous, "Progressing", "True", "NewReplicaSetAvailable",
                                   f'ReplicaSet "{name}" has successfully progressed.')
        if self._progressed(status, previous) or before is None:
            return self._condition(previous, "Progressing", "True", "ReplicaSetUpdated",
                                   f'ReplicaSet "{name}" is progressing.', touched=True)
        if reason in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
            return before
        since = moment(before.get("lastUpdateTime")) or self.w.now
        if self.w.now > since + int(self.d["spec"].get("progressDeadlineSeconds", 600)):
            return self._condition(previous, "Progressing", "False", "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{name}" has timed out progressing.')
        return before

    def _was_complete(self) -> bool:
        status = self.d.get("status") or {}
        return (int(status.get("observedGeneration") or 0) >= int(self.d["metadata"].get("generation") or 0)
                and all(int(status.get(key) or 0) == self.desired
                        for key in ("updatedReplicas", "replicas", "availableReplicas")))

    def _complete(self, status: Obj) -> bool:
        return (self.new is not None and status["updatedReplicas"] == self.desired
                and status["replicas"] == self.desired and status["availableReplicas"] == self.desired
                and not any(self.sizes[rs["metadata"]["name"]] for rs in self.old))

    def _progressed(self, status: Obj, previous: Obj) -> bool:
        """Kubernetes' DeploymentProgressing: more updated, ready or available pods than the status
        last written, fewer old ones, or a ReplicaSet resized this round."""
        def was(key: str) -> int:
            return int(previous.get(key) or 0)

        resized = any(u.replicas != int(u.replicaset["spec"].get("replicas", 0))
                      for u in self.updates.values())
        return (resized or status["updatedReplicas"] > was("updatedReplicas")
                or status["replicas"] - status["updatedReplicas"] < was("replicas") - was("updatedReplicas")
                or status["readyReplicas"] > was("readyReplicas")
                or status["availableReplicas"] > was("availableReplicas"))


def pending_object(update: UpdateReplicaSet) -> Obj:
    """The ReplicaSet as the update will store it."""
    rs = update.replicaset
    return {**rs, "metadata": {**rs["metadata"], "annotations": update.annotations},
            "spec": {**rs["spec"], "replicas": update.replicas, "minReadySeconds": update.min_ready_seconds}}


def plan_deployment(deployment: Obj, world: World) -> DeploymentPlan:
    return _Planner(deployment, world).run()
