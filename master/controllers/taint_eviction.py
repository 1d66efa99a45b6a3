"""Leader-only: pods leave a node tainted NoExecute unless they tolerate it, as Kubernetes' taint manager.

A pod bound to a node with a NoExecute taint it does not tolerate is deleted gracefully
(its containers get their grace period, then the runtime removes them), with a
TaintManagerEviction event. A pod that tolerates every such taint stays, for ever, or
for the least tolerationSeconds of the tolerations that matched, counted from when this
leader first saw the taint (Kubernetes too counts from when its taint manager saw the
node change). Pods with an owner are then made again elsewhere by that owner; a bare pod
is gone, as in Kubernetes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.objects.isolation import each
from master.objects.kinds import Taint
from master.scheduler.filters import tolerates
from master.scheduler.snapshot import is_finished, node_taints
from master.store.commands import Command, MarkDeleted
from master.store.replicated import Store
from master.store.state import WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "taint-eviction"


def no_execute_taints(node: Obj) -> list[Taint]:
    return [taint for taint in node_taints(node) if taint.effect == "NoExecute"]


def eviction_delay(tolerations: list[Obj], taints: list[Taint]) -> float | None:
    """Seconds after the taints came that the pod must go: 0 at once, None never (Kubernetes'
    getMinTolerationTime over the tolerations that matched)."""
    if not taints:
        return None
    used = []
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        used.extend(matching)
    seconds = [float(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
    if not seconds:
        return None
    return max(0.0, min(seconds))


class TaintEviction(LeaderLoop):
    name = "taint-eviction"

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 period: float = 1.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self._seen: dict[tuple[str, Taint], float] = {}  # (node, taint) -> when this leader first saw it
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        if any(e.kind == "Node" for e in events):
            self.wake()

    def started_leading(self) -> None:
        self._seen.clear()  # an earlier term's clock is not known here: tolerations count afresh

    def reconcile(self) -> None:
        nodes, _ = self.store.read(lambda s: s.list("Node"))
        taints = dict(each(nodes, lambda n: (n["metadata"]["name"], no_execute_taints(n)), self.quarantine))
        now = time.monotonic()
        current = {(node, taint) for node, found in taints.items() for taint in found}
        self._seen = {key: self._seen.get(key, now) for key in current}
        if not current:
            return  # the usual case: no pod needs looking at
        pods, _ = self.store.read(lambda s: s.list("Pod"))
        commands: list[Command] = []

        def look(pod: Obj) -> None:
            node = pod["spec"].get("nodeName")
            if not taints.get(node) or pod["metadata"].get("deletionTimestamp") or is_finished(pod):
                return
            delay = eviction_delay(pod["spec"].get("tolerations") or [], taints[node])
            since = max(self._seen[(node, taint)] for taint in taints[node])
            if delay is not None and now >= since + delay:
                commands.extend(self._evict(pod, node))

        each(pods, look, self.quarantine)
        if commands:
            answers = self.store.propose_all(commands)
            evicted = sum(1 for command, answer in zip(commands, answers, strict=True)
                          if isinstance(command, MarkDeleted) and not isinstance(answer, ApiError))
            log.info("evicted %d pod(s) from NoExecute-tainted nodes", evicted)

    def _evict(self, pod: Obj, node: str) -> list[Command]:
        meta = pod["metadata"]
        grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        existing = self.store.get("Event", meta["namespace"], event_name(pod, "TaintManagerEviction"))
        message = (f"Marking for deletion Pod {meta['namespace']}/{meta['name']} "
                   f"(node {node} is tainted NoExecute)")
        return [MarkDeleted("Pod", meta["namespace"], meta["name"], self.now(), grace),
                record_event(existing, pod, "TaintManagerEviction", message, warning=False,
                             component=COMPONENT, uid=self.uid(), now=self.now())]
