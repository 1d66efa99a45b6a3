"""Leader-only: pods without a node go through the scheduler; bindings are committed in batches.

Each round takes one snapshot of the store, places every pending pod (oldest first)
with the pure scheduler, and submits all of the round's writes at once: a Bind per
placed pod (which fails if another leader bound it first), and for a pod that fits
nowhere its PodScheduled=False condition and a FailedScheduling event, written only
when the reason changed. A round that changes nothing is not repeated until the
store changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.conditions import condition, with_condition
from master.objects.isolation import Broken, each, reraise
from master.scheduler import Scheduler, SchedulerConfig, build_snapshot, pod_info
from master.scheduler.snapshot import PodInfo, PodInfos, is_finished
from master.storage.volumes import SELECTED_NODE, StorageState, annotation
from master.store.commands import Batch, Bind, Command, Op, Replace, UpdateStatus
from master.store.replicated import Store
from master.store.state import WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "scheduler"
# what a pending pod's placement depends on: claims bound, volumes made, classes added are news too
WAKING = frozenset({"Pod", "Node", "PersistentVolumeClaim", "PersistentVolume", "StorageClass"})


def scheduled_condition(fits: bool, message: str, now: str) -> Obj:
    return {"type": "PodScheduled", "status": "True" if fits else "False",
            "reason": "Scheduled" if fits else "Unschedulable", "message": message,
            "lastTransitionTime": now}


def bind_command(info: PodInfo, node: str, status: Obj) -> Command:
    """The pod's Bind; for a pod with claims, in one Batch with each claim at the resourceVersion the
    round read (a claim deleted or changed since is a conflict: the pod is placed again next round), a
    claim that waited for its first consumer annotated with the node chosen
    (volume.kubernetes.io/selected-node), for the volumes controller to bind or provision it there."""
    bind = Bind(info.namespace, info.name, info.uid, node, status)
    if info.volumes is None or not info.volumes.claims:
        return bind
    ops: list[Op] = []
    for need in info.volumes.claims:
        claim = need.claim
        if need.waiting and annotation(claim, SELECTED_NODE) != node:
            meta = claim["metadata"]
            claim = {**claim, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                   SELECTED_NODE: node}}}
        ops.append(Replace(claim, need.claim["metadata"]["resourceVersion"]))  # unchanged: a check alone
    return Batch((*ops, bind))


def pending_pods(pods: list[Obj], broken: Broken = reraise) -> list[Obj]:
    """Pods the scheduler must place, oldest first (creation time, then revision)."""
    def waiting(pod: Obj) -> tuple[tuple[str, int], Obj] | None:
        if pod["spec"].get("nodeName") or is_finished(pod) or pod["metadata"].get("deletionTimestamp"):
            return None
        return (str(pod["metadata"].get("creationTimestamp") or ""),
                int(pod["metadata"].get("resourceVersion") or 0)), pod

    return [pod for _, pod in sorted((w for w in each(pods, waiting, broken) if w is not None),
                                     key=lambda w: w[0])]


class SchedulingController(LeaderLoop):
    name = "scheduler"

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 config: SchedulerConfig | None = None, period: float = 1.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self.scheduler = Scheduler(config)
        self.infos = PodInfos()  # bound pods as the scheduler reads them, kept between rounds
        self._idle_at: int | None = None  # revision of the last round that had nothing to write
        self._left = 0  # pods the last round read pending and did not bind (queue_depth)
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind in WAKING for e in events):
            self.wake()

    def started_leading(self) -> None:
        self._idle_at = None
        self._left = 0

    def queue_depth(self) -> int:
        return self._left if self.leading else 0

    def _event(self, pod: Obj, reason: str) -> Obj | None:
        """The pod's stored event for `reason`, if any (read only when one is to be recorded)."""
        return self.store.get("Event", pod["metadata"]["namespace"], event_name(pod, reason))

    def reconcile(self) -> None:
        (nodes, pods, claims, volumes, classes), revision = self.store.read(lambda s: (
            s.list("Node"), s.list("Pod"), s.list("PersistentVolumeClaim"), s.list("PersistentVolume"),
            s.list("StorageClass")))
        pending = pending_pods(pods, self.quarantine)
        if not pending:
            self._left = 0
        if not pending or revision == self._idle_at:
            return
        started = time.monotonic()
        try:
            self._place(pending, nodes, pods, claims, volumes, classes, revision)
        except Exception:
            self.observed.scheduled("error", len(pending))
            raise
        finally:
            self.observed.scheduling_round(time.monotonic() - started)

    def _place(self, pending: list[Obj], nodes: list[Obj], pods: list[Obj], claims: list[Obj],
               volumes: list[Obj], classes: list[Obj], revision: int) -> None:
        """One attempt at every pending pod, counted per pod by its result, as kube-scheduler counts."""
        storage = StorageState.of(claims, volumes, classes)
        snapshot = build_snapshot(nodes, pods, self.quarantine, storage, self.infos)
        to_place = each(pending, lambda p: pod_info(p, storage), self.quarantine)
        result = self.scheduler.schedule(snapshot, to_place)
        by_key = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pending}
        now = self.now()
        commands: list[Command] = []
        binds: list[int] = []  # where each pod's binding is among the commands
        for info, node in result.bindings:
            pod = by_key[info.key]
            status = with_condition({**(pod.get("status") or {}), "phase": "Pending"},
                                    scheduled_condition(True, f"assigned to {node}", now))
            binds.append(len(commands))
            commands.append(bind_command(info, node, status))
            commands.append(record_event(self._event(pod, "Scheduled"), pod, "Scheduled",
                                         f"Successfully assigned {info.namespace}/{info.name} to {node}",
                                         warning=False, component=COMPONENT, uid=self.uid(), now=now))
        for info, why in result.unschedulable:
            pod = by_key[info.key]
            current = condition(pod, "PodScheduled")
            if current is not None and current.get("message") == why:
                continue  # already said; nothing changed for this pod
            status = with_condition({**(pod.get("status") or {}), "phase": "Pending"},
                                    scheduled_condition(False, why, now))
            commands.append(UpdateStatus("Pod", info.namespace, info.name, status, info.resource_version))
            commands.append(record_event(self._event(pod, "FailedScheduling"), pod,
                                         "FailedScheduling", why, warning=True, component=COMPONENT,
                                         uid=self.uid(), now=now))
        self._left = len(pending) - len(result.bindings)
        answers = self.store.propose_all(commands) if commands else []
        # counted once the write went through: a failed one counts every pending pod as an error (reconcile)
        self.observed.scheduled("unschedulable", len(result.unschedulable))
        if not commands:
            self._idle_at = revision
            return
        failed = [a for a in answers if isinstance(a, ApiError)]
        for error in failed:  # a pod changed or went meanwhile: the next round sees it
            log.debug("scheduling write refused: %s", error.message)
        unbound = sum(isinstance(answers[i], ApiError) for i in binds)
        self.observed.scheduled("scheduled", len(binds) - unbound)
        self.observed.scheduled("error", unbound)
        self._left += unbound
        log.info("scheduled %d pod(s), %d unschedulable, %d write(s) refused", len(result.bindings),
                 len(result.unschedulable), len(failed))
