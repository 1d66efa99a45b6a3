"""The cluster state machine: pure, deterministic, no I/O, no clock, no randomness.

Objects are JSON-like dicts keyed by (kind, namespace, name); they are never
mutated once stored (a change stores a new dict), so readers may hold on to
what they got without copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from master.errors import ApiError, conflict, not_found
from master.objects.apply import merge_apply
from master.objects.updates import check_update
from master.store.commands import (
    Barrier,
    Batch,
    Bind,
    Command,
    Create,
    Delete,
    MarkDeleted,
    Obj,
    Op,
    Put,
    Replace,
    UpdateStatus,
)
from master.store.indexes import Indexes

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_NOT_SPEC = ("apiVersion", "kind", "metadata", "status")
_ACTIONS = {ADDED: "created", MODIFIED: "configured", DELETED: "deleted"}


@dataclass(frozen=True)
class WatchEvent:
    revision: int
    type: str
    obj: Obj

    @property
    def kind(self) -> str:
        return self.obj["kind"]


@dataclass
class Outcome:
    """What one command did: the objects as stored, or the error that changed nothing."""

    objects: list[Obj] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # created / configured / unchanged / deleted
    error: ApiError | None = None


def _content(obj: Obj) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class ClusterState:
    def __init__(self) -> None:
        self.revision = 0
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self.indexes = Indexes()

    def __getstate__(self) -> dict[str, Any]:
        """What a snapshot holds: the objects, not their indexes (rebuilt on load)."""
        return {k: v for k, v in self.__dict__.items() if k != "indexes"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.indexes = Indexes()
        self.indexes.rebuild(self.objects)

    # --- reads ---------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get(kind, {}).get((namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.select(kind, namespace)

    def select(self, kind: str, namespace: str | None = None, *, labels: dict[str, str] | None = None,
               node: str | None = None, owner: str | None = None) -> list[Obj]:
        """The objects of `kind` in `namespace` (None: all) with all these labels, bound to `node`,
        owned by the object of uid `owner`: from the indexes, in time proportional to the answer."""
        items = self.objects.get(kind, {})
        wanted = [("label", term) for term in (labels or {}).items()]
        wanted += [(index, value) for index, value in (("namespace", namespace), ("node", node),
                                                       ("owner", owner)) if value is not None]
        keys = self.indexes.keys(kind, wanted)
        if keys is None:
            return list(items.values())
        return [items[key] for key in keys]

    # --- the one write ---------------------------------------------------------------
    def apply(self, command: Command, dry_run: bool = False) -> tuple[Outcome, list[WatchEvent]]:
        """`dry_run`: what the command would do, then everything undone (the server side of
        `--dry-run=server`: the very code of a real write, nothing kept)."""
        if isinstance(command, Barrier):
            return Outcome(), []
        ops = command.ops if isinstance(command, Batch) else (command,)
        undo: list[tuple[str, tuple[str, str], Obj | None]] = []
        start_revision = self.revision

        def roll_back() -> None:
            for kind, key, previous in reversed(undo):
                self._put(kind, key, previous)
            self.revision = start_revision

        outcome, events = Outcome(), []
        for op in ops:
            try:
                result = self._apply_op(op, undo)
            except ApiError as err:
                roll_back()
                return Outcome(error=err), []
            if isinstance(result, WatchEvent):
                events.append(result)
                outcome.objects.append(result.obj)
                outcome.actions.append(_ACTIONS[result.type])
            else:
                outcome.objects.append(result)
                outcome.actions.append("unchanged")
        if dry_run:
            roll_back()
            return outcome, []
        return outcome, events

    def _apply_op(
        self, op: Op, undo: list[tuple[str, tuple[str, str], Obj | None]]
    ) -> WatchEvent | Obj:
        """The event of the change, or the stored object itself when nothing changed."""
        if isinstance(op, Create):
            return self._store(undo, None, op.obj, op.uid, op.timestamp)
        if isinstance(op, Put):  # apply: merged three ways with what the system set (objects/apply.py)
            live = self._current(op.obj)
            return self._store(undo, live, merge_apply(live, op.obj), op.uid, op.timestamp)
        if isinstance(op, Replace):
            meta = op.obj["metadata"]
            old = self._existing(op.obj["kind"], meta.get("namespace", ""), meta["name"])
            self._check_version(old, op.expected_rv)
            return self._store(undo, old, op.obj, "", "")
        if isinstance(op, UpdateStatus):
            old = self._existing(op.kind, op.namespace, op.name)
            self._check_version(old, op.expected_rv)
            return self._write(undo, MODIFIED, {**old, "status": op.status}, old["metadata"])
        if isinstance(op, Bind):
            old = self._existing("Pod", op.namespace, op.name)
            if old["metadata"]["uid"] != op.uid:
                raise conflict(f"Pod {op.name} was replaced by another of the same name; not bound")
            bound = old["spec"].get("nodeName")
            if bound:
                raise conflict(f"Pod {op.name} is already bound to node {bound}")
            return self._write(undo, MODIFIED, {**old, "spec": {**old["spec"], "nodeName": op.node},
                                                "status": op.status}, old["metadata"])
        if isinstance(op, MarkDeleted):
            old = self._existing(op.kind, op.namespace, op.name)
            if old["metadata"].get("deletionTimestamp"):
                return old
            meta = {**old["metadata"], "deletionTimestamp": op.timestamp,
                    "deletionGracePeriodSeconds": op.grace_seconds}
            return self._write(undo, MODIFIED, old, meta)
        if isinstance(op, Delete):
            old = self._existing(op.kind, op.namespace, op.name)
            self._check_version(old, op.expected_rv)
            self.revision += 1
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": self.revision}}
            undo.append((op.kind, (op.namespace, op.name), old))
            self._put(op.kind, (op.namespace, op.name), None)
            return WatchEvent(self.revision, DELETED, gone)
        raise TypeError(f"not a store command: {op!r}")  # pragma: no cover

    def _current(self, obj: Obj) -> Obj | None:
        meta = obj["metadata"]
        return self.get(obj["kind"], meta.get("namespace", ""), meta["name"])

    def _existing(self, kind: str, namespace: str, name: str) -> Obj:
        old = self.get(kind, namespace, name)
        if old is None:
            raise not_found(kind, namespace, name)
        return old

    @staticmethod
    def _check_version(old: Obj, expected_rv: int | None) -> None:
        current = old["metadata"]["resourceVersion"]
        if expected_rv is not None and expected_rv != current:
            name = old["metadata"]["name"]
            raise conflict(
                f"{old['kind']} {name} was modified: resourceVersion is {current}, "
                f"not {expected_rv}; read it again and retry"
            )

    def _store(
        self, undo: list, old: Obj | None, new: Obj, uid: str, timestamp: str
    ) -> WatchEvent | Obj:
        """Create `new`, or replace labels/annotations/content of `old` with those of `new`."""
        meta = new["metadata"]
        if old is None:
            if self._current(new) is not None:
                raise ApiError(
                    409, "AlreadyExists", f"{new['kind']} {meta['name']} already exists",
                    "metadata.name",
                )
            base_meta = {"uid": uid, "creationTimestamp": timestamp, "generation": 1}
            stored = {k: v for k, v in new.items() if k != "status"}
            if "status" in new:
                stored["status"] = new["status"]
            return self._write(undo, ADDED, stored, {**meta, **base_meta})
        check_update(old, new)
        generation = old["metadata"]["generation"]
        if _content(old) != _content(new):
            generation += 1
        elif all(old["metadata"].get(k) == meta.get(k) for k in ("labels", "annotations")):
            return old
        kept = {
            "uid": old["metadata"]["uid"],
            "creationTimestamp": old["metadata"]["creationTimestamp"],
            "generation": generation,
            **{k: old["metadata"][k] for k in ("deletionTimestamp", "deletionGracePeriodSeconds")
               if k in old["metadata"]},
        }
        stored = {k: v for k, v in new.items() if k != "status"}
        if "status" in old:
            stored["status"] = old["status"]
        return self._write(undo, MODIFIED, stored, {**meta, **kept})

    def _write(self, undo: list, event_type: str, obj: Obj, meta: dict[str, Any]) -> WatchEvent:
        self.revision += 1
        meta = {**meta, "resourceVersion": self.revision}
        meta.setdefault("labels", {})
        stored = {**obj, "metadata": meta}
        key = (meta.get("namespace", ""), meta["name"])
        undo.append((obj["kind"], key, self.get(obj["kind"], *key)))
        self._put(obj["kind"], key, stored)
        return WatchEvent(self.revision, event_type, stored)

    def _put(self, kind: str, key: tuple[str, str], obj: Obj | None) -> None:
        """The one place stored objects change (None: gone), with their indexes."""
        bucket = self.objects.setdefault(kind, {})
        old = bucket.get(key)
        if obj is None:
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        self.indexes.change(kind, key, old, obj)
