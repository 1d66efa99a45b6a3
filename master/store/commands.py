"""The typed commands that travel through Raft: the store's whole replicated surface.

Everything apply needs is in the command (uids, timestamps), so every master
that applies it reaches the same state. They are plain frozen dataclasses so
they pickle small and stay readable in a journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from berth.objects import Obj


def _journaled_before_namespaces(self: Any, state: dict[str, Any]) -> None:
    """Unpickling: a Create or Put journaled before namespaces were objects lacks `makes_namespace`
    and reads False, so replaying an old log (or its suffix after an old snapshot) applies it as it
    was applied then, and every master reaches the same state, revisions included."""
    self.__dict__.update({"makes_namespace": False, **state})


@dataclass(frozen=True)
class Create:
    """`makes_namespace`: a namespace with no Namespace object gets one in this same command."""

    obj: Obj
    uid: str
    timestamp: str
    makes_namespace: bool = True
    __setstate__ = _journaled_before_namespaces


@dataclass(frozen=True)
class Replace:
    """New labels, annotations and spec; status is kept. expected_rv=None means no CAS."""

    obj: Obj
    expected_rv: int | None = None


@dataclass(frozen=True)
class Put:
    """Create or replace (what `apply` does): uid and timestamp are used if it is new."""

    obj: Obj
    uid: str
    timestamp: str
    makes_namespace: bool = True
    __setstate__ = _journaled_before_namespaces


@dataclass(frozen=True)
class UpdateStatus:
    kind: str
    namespace: str
    name: str
    status: Obj
    expected_rv: int | None = None


@dataclass(frozen=True)
class Bind:
    """The scheduler's decision: a pod (this very one, by uid) goes to a node, once.

    A pod already bound is a conflict, so two leaders (an old one cut off and the new
    one) can never both place the same pod.
    """

    namespace: str
    name: str
    uid: str
    node: str
    status: Obj


@dataclass(frozen=True)
class MarkDeleted:
    """A graceful delete's first step: the object stays, Terminating, until its containers are
    stopped within the grace period (then a Delete removes it). Marking twice keeps the first.
    `expected_rv`: only if the object is still at that resourceVersion (an eviction that let an
    unready pod go without charging its budget must not delete it once it is Ready)."""

    kind: str
    namespace: str
    name: str
    timestamp: str
    grace_seconds: int
    expected_rv: int | None = None  # journaled before it existed: unpickled as None (no CAS)


@dataclass(frozen=True)
class Delete:
    kind: str
    namespace: str
    name: str
    expected_rv: int | None = None


@dataclass(frozen=True)
class ReleaseDependents:
    """Every object naming `uid` among its owners loses that reference (`propagationPolicy=Orphan`):
    found at apply time, so a dependent made or changed since the request read anything is
    released as well. In a Batch before the owner's deletion."""

    uid: str


@dataclass(frozen=True)
class Batch:
    """All of these or none of them, in order."""

    ops: tuple[Op, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Group:
    """Independent commands in one Raft entry (group commit): each has its own outcome.

    `ticket`: the proposing master's mark (store/tickets.py), by which it recognises the entry when it
    applies it, should Raft lose track of its proposal; 0 in entries journaled before tickets (the
    attribute then reads this default, and a master of the previous release ignores it)."""

    commands: tuple[Command, ...]
    ticket: int = 0


@dataclass(frozen=True)
class Barrier:
    """Changes nothing: once applied locally, every earlier committed write is visible."""


# Kinds a DELETE only marks, whose controller removes them once nothing holds them: a Namespace once
# empty, a PersistentVolumeClaim once no pod uses it, a PersistentVolume once no claim is bound to it
# (Kubernetes' pvc-protection and pv-protection finalizers; master/controllers/volumes.py)
MARKED_KINDS = ("Namespace", "PersistentVolumeClaim", "PersistentVolume")


def deletion(obj: Obj, now: str, grace_seconds: int | None = None,
             expected_rv: int | None = None) -> Op:
    """How an object is deleted, for the API and the namespace controller alike: a pod bound to a
    node is marked (its containers get their grace to stop; the runtime removes it), a Namespace is
    marked Terminating (its controller empties it, then removes it), so are a PersistentVolumeClaim
    and a PersistentVolume (the volumes controller removes them once unused); anything else goes at once.
    `grace_seconds` 0 deletes a pod at once; None takes the pod's terminationGracePeriodSeconds.
    `expected_rv`: only if the object is still at that resourceVersion, marked or deleted alike."""
    meta, kind = obj["metadata"], obj["kind"]
    namespace = meta.get("namespace") or ""
    if kind in MARKED_KINDS:
        return MarkDeleted(kind, namespace, meta["name"], now, 0, expected_rv)
    if kind == "Pod" and grace_seconds != 0 and (obj.get("spec") or {}).get("nodeName"):
        if grace_seconds is None:
            grace_seconds = int(obj["spec"].get("terminationGracePeriodSeconds", 30))
        return MarkDeleted(kind, namespace, meta["name"], now, grace_seconds, expected_rv)
    return Delete(kind, namespace, meta["name"], expected_rv)


Op = Union[Create, Replace, Put, UpdateStatus, Bind, MarkDeleted, Delete, ReleaseDependents]  # noqa: UP007
Command = Union[Op, Batch, Barrier]  # noqa: UP007
