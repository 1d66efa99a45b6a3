"""Leader-only: a Terminating namespace is emptied, then removed, as Kubernetes' namespace controller.

Deleting a Namespace marks it Terminating in one commit, and from that commit on the store
refuses new objects in it (master/store/state.py). Each round this controller deletes a batch
of what every Terminating namespace holds, through the ordinary deletion (`commands.deletion`,
the API's too: a pod bound to a node is marked and stopped within its grace by the runtime,
which then removes it; anything else goes at once), and removes a Namespace once it holds
nothing. Level-triggered: a new leader's first round takes up where the last one stopped,
and an object whose deletion failed is tried again at the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.objects.isolation import each
from master.objects.kinds import KINDS
from master.store.commands import Command, Delete, deletion
from master.store.replicated import Store
from master.store.state import DELETED, NAMESPACE, ClusterState, WatchEvent, terminating

log = logging.getLogger(__name__)
BATCH = 200  # deletions a round commits: a namespace of 10,000 objects holds no write up for long
# What makes other objects goes before what it makes; events last, as deleting tells of itself.
_FIRST = {"HorizontalPodAutoscaler": 0, "Deployment": 1, "ReplicaSet": 2, "Event": 4}
_ORDER = sorted((k for k, info in KINDS.items() if info.namespaced), key=lambda k: _FIRST.get(k, 3))


def plan(namespace: Obj, contents: list[Obj], now: str, batch: int = BATCH) -> list[Command]:
    """One round's writes for one Terminating namespace: the deletions of up to `batch` of its
    objects (one already being deleted, a pod stopping, is left to finish), or, once it holds
    nothing, its own removal (which the store refuses while anything is left in it)."""
    if not contents:
        return [Delete(NAMESPACE, "", namespace["metadata"]["name"])]
    waiting = [obj for obj in contents if not obj["metadata"].get("deletionTimestamp")]
    return [deletion(obj, now) for obj in waiting[:batch]]


def _contents(state: ClusterState, names: list[str]) -> dict[str, list[Obj]]:
    return {name: [obj for kind in _ORDER for obj in state.select(kind, name)] for name in names}


class NamespaceController(LeaderLoop):
    name = "namespace"

    def __init__(self, store: Store, now: Callable[[], str], period: float = 2.0,
                 batch: int = BATCH) -> None:
        super().__init__(store, period)
        self.now = now
        self.batch = batch
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """A namespace marked, or an object gone (maybe the last of one): cheap to look again."""
        if any(e.kind == NAMESPACE or e.type == DELETED for e in events):
            self.wake()

    def reconcile(self) -> None:
        listed, _ = self.store.read(lambda s: s.list(NAMESPACE))
        doomed = [n for n in listed if terminating(n)]
        if not doomed:
            return
        names = [n["metadata"]["name"] for n in doomed]
        contents, _ = self.store.read(lambda s: _contents(s, names))
        commands: list[Command] = []

        def look(namespace: Obj) -> None:
            room = self.batch - len(commands)
            if room > 0:
                commands.extend(plan(namespace, contents[namespace["metadata"]["name"]], self.now(), room))

        each(doomed, look, self.quarantine)
        if not commands:
            return  # only pods stopping within their grace: the runtime's deletions wake us
        answers = self.store.propose_all(commands)
        failed = [a for a in answers if isinstance(a, ApiError)]
        removed = sum(1 for c, a in zip(commands, answers, strict=True)
                      if isinstance(c, Delete) and c.kind == NAMESPACE and not isinstance(a, ApiError))
        log.info("namespaces: %d deletion(s) committed, %d namespace(s) removed, %d refused%s",
                 len(commands) - len(failed), removed, len(failed),
                 f" (first: {failed[0].message})" if failed else "")
