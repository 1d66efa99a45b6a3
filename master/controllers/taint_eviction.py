"""Leader-only: pods leave a node tainted NoExecute unless they tolerate it, as Kubernetes' taint manager.

A pod bound to a node with a NoExecute taint it does not tolerate is deleted gracefully
(its containers get their grace period, then the runtime removes them), with a
TaintManagerEviction event. A pod that tolerates every such taint stays, for ever, or
for the least tolerationSeconds of the tolerations that matched, counted from when this
leader first saw the taint (Kubernetes too counts from when its taint manager saw the
node change). Pods with an owner are then made again elsewhere by that owner; a bare pod
is gone, as in Kubernetes. What SSH said of a NotReady host (master/controllers/node_check.py)
shortens or holds this: a host that does not answer loses its pods at once (those tolerating it
for a bounded time), and a pod confirmed running where only the agent failed stays.
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
from master.reports.host_checks import HostChecks, HostVerdict
from master.runtime.host_check import evict_now, held
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
                 period: float = 1.0, checks: HostChecks | None = None,
                 evict_when_unreachable: bool = True) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self.checks = checks or HostChecks()  # what SSH said of NotReady hosts (node_check.py)
        self.evict_when_unreachable = evict_when_unreachable
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
        evicted: dict[str, list[str]] = {}  # node -> the pods evicted from it this round

        def look(pod: Obj) -> None:
            node = pod["spec"].get("nodeName")
            if not taints.get(node) or pod["metadata"].get("deletionTimestamp") or is_finished(pod):
                return
            delay = eviction_delay(pod["spec"].get("tolerations") or [], taints[node])
            since = max(self._seen[(node, taint)] for taint in taints[node])
            verdict = self.checks.verdict(node)
            if delay is None or held(verdict, pod):
                return  # tolerated for ever, or confirmed running where only the agent failed
            if now >= since + delay or evict_now(verdict, self.evict_when_unreachable):
                meta = pod["metadata"]
                evicted.setdefault(node, []).append(f"{meta['namespace']}/{meta['name']}")
                commands.extend(self._evict(pod, node, verdict))

        each(pods, look, self.quarantine)
        commands.extend(self._node_events(nodes, evicted))
        if commands:
            answers = self.store.propose_all(commands)
            evicted = sum(1 for command, answer in zip(commands, answers, strict=True)
                          if isinstance(command, MarkDeleted) and not isinstance(answer, ApiError))
            log.info("evicted %d pod(s) from NoExecute-tainted nodes", evicted)

    def _node_events(self, nodes: list[Obj], evicted: dict[str, list[str]]) -> list[Command]:
        """One event on each node pods were evicted from this round (`berth describe node` tells it)."""
        made: list[Command] = []
        for node in nodes:
            gone = evicted.get(node["metadata"]["name"])
            if not gone:
                continue
            message = f"evicting {len(gone)} pod(s): {', '.join(gone[:10])}{' ...' if len(gone) > 10 else ''}"
            existing = self.store.get("Event", "default", event_name(node, "TaintManagerEviction", message))
            made.append(record_event(existing, node, "TaintManagerEviction", message, warning=True,
                                     component=COMPONENT, uid=self.uid(), now=self.now(), distinct=message))
        return made

    def _evict(self, pod: Obj, node: str, verdict: HostVerdict | None = None) -> list[Command]:
        meta = pod["metadata"]
        grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        existing = self.store.get("Event", meta["namespace"], event_name(pod, "TaintManagerEviction"))
        why = f"; {verdict.message}" if verdict is not None else ""
        message = (f"Marking for deletion Pod {meta['namespace']}/{meta['name']} "
                   f"(node {node} is tainted NoExecute{why})")
        return [MarkDeleted("Pod", meta["namespace"], meta["name"], self.now(), grace),
                record_event(existing, pod, "TaintManagerEviction", message, warning=False,
                             component=COMPONENT, uid=self.uid(), now=self.now())]
