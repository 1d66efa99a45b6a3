"""Leader-only: claims get volumes, released volumes are reclaimed, deleted ones go once unused.

Kubernetes' PersistentVolume controller (binder and provisioners) with its pvc- and pv-protection
controllers, in one loop. Each round reads the claims, volumes, classes and nodes (and the pods, when
a claim is being deleted or waits for its consumer's node), takes the pure round's steps
(master/storage/sync.py) and carries them out:

- a binding is one Batch: the volume's claimRef and phase Bound, the claim's volumeName, its phase
  Bound with the volume's capacity and access modes, both at the resourceVersions read;
- provisioning makes the volume's directory on its host first (`HostCommands`, over the runtime's
  SSH pool), then one Batch creates the volume, bound, and binds the claim; a failed command is a
  ProvisioningFailed event, tried again after `retry_seconds`;
- a Released volume under reclaim policy Delete that Berth made loses its directory on its host,
  then the object; a failed command makes it Failed (VolumeFailedDelete), tried again later;
- a claim or volume being deleted (marked by DELETE, with its protection finalizer) is deleted once
  unused: a claim once no scheduled, unfinished pod uses it, a volume once it is not Bound.
Events go on the claim (FailedBinding, WaitForFirstConsumer, ProvisioningSucceeded, ProvisioningFailed,
ClaimLost, ClaimMisbound) or the volume (VolumeFailedDelete), each said once per message and term.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from berth.objects import Obj
from master.controllers.leader_loop import LeaderLoop
from master.errors import ApiError
from master.events import event_name, record_event
from master.runtime.nodes import node_host
from master.runtime.ssh import SshError, SshPool
from master.storage.provision import NotProvisionable, provision_plan, reclaim_plan
from master.storage.sync import (
    Action,
    Bind,
    Pending,
    Provision,
    Reclaim,
    Remove,
    SetPhase,
    Tell,
    Unbind,
    plan_storage,
    wants_pods,
)
from master.storage.volumes import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    YES,
    StorageState,
    access_modes,
    claim_ref,
    key_of,
    name_of,
    pod_claims,
    uid_of,
)
from master.store.commands import Batch, Command, Create, Delete, Op, Replace, UpdateStatus
from master.store.replicated import Store
from master.store.state import WatchEvent

log = logging.getLogger(__name__)
COMPONENT = "persistentvolume-controller"
STORAGE_KINDS = ("PersistentVolumeClaim", "PersistentVolume", "StorageClass")
CLAIM, VOLUME = "PersistentVolumeClaim", "PersistentVolume"


class HostCommands(Protocol):
    """Runs a command on a Node's host: None when it succeeded, else what went wrong."""

    def run(self, node: Obj, argv: list[str]) -> str | None: ...


class SshCommands:
    """`HostCommands` over an SSH pool (the runtime's)."""

    def __init__(self, pool: SshPool, timeout: float = 30.0) -> None:
        self.pool = pool
        self.timeout = timeout

    def run(self, node: Obj, argv: list[str]) -> str | None:
        try:
            done = self.pool.run(node_host(node), argv, timeout=self.timeout)
        except SshError as err:
            return str(err)
        if done.ok:
            return None
        said = done.stderr.decode(errors="replace").strip()[:300]
        return said or f"{argv[0]} exited {done.exit_status}"


def _with(obj: Obj, spec: Obj, annotations: dict[str, str]) -> Obj:
    meta = obj["metadata"]
    return {**obj, "spec": spec, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                      **annotations}}}


def claim_binding(claim: Obj, volume_name: str, capacity: str, modes: list[str], class_name: str | None,
                  ) -> list[Op]:
    """The claim's half of a binding: its volumeName (and the default class it had not named) and its
    status, at the resourceVersion read."""
    spec = {**(claim.get("spec") or {}), "volumeName": volume_name}
    annotations = {BIND_COMPLETED: YES}
    if not (claim.get("spec") or {}).get("volumeName"):
        annotations[BOUND_BY_CONTROLLER] = YES
    if class_name is not None:
        spec["storageClassName"] = class_name
    status = {**(claim.get("status") or {}), "phase": "Bound", "capacity": {"storage": capacity},
              "accessModes": modes}
    namespace, name = key_of(claim)
    return [Replace(_with(claim, spec, annotations), claim["metadata"]["resourceVersion"]),
            UpdateStatus(CLAIM, namespace, name, status)]


def volume_binding(volume: Obj, claim: Obj) -> list[Op]:
    """The volume's half: its claimRef to this very claim (uid) and phase Bound."""
    namespace, name = key_of(claim)
    ref = {"namespace": namespace, "name": name, "uid": uid_of(claim)}
    spec = {**(volume.get("spec") or {}), "claimRef": ref}
    annotations = {} if claim_ref(volume) is not None else {BOUND_BY_CONTROLLER: YES}
    return [Replace(_with(volume, spec, annotations), volume["metadata"]["resourceVersion"]),
            UpdateStatus(VOLUME, "", name_of(volume), {"phase": "Bound"})]


class VolumeController(LeaderLoop):
    name = "persistent-volume"
    fenced = True  # it makes volumes from what it read: a new leader first applies what the last committed

    def __init__(self, store: Store, now: Callable[[], str], uid: Callable[[], str],
                 hosts: HostCommands | None, period: float = 5.0, retry_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, period)
        self.now = now
        self.uid = uid
        self.hosts = hosts
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._said: dict[tuple[str, str], str] = {}  # (uid, reason) -> the message last told
        self._retry_at: dict[str, float] = {}  # uid of a claim or volume whose host command failed
        store.add_listener(self._changed)

    def _changed(self, events: list[WatchEvent]) -> None:
        """Storage changed, or a pod using a claim came, was bound, finished or went."""
        if any(e.kind in STORAGE_KINDS or (e.kind == "Pod" and pod_claims(e.obj)) for e in events):
            self.wake()

    def started_leading(self) -> None:
        self._said.clear()
        self._retry_at.clear()

    def reconcile(self) -> None:
        (claims, volumes, classes, nodes), _ = self.store.read(lambda s: (
            s.list(CLAIM), s.list(VOLUME), s.list("StorageClass"), s.list("Node")))
        storage = StorageState.of(claims, volumes, classes)
        pods: list[Obj] = []
        if wants_pods(claims, storage):
            pods, _ = self.store.read(lambda s: s.list("Pod"))
        by_name = {name_of(n): n for n in nodes}
        commands: list[Command] = []
        for action in plan_storage(storage, by_name, pods):
            try:
                commands.extend(self._commands(action, by_name))
            except Exception as err:  # one bad object must not stop the others' steps
                self.quarantine(getattr(action, "claim", None) or getattr(action, "volume", None)
                                or getattr(action, "obj", None), err)
        present = {uid_of(o) for o in (*claims, *volumes)}
        self._said = {k: v for k, v in self._said.items() if k[0] in present}
        if not commands:
            return
        answers = self.store.propose_all(commands)
        refused = [a for a in answers if isinstance(a, ApiError)]
        for error in refused:  # changed meanwhile: the next round reads it again
            log.debug("volumes: write refused: %s", error.message)
        if len(refused) < len(answers):
            log.info("volumes: %d write(s), %d refused", len(answers) - len(refused), len(refused))

    # --- the steps -----------------------------------------------------------------------------
    def _commands(self, action: Action, nodes: dict[str, Obj]) -> list[Command]:
        if isinstance(action, Bind):
            volume, claim = action.volume, action.claim
            return [Batch((*volume_binding(volume, claim),
                           *claim_binding(claim, name_of(volume), str(volume["spec"]["capacity"]["storage"]),
                                          access_modes(volume), action.class_name)))]
        if isinstance(action, Provision):
            return self._provision(action, nodes)
        if isinstance(action, Pending):
            return [self._pending(action)]
        if isinstance(action, SetPhase):
            return [self._phase(action.obj, action.phase, action.message)]
        if isinstance(action, Tell):
            return self._tell(action.obj, action.reason, action.message, action.warning)
        if isinstance(action, Unbind):
            volume = action.volume
            spec = {k: v for k, v in (volume.get("spec") or {}).items() if k != "claimRef"}
            meta = volume["metadata"]
            annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if k != BOUND_BY_CONTROLLER}
            unbound = {**volume, "spec": spec, "metadata": {**meta, "annotations": annotations}}
            return [Batch((Replace(unbound, meta["resourceVersion"]),
                           UpdateStatus(VOLUME, "", name_of(volume), {"phase": "Available"})))]
        if isinstance(action, Reclaim):
            return self._reclaim(action.volume, nodes)
        if isinstance(action, Remove):
            namespace, name = key_of(action.obj)
            return [Delete(action.obj["kind"], namespace, name, action.obj["metadata"]["resourceVersion"])]
        raise TypeError(f"not a storage step: {action!r}")  # pragma: no cover

    def _pending(self, action: Pending) -> Command:
        claim = action.claim
        namespace, name = key_of(claim)
        status = {**(claim.get("status") or {}), "phase": "Pending"}
        if action.class_name is None:
            return UpdateStatus(CLAIM, namespace, name, status, claim["metadata"]["resourceVersion"])
        spec = {**(claim.get("spec") or {}), "storageClassName": action.class_name}
        ops: list[Op] = [Replace({**claim, "spec": spec}, claim["metadata"]["resourceVersion"])]
        if action.set_phase:
            ops.append(UpdateStatus(CLAIM, namespace, name, status))
        return Batch(tuple(ops))

    @staticmethod
    def _phase(obj: Obj, phase: str, message: str) -> Command:
        namespace, name = key_of(obj)
        status = {k: v for k, v in (obj.get("status") or {}).items() if k not in ("message", "reason")}
        status["phase"] = phase
        if message:
            status["message"] = message
        return UpdateStatus(obj["kind"], namespace, name, status, obj["metadata"]["resourceVersion"])

    def _tell(self, obj: Obj, reason: str, message: str, warning: bool = True) -> list[Command]:
        said = (uid_of(obj), reason)
        if self._said.get(said) == message:
            return []
        self._said[said] = message
        log.info("%s %s: %s: %s", obj["kind"], name_of(obj), reason, message)
        namespace = str(obj["metadata"].get("namespace") or "default")
        existing = self.store.get("Event", namespace, event_name(obj, reason))
        return [record_event(existing, obj, reason, message, warning=warning, component=COMPONENT,
                             uid=self.uid(), now=self.now())]

    def _waiting(self, uid: str) -> bool:
        return self.clock() < self._retry_at.get(uid, 0.0)

    def _on_host(self, node: Obj | None, node_name: str, argv: list[str]) -> str | None:
        if self.hosts is None:
            return "the masters have no SSH key (ssh_key_file) to reach the storage's host"
        if node is None:
            return f'node "{node_name}" not found'
        return self.hosts.run(node, argv)

    def _provision(self, action: Provision, nodes: dict[str, Obj]) -> list[Command]:
        claim, klass = action.claim, action.klass
        if self._waiting(uid_of(claim)):
            return []
        class_name = name_of(klass)
        server = str((klass.get("parameters") or {}).get("server") or "")
        address = (nodes.get(server) or {}).get("spec", {}).get("address") if server else None
        try:
            plan = provision_plan(klass, claim, action.node, address)
            failure = self._on_host(nodes.get(plan.node), plan.node, plan.make)
        except NotProvisionable as err:
            failure = str(err)
        if failure is not None:
            self._retry_at[uid_of(claim)] = self.clock() + self.retry_seconds
            return self._tell(claim, "ProvisioningFailed",
                              f'Failed to provision volume with StorageClass "{class_name}": {failure}')
        self._retry_at.pop(uid_of(claim), None)
        volume = plan.volume
        made = Batch((Create(volume, self.uid(), self.now()),
                      *claim_binding(claim, name_of(volume), volume["spec"]["capacity"]["storage"],
                                     volume["spec"]["accessModes"], action.class_name)))
        return [made, *self._tell(claim, "ProvisioningSucceeded",
                                  f"Successfully provisioned volume {name_of(volume)} using "
                                  f"{klass['provisioner']} on node {plan.node}", warning=False)]

    def _reclaim(self, volume: Obj, nodes: dict[str, Obj]) -> list[Command]:
        if self._waiting(uid_of(volume)):
            return []
        try:
            plan = reclaim_plan(volume)
            failure = self._on_host(nodes.get(plan.node), plan.node, plan.remove)
        except NotProvisionable as err:
            failure = str(err)
        if failure is None:
            self._retry_at.pop(uid_of(volume), None)
            log.info("volumes: %s's data deleted on %s", name_of(volume), plan.node)
            return [Delete(VOLUME, "", name_of(volume), volume["metadata"]["resourceVersion"])]
        self._retry_at[uid_of(volume)] = self.clock() + self.retry_seconds
        message = f"failed to delete the volume's data: {failure}"
        return [self._phase(volume, "Failed", message), *self._tell(volume, "VolumeFailedDelete", message)]
