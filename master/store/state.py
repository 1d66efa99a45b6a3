"""The cluster state machine: pure, deterministic, no I/O, no clock, no randomness.

Objects are JSON-like dicts keyed by (kind, namespace, name); they are never
mutated once stored (a change stores a new dict), so readers may hold on to
what they got without copying.

Namespaces are objects (kind Namespace, cluster-scoped), with their rules here, in the apply
every master runs: a command that creates an object in a namespace without a Namespace object
creates that too, in the same command (atomic, and deterministic: its uid is derived from the
command's); creating anything in a Terminating namespace is refused (403, as Kubernetes'
NamespaceLifecycle); `default` is never deleted; a Namespace is removed only once Terminating
and empty (the namespace controller empties it, master/controllers/namespaces.py).

Namespaces in use without a Namespace object (objects stored before namespaces were objects)
and `default` are derived when read (`implied_namespace`): Active, a uid derived from the name,
resourceVersion 0, no creation time, so every master shows the same. They are derived rather
than written when a state is loaded or an old command replayed because a master's state at a
log index must not depend on how it got there: masters restore snapshots taken at different
indexes, and writing at load or replay would give them different objects and revisions (old
commands unpickle with `makes_namespace` False for the same reason, commands.py). The first
write that names an implied namespace (an object created in it, an apply, a label, a delete)
stores it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from master.errors import ApiError, conflict, not_found
from master.objects.apply import merge_apply
from master.objects.kinds import API_VERSION
from master.objects.services import already_allocated, held
from master.objects.storage_kinds import PROTECTION_FINALIZERS
from master.objects.updates import check_update, kept_assigned
from master.objects.validate import DEFAULT_NAMESPACE
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
    ReleaseDependents,
    Replace,
    UpdateStatus,
)
from master.store.indexes import Indexes

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_NOT_SPEC = ("apiVersion", "kind", "metadata", "status")
_ACTIONS = {ADDED: "created", MODIFIED: "configured", DELETED: "deleted"}
NAMESPACE, ACTIVE, TERMINATING = "Namespace", "Active", "Terminating"
_UIDS = uuid.UUID("5f1d3c1e-8a8e-4b8e-9b1e-6e616d657370")  # namespace of the uids derived here


def implied_namespace(name: str) -> Obj:
    """The Namespace read for `default` or a namespace in use while no Namespace object is stored."""
    return {"apiVersion": API_VERSION, "kind": NAMESPACE,
            "metadata": {"name": name, "uid": str(uuid.uuid5(_UIDS, name)), "resourceVersion": 0,
                         "generation": 1, "labels": {}},
            "spec": {}, "status": {"phase": ACTIVE}}


def _new_namespace(name: str) -> Obj:
    return {"apiVersion": API_VERSION, "kind": NAMESPACE, "metadata": {"name": name}, "spec": {},
            "status": {"phase": ACTIVE}}


def terminating(namespace: Obj) -> bool:
    return bool(namespace["metadata"].get("deletionTimestamp"))


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

    @classmethod
    def of(cls, revision: int, objects: list[Obj]) -> ClusterState:
        """A state holding `objects` as stored at `revision` (a snapshot's restore): keyed and indexed
        as `_write` keys them; ValueError if two share a key."""
        by_kind: dict[str, dict[tuple[str, str], Obj]] = {}
        for obj in objects:
            meta = obj["metadata"]
            bucket = by_kind.setdefault(obj["kind"], {})
            key = (meta.get("namespace", ""), meta["name"])
            if key in bucket:
                raise ValueError(f"two {obj['kind']} objects named {'/'.join(filter(None, key))}")
            bucket[key] = obj
        state = cls.__new__(cls)
        state.__setstate__({"revision": revision, "objects": by_kind})
        return state

    # --- reads ---------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """As stored; a Namespace also when only implied (see the module's docstring)."""
        stored = self._stored(kind, (namespace, name))
        if stored is None and kind == NAMESPACE and not namespace and self._implied(name):
            return implied_namespace(name)
        return stored

    def _stored(self, kind: str, key: tuple[str, str]) -> Obj | None:
        return self.objects.get(kind, {}).get(key)

    def _implied(self, name: str) -> bool:
        return name == DEFAULT_NAMESPACE or self.indexes.in_namespace(name) > 0

    def in_namespace(self, namespace: str) -> int:
        """How many objects, of every kind, the namespace holds."""
        return self.indexes.in_namespace(namespace)

    def count(self, kind: str) -> int:
        """How many objects of `kind` there are, in constant time."""
        return len(self.objects.get(kind, {}))

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
        found = list(items.values()) if keys is None else [items[key] for key in keys]
        if kind == NAMESPACE and not wanted:  # implied ones have no labels, node or owner
            names = {DEFAULT_NAMESPACE, *self.indexes.namespaces_in_use()}
            found += [implied_namespace(n) for n in sorted(names) if ("", n) not in items]
        return found

    def dependents(self, uid: str) -> list[Obj]:
        """Every object that names `uid` among its owners (uids are unique: no namespace needed)."""
        return [obj for kind in list(self.objects) for obj in self.select(kind, owner=uid)]

    def owner_exists(self, namespace: str, ref: Obj) -> bool:
        """An ownerReference's object, by kind, name and uid, where its dependent lives (or
        cluster-scoped): a same-named object made after the owner's deletion is not its owner."""
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        found = self.get(kind, namespace, name) or self.get(kind, "", name)
        return found is not None and found["metadata"].get("uid") == ref.get("uid")

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
            side: list[WatchEvent] = []  # what the op wrote besides its object: an implicit namespace
            try:
                result = self._apply_op(op, undo, side)
            except ApiError as err:
                roll_back()
                return Outcome(error=err), []
            events.extend(side)
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
        self, op: Op, undo: list[tuple[str, tuple[str, str], Obj | None]], side: list[WatchEvent]
    ) -> WatchEvent | Obj:
        """The event of the change, or the stored object itself when nothing changed."""
        if isinstance(op, Create):
            meta = op.obj["metadata"]
            if self.get(op.obj["kind"], meta.get("namespace", ""), meta["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f"{op.obj['kind']} {meta['name']} already exists",
                               "metadata.name")
            self._admit(op, undo, side)
            return self._store(undo, None, op.obj, op.uid, op.timestamp)
        if isinstance(op, Put):  # apply: merged three ways with what the system set (objects/apply.py)
            live = self._current(op.obj)
            if live is None:
                self._admit(op, undo, side)
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
            self._check_version(old, op.expected_rv)
            if op.kind == NAMESPACE:
                self._never_default(op.name)
            if old["metadata"].get("deletionTimestamp"):
                return old
            meta = {**old["metadata"], "deletionTimestamp": op.timestamp,
                    "deletionGracePeriodSeconds": op.grace_seconds}
            if op.kind == NAMESPACE:
                old = {**old, "status": {**(old.get("status") or {}), "phase": TERMINATING}}
            if op.kind in PROTECTION_FINALIZERS:  # kept until the volumes controller finds it unused
                meta["finalizers"] = [PROTECTION_FINALIZERS[op.kind]]
            return self._write(undo, MODIFIED, old, meta)
        if isinstance(op, ReleaseDependents):
            return self._release(undo, side, op.uid)
        if isinstance(op, Delete):
            old = self._existing(op.kind, op.namespace, op.name)
            self._check_version(old, op.expected_rv)
            if op.kind == NAMESPACE:
                self._removable(old)
            self.revision += 1
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": self.revision}}
            undo.append((op.kind, (op.namespace, op.name), old))
            self._put(op.kind, (op.namespace, op.name), None)
            return WatchEvent(self.revision, DELETED, gone)
        raise TypeError(f"not a store command: {op!r}")  # pragma: no cover

    def _release(self, undo: list, side: list[WatchEvent], uid: str) -> WatchEvent | Obj:
        """Every dependent of `uid` without that reference, in a fixed order (the indexes' sets
        iterate in a per-process order, and every master must give each write the same revision).
        The outcome shows the last one written ({} when there was none); the others go to `side`."""
        last: WatchEvent | Obj = {}
        def key(obj: Obj) -> tuple[str, str, str]:
            return obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]

        dependents = sorted(self.dependents(uid), key=key)
        for obj in dependents:
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
            if refs:
                meta["ownerReferences"] = refs
            if isinstance(last, WatchEvent):
                side.append(last)
            last = self._write(undo, MODIFIED, obj, meta)
        return last

    def _current(self, obj: Obj) -> Obj | None:
        """As stored: an apply of an implied Namespace creates it (with the apply's uid and time)."""
        meta = obj["metadata"]
        return self._stored(obj["kind"], (meta.get("namespace", ""), meta["name"]))

    def _admit(self, op: Create | Put, undo: list, side: list[WatchEvent]) -> None:
        """Before a new object is stored: its namespace must not be Terminating, and is created
        now when it has no Namespace object (unless `op` was journaled before namespaces were).
        `default` is not: it exists from the start, implied until something writes it (the
        namespace controller does when it starts leading, as kube-apiserver makes it at start),
        so the objects most clusters hold cost no namespace write."""
        meta = op.obj["metadata"]
        name = meta.get("namespace") or ""
        if not name:
            return
        namespace = self._stored(NAMESPACE, ("", name))
        if namespace is not None and terminating(namespace):
            raise ApiError(403, "Forbidden", f"{op.obj['kind']} {meta['name']} is forbidden: unable to "
                           f"create new content in namespace {name} because it is being terminated",
                           "metadata.namespace")
        if namespace is None and op.makes_namespace and name != DEFAULT_NAMESPACE:
            uid = str(uuid.uuid5(_UIDS, f"namespace-of:{op.uid}"))
            stamp = {"name": name, "uid": uid, "creationTimestamp": op.timestamp, "generation": 1}
            side.append(self._write(undo, ADDED, _new_namespace(name), stamp))

    @staticmethod
    def _never_default(name: str) -> None:
        if name == DEFAULT_NAMESPACE:
            raise ApiError(403, "Forbidden", f"namespace {name} is forbidden: this namespace may not be "
                           "deleted (objects go there when no namespace is given)", "metadata.name")

    def _removable(self, namespace: Obj) -> None:
        """A Namespace leaves the store only once Terminating and empty: never with objects in it."""
        name = namespace["metadata"]["name"]
        self._never_default(name)
        if not terminating(namespace):
            raise ApiError(409, "Conflict", f"namespace {name} is not terminating: it is deleted by marking "
                           "it (DELETE through the API), and removed once its objects are gone",
                           "metadata.deletionTimestamp")
        held = self.in_namespace(name)
        if held:
            raise ApiError(409, "Conflict", f"namespace {name} still holds {held} object(s); it is "
                           "removed once they are gone", "metadata.name")

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
        if old is None:  # its absence checked by the caller (Create: implied namespaces count)
            base_meta = {"uid": uid, "creationTimestamp": timestamp, "generation": 1}
            stored = {k: v for k, v in new.items() if k != "status"}
            if "status" in new:
                stored["status"] = new["status"]
            if new["kind"] == NAMESPACE:
                stored["status"] = {"phase": ACTIVE}
            self._not_held(new)
            return self._write(undo, ADDED, stored, {**meta, **base_meta})
        new = kept_assigned(old, new)
        check_update(old, new)
        self._not_held(new)
        generation = int(old["metadata"].get("generation") or 1)  # every stored object has one; be sure
        if _content(old) != _content(new):
            generation += 1
        elif all(old["metadata"].get(k) == meta.get(k) for k in ("labels", "annotations", "ownerReferences")):
            return old
        kept = {
            "uid": old["metadata"]["uid"],
            "generation": generation,
            **{k: old["metadata"][k] for k in ("creationTimestamp", "deletionTimestamp",
                                               "deletionGracePeriodSeconds", "finalizers")
               if k in old["metadata"]},  # an implied namespace has no creationTimestamp
        }
        stored = {k: v for k, v in new.items() if k != "status"}
        if "status" in old:
            stored["status"] = old["status"]
        return self._write(undo, MODIFIED, stored, {**meta, **kept})

    def _not_held(self, obj: Obj) -> None:
        """A Service's address and each of its node ports are held by it alone, cluster-wide: the
        API gives the lowest free ones from what its master has applied, and two masters may give
        the same at once; the later write is refused here, on every master alike, and the API
        picks again (409). Checked against the index (`Indexes.holder`), not by a scan."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        for field_path, index, value in held(obj):
            owner = self.indexes.holder(index, value)
            if owner is not None and owner != key:
                raise already_allocated(field_path, index, value, owner, 409)

    def _write(self, undo: list, event_type: str, obj: Obj, meta: dict[str, Any]) -> WatchEvent:
        self.revision += 1
        meta = {**meta, "resourceVersion": self.revision}
        meta.setdefault("labels", {})
        stored = {**obj, "metadata": meta}
        key = (meta.get("namespace", ""), meta["name"])
        previous = self._stored(obj["kind"], key)
        undo.append((obj["kind"], key, previous))
        self._put(obj["kind"], key, stored)
        if previous is None:
            event_type = ADDED  # an implied namespace written for the first time: news to watchers
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
