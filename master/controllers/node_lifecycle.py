"""Leader-only: turns heartbeat silence into NotReady and heartbeats back into Ready, as Kubernetes'
node lifecycle controller: a lost node is tainted NoExecute (unreachable when silent, Ready Unknown;
not-ready when its agent says its container engine fails, Ready False), and the taint evictor then
moves its pods off once their tolerations run out; its pods are marked Unknown and not Ready at
once, and a node that comes back is tainted `returning` (NoSchedule) until the runtime has cleaned it.

Level-triggered: each round also puts right the taints and pods of nodes already NotReady (a
round that failed half-way, a new leader), not only those that changed this round."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.heartbeat_rate import DEFAULT_MAX_PER_SECOND, GraceMemory, heartbeat_interval, node_grace
from master.liveness import Readiness, lost_pod_status, transitions, wanted_lifecycle_taints, with_ready
from master.objects.conditions import ready_status
from master.objects.tolerations import lifecycle_keys, with_lifecycle_taints
from master.reports.heartbeats import HeartbeatBook
from master.store.commands import Batch, Command, Replace, UpdateStatus
from master.store.replicated import Store

log = logging.getLogger(__name__)


class NodeLifecycle(LeaderLoop):
    name = "node-lifecycle"

    def __init__(self, store: Store, book: HeartbeatBook, grace: float, now: Callable[[], str],
                 max_per_second: float = DEFAULT_MAX_PER_SECOND, period: float = 0.25) -> None:
        """`grace`: node_grace_seconds, the grace at the 1 s interval; the one applied stretches with
        the interval agents are told, from the count of nodes (master/heartbeat_rate.py)."""
        super().__init__(store, period)
        self.book = book
        self.base_grace = grace
        self.max_per_second = max_per_second
        self.now = now
        self.memory = GraceMemory()
        self.grace = grace  # the one applied at the latest round

    def started_leading(self) -> None:
        """The book's timers were restarted when this term began (ReportBooks.new_term)."""
        log.info("leading: nodes silent for %.1fs (at a 1 s heartbeat interval) become NotReady",
                 self.base_grace)

    def _grace(self, nodes: int) -> float:
        wanted = node_grace(heartbeat_interval(nodes, self.max_per_second), self.base_grace)
        grace = self.memory.grace(wanted, time.monotonic())
        if grace != self.grace:
            log.info("%d nodes: nodes silent for %.1fs become NotReady", nodes, grace)
        self.grace = grace
        return grace

    def reconcile(self) -> None:
        """Write this round's transitions together: after a leader change or a mass registration
        hundreds of nodes turn at once, and one write each, waited for in turn, took a minute."""
        nodes, _ = self.store.read(lambda state: state.list("Node"))
        changes = dict((n["metadata"]["name"], readiness) for n, readiness in
                       transitions(nodes, self.book, time.monotonic(), self._grace(len(nodes)),
                                   self.quarantine))
        timestamp = self.now()
        commands: list[Command] = []
        lost: list[str] = []
        for node in nodes:
            name = node["metadata"]["name"]
            turned = changes.get(name)
            status = turned.status if turned is not None else ready_status(node)
            if status is None:
                continue  # never reported: neither Ready nor lost
            commands.extend(self._node_writes(node, status, turned, timestamp))
            if status != "True":
                lost.append(name)
        if lost:
            pods, _ = self.store.read(lambda state: [p for name in lost
                                                     for p in state.select("Pod", node=name)])
            commands.extend(UpdateStatus("Pod", p["metadata"]["namespace"], p["metadata"]["name"], status,
                                         p["metadata"]["resourceVersion"])
                            for p in pods if (status := lost_pod_status(p, timestamp)) is not None)
        if not commands:
            return
        answers = self.store.propose_all(commands, timeout=5.0)
        for answer in answers:
            if isinstance(answer, ApiError):  # a conflict or no quorum: the next round looks again
                log.debug("node lifecycle write refused: %s", answer.message)
        for name, readiness in changes.items():
            log.info("node %s is %s: %s", name, "Ready" if readiness.status == "True" else "NotReady",
                     readiness.message)

    @staticmethod
    def _node_writes(node: Obj, status: str, turned: Readiness | None, timestamp: str) -> list[Command]:
        """The node's taints for its Ready `status`, then (if it `turned`) its Ready condition: one
        Batch, all or none, so a node is never NotReady without the taint that moves its pods."""
        meta = node["metadata"]
        keys = lifecycle_keys(node)
        wanted = wanted_lifecycle_taints(status, keys)
        ops: list = []
        if wanted != keys:
            spec = with_lifecycle_taints(node.get("spec") or {}, wanted)
            ops.append(Replace({**node, "spec": spec}, meta["resourceVersion"]))
        if turned is not None:
            expected = None if ops else meta["resourceVersion"]
            status = with_ready(node.get("status") or {}, turned, timestamp)
            ops.append(UpdateStatus("Node", "", meta["name"], status, expected))
        return [Batch(tuple(ops))] if ops else []
