"""Leader-only: objects whose owners are all gone are deleted, as Kubernetes' garbage collector.

Deleting a Deployment (background propagation, the default) removes it at once; this loop then
deletes its ReplicaSets, whose owner's uid no longer exists, and then their pods, through the
ordinary deletion (`commands.deletion`: a bound pod gets its grace). A dependent with some owners
left loses only the references to the gone ones. `?propagationPolicy=Orphan` (`berth delete
--cascade=orphan`) is the API's: it clears the dependents' references in the same command that
deletes the owner, so nothing is left here to collect.

The store's listener notes the uids of deleted objects and the objects added with owners (a pod
made as its ReplicaSet went); a round looks at their dependents and at those, through the owner
index. A full sweep runs when a term begins and every `sweep_seconds`, so nothing a missed
wake-up left is kept for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.objects.isolation import each
from master.store.commands import Command, Replace, deletion
from master.store.replicated import Store
from master.store.state import ADDED, DELETED, ClusterState, WatchEvent
from master.workloads.owners import Orphaned, orphaned, owner_references

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # kind, namespace, name


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


def verdicts(state: ClusterState, objects: list[Obj]) -> list[Orphaned]:
    def exists(dependent: Obj, ref: Obj) -> bool:
        return state.owner_exists(dependent["metadata"].get("namespace") or "", ref)

    found = [orphaned(obj, exists) for obj in objects]
    return [v for v in found if v is not None and not v.obj["metadata"].get("deletionTimestamp")]


class GarbageCollector(LeaderLoop):
    name = "garbage-collector"

    def __init__(self, store: Store, now: Callable[[], str], period: float = 1.0,
                 sweep_seconds: float = 30.0) -> None:
        super().__init__(store, period)
        self.now = now
        self.sweep_seconds = sweep_seconds
        self._lock = threading.Lock()
        self._gone: set[str] = set()  # uids of deleted objects
        self._added: set[Key] = set()  # objects added with owners
        self._next_sweep = 0.0
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """Noted only while leading (a follower's notes would grow for ever, never read); what a
        new leader missed, its first round's full sweep finds."""
        if not self.leading:
            return
        noted = False
        with self._lock:
            for event in events:
                meta = event.obj["metadata"]
                if event.type == DELETED and meta.get("uid"):
                    self._gone.add(meta["uid"])
                    noted = True
                elif event.type == ADDED and meta.get("ownerReferences"):
                    self._added.add(_key(event.obj))
                    noted = True
        if noted:
            self.wake()

    def started_leading(self) -> None:
        self._next_sweep = 0.0

    def stopped_leading(self) -> None:
        with self._lock:
            self._gone, self._added = set(), set()

    def reconcile(self) -> None:
        with self._lock:
            gone, added = self._gone, self._added
            self._gone, self._added = set(), set()
        sweep = time.monotonic() >= self._next_sweep
        if sweep:
            self._next_sweep = time.monotonic() + self.sweep_seconds

        def read(state: ClusterState) -> list[Orphaned]:
            if sweep:
                looked = [obj for kind in list(state.objects) for obj in state.list(kind)
                          if obj["metadata"].get("ownerReferences")]
            else:
                looked = [obj for uid in gone for obj in state.dependents(uid)]
                looked += [obj for kind, namespace, name in added
                           if (obj := state.get(kind, namespace, name)) is not None]
            return verdicts(state, list({_key(o): o for o in looked}.values()))

        found, _ = self.store.read(read)
        if not found:
            return
        now = self.now()
        commands: list[Command] = each(found, lambda v: self._write(v, now),
                                       lambda v, err: self.quarantine(v.obj, err))
        answers = self.store.propose_all(commands)
        failed = [a for a in answers if isinstance(a, ApiError)]
        log.info("garbage collector: %d dependent(s) of gone owners, %d write(s) refused",
                 len(commands), len(failed))
        if failed:
            self._next_sweep = 0.0  # refused (changed meanwhile): look again at the next round

    @staticmethod
    def _write(verdict: Orphaned, now: str) -> Command:
        obj = verdict.obj
        if verdict.delete:
            return deletion(obj, now, expected_rv=obj["metadata"]["resourceVersion"])
        kept = verdict.kept or obj
        assert len(owner_references(kept)) < len(owner_references(obj))
        return Replace(kept, obj["metadata"]["resourceVersion"])
