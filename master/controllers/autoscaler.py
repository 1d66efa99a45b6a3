"""Leader-only: each HorizontalPodAutoscaler sets its target's replicas from its pods' metrics, as
Kubernetes' horizontal pod autoscaler controller does.

A round runs every `period` seconds (horizontal_pod_autoscaler_sync_period_seconds, 5: the agents'
usage interval, where Kubernetes' --horizontal-pod-autoscaler-sync-period is 15), and at once when
an autoscaler is made or its spec changes. It reads each autoscaler with its target (a Deployment or
a ReplicaSet) and the pods the target's selector finds, takes the pods' samples from the metrics
book (soft state the agents feed: master/reports/pod_metrics.py), and decides with the pure `decide`
(master/autoscaling/decide.py). A new size is written as the `/scale` subresource writes one: a
Replace of the target's spec.replicas at the resourceVersion read, read again and retried while only
its status moved (the workload controllers write it all the time); then a SuccessfulRescale event,
and the autoscaler's status when it differs. What earlier rounds recommended and scaled
(the stabilization window, the policies' periods) is kept here in memory, as Kubernetes keeps it:
a new leader starts afresh and waits one period before deciding, by which time the agents have
reported to it (the metrics are soft state); its first recommendation is the current size, so
nothing scales down before the window has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from berth.objects import Obj
from master.autoscaling.behavior import History
from master.autoscaling.decide import Decision, Settings, decide, next_status, rescaled
from master.autoscaling.metrics import PodMetrics
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.isolation import describe, each
from master.objects.kinds import SCALABLE, HorizontalPodAutoscalerSpec
from master.store.commands import Command, Replace, UpdateStatus
from master.store.replicated import Store
from master.store.state import DELETED, ClusterState, WatchEvent
from master.workloads.replicas import moment
from master.workloads.scale import scale_of, with_replicas

log = logging.getLogger(__name__)
KIND = "HorizontalPodAutoscaler"
COMPONENT = "horizontal-pod-autoscaler"
SCALE_ATTEMPTS = 3  # writes of a target's replicas a round, while only its status moves under them


@dataclass(frozen=True)
class Read:
    """One autoscaler as read under the store's lock: its target (None: not found) and the target's pods."""

    hpa: Obj
    target: Obj | None
    pods: list[Obj]


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def read_autoscalers(state: ClusterState) -> list[Read]:
    """Gets and index look-ups only, and never raising on a garbage object: the rest is done after."""
    reads = []
    for hpa in state.list(KIND):
        ref = _mapping(_mapping(hpa.get("spec")).get("scaleTargetRef"))
        namespace = hpa["metadata"].get("namespace") or ""
        kind, name = ref.get("kind") or "Deployment", ref.get("name")
        target = state.get(kind, namespace, name) if kind in SCALABLE and isinstance(name, str) else None
        labels = _mapping(_mapping(_mapping(target).get("spec")).get("selector")).get("matchLabels")
        pods = state.select("Pod", namespace, labels=labels) if labels and isinstance(labels, dict) else []
        reads.append(Read(hpa, target, pods))
    return reads


@dataclass(frozen=True)
class Looked:
    read: Read
    spec: Obj  # as the schema gives it: an autoscaling/v1 autoscaler stored before v2 reads as v2
    decision: Decision


class Autoscaler(LeaderLoop):
    name = "horizontal-pod-autoscaler"

    def __init__(self, store: Store, metrics: PodMetrics, now: Callable[[], str], uid: Callable[[], str],
                 settings: Settings, period: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, period)
        self.metrics = metrics
        self.now = now
        self.uid = uid
        self.settings = settings
        self.clock = clock
        self._history: dict[str, History] = {}  # by autoscaler uid: this term's recommendations and scalings
        self._generations: dict[str, int] = {}  # by autoscaler uid: the spec the last round saw
        self._term_began = 0.0
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """A new autoscaler, or a changed spec (not the status this loop writes), is looked at now."""
        if not self.leading:
            return
        for event in events:
            meta = event.obj.get("metadata") or {}
            if event.kind == KIND and event.type != DELETED and \
                    self._generations.get(meta.get("uid")) != meta.get("generation"):
                self.wake()
                return

    def started_leading(self) -> None:
        self._history.clear()
        self._term_began = self.clock()

    def reconcile(self) -> None:
        now = self.clock()
        if now - self._term_began < self.period:
            return  # the agents' metrics reach a new leader within a period: decide on them, not on none
        reads, _ = self.store.read(read_autoscalers)
        self._generations = {r.hpa["metadata"].get("uid"): r.hpa["metadata"].get("generation") for r in reads}
        self._history = {uid: h for uid, h in self._history.items() if uid in self._generations}
        looked = each(reads, lambda read: self._look(read, now),
                      lambda read, err: self.quarantine(read.hpa, err))
        if not looked:
            return
        scaling = [item for item in looked if item.decision.rescale]
        uids = [item.read.hpa["metadata"]["uid"] for item in scaling]
        outcomes = dict(zip(uids, self._write_scales(scaling), strict=True))
        stamp = self.now()
        commands: list[Command] = []
        for item in looked:
            decision, uid = item.decision, item.read.hpa["metadata"]["uid"]
            if uid in outcomes:
                decision = rescaled(decision, item.spec, self.settings, outcomes[uid], now)
                log.info("%s: %s", describe(item.read.hpa), decision.events[-1].message)
            self._history[uid] = decision.history
            commands += self._writes(item.read.hpa, decision, stamp, item.read.target)
        if commands:
            refused = [a for a in self.store.propose_all(commands) if isinstance(a, ApiError)]
            for error in refused:  # the autoscaler changed meanwhile: the next round writes again
                log.debug("autoscaler status or event refused: %s", error.message)

    def _look(self, read: Read, now: float) -> Looked:
        spec = HorizontalPodAutoscalerSpec.model_validate(read.hpa["spec"]).model_dump(mode="json",
                                                                                       exclude_none=True)
        samples = self.metrics.samples([str(p["metadata"].get("uid")) for p in read.pods])
        scale = scale_of(read.target) if read.target is not None else None
        history = self._history.get(read.hpa["metadata"]["uid"], History())
        wall = moment(self.now()) or time.time()
        return Looked(read, spec, decide(spec, scale, read.pods, samples, history, now, self.settings, wall))

    def _write_scales(self, scaling: list[Looked]) -> list[str | None]:
        """Each target's new replicas, as /scale writes them; per target None, or why it failed. A
        conflict is read again: if the replicas decided from are still the target's, written again."""
        errors: list[str | None] = ["its target is gone"] * len(scaling)
        targets = {i: item.read.target for i, item in enumerate(scaling) if item.read.target is not None}
        for _ in range(SCALE_ATTEMPTS):
            order = sorted(targets)
            answers = self.store.propose_all([
                Replace(with_replicas(targets[i], scaling[i].decision.desired),
                        targets[i]["metadata"]["resourceVersion"]) for i in order]) if order else []
            again: dict[int, Obj] = {}
            for index, answer in zip(order, answers, strict=True):
                errors[index] = answer.message if isinstance(answer, ApiError) else None
                if isinstance(answer, ApiError) and answer.status == 409:
                    fresh = self._unchanged(targets[index], scaling[index].decision.current)
                    if fresh is not None:
                        again[index] = fresh
            targets = again
        return errors

    def _unchanged(self, target: Obj, replicas: int | None) -> Obj | None:
        """The target as it is now, if it still has the replicas the decision was made from."""
        meta = target["metadata"]
        fresh = self.store.get(target["kind"], meta.get("namespace") or "", meta["name"])
        return fresh if fresh is not None and fresh["spec"].get("replicas") == replicas else None

    def _writes(self, hpa: Obj, decision: Decision, stamp: str, target: Obj | None) -> list[Command]:
        """The autoscaler's new status when it differs, and its events."""
        meta = hpa["metadata"]
        namespace = meta.get("namespace") or "default"
        commands: list[Command] = []
        status = next_status(hpa.get("status"), decision, meta.get("generation"), stamp)
        labels = _mapping(_mapping(_mapping(target).get("spec")).get("selector")).get("matchLabels")
        if isinstance(labels, dict) and labels:
            # as a /scale status says it: the agents time a ResponseTime metric's path on these pods
            status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if status != (hpa.get("status") or {}):
            commands.append(UpdateStatus(KIND, namespace, meta["name"], status, meta["resourceVersion"]))
        for note in decision.events:
            existing = self.store.get("Event", namespace, event_name(hpa, note.reason, note.message))
            commands.append(record_event(existing, hpa, note.reason, note.message, warning=note.warning,
                                         component=COMPONENT, uid=self.uid(), now=stamp,
                                         distinct=note.message))
        return commands
