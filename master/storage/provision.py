"""What a class's provisioner makes for a claim, and the host commands that make and remove it.

A provisioned volume is a directory named after the volume, `pvc-<claim uid>` as Kubernetes names
them, under the class's base path: on the node the claim's first pod was scheduled to
(`berth.io/local`: a `local` volume with node affinity to that node) or on the class's storage node
(`berth.io/shared`: an `sshfs` or `nfs` volume of that node). Paths are only ever built from the
class's validated base path and the volume's name, never from anything a claim's author chose, and
checked to stay one level under that base; the commands are argument lists (no shell reads them),
with `--` before the path. Removing a volume's data is planned only for a volume a provisioner of
Berth made (annotated so), from its own path, checked the same way.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from berth.objects import Obj
from master.objects.kinds import API_VERSION
from master.objects.storage_kinds import (
    DEFAULT_LOCAL_PATH,
    LOCAL_PROVISIONER,
    PROVISIONERS,
    SHARED_PROVISIONER,
    class_parameter_problem,
)
from master.storage.volumes import (
    HOSTNAME_LABEL,
    PROVISIONED_BY,
    STORAGE_NODE,
    access_modes,
    annotation,
    name_of,
    request_text,
    uid_of,
)

_VOLUME_NAME = re.compile(r"^pvc-[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class NotProvisionable(ValueError):
    """Why a plan cannot be made: the message an event tells."""


@dataclass(frozen=True)
class ProvisionPlan:
    volume: Obj  # the PersistentVolume, bound to the claim, to store once its directory exists
    node: str  # the Node whose host gets the directory
    make: list[str]  # the command that makes it there


@dataclass(frozen=True)
class ReclaimPlan:
    node: str
    remove: list[str]


def volume_name(claim: Obj) -> str:
    """`pvc-<claim uid>`, as Kubernetes names a provisioned volume: one claim, one name, so a plan made
    twice (a new leader, a retry) makes the same volume."""
    name = f"pvc-{uid_of(claim).lower()}"
    if len(name) > 63 or not _VOLUME_NAME.match(name):
        raise NotProvisionable(f"the claim's uid {uid_of(claim)!r} makes no volume name")
    return name


def base_path(klass: Obj) -> str:
    """The class's base directory, normalised (the local provisioner's default when it names none)."""
    provisioner = str(klass.get("provisioner") or "")
    parameters = klass.get("parameters") if isinstance(klass.get("parameters"), dict) else {}
    problem = class_parameter_problem(provisioner, parameters) if provisioner in PROVISIONERS else \
        f"provisioner {provisioner!r} is not one of Berth's"
    if problem:
        raise NotProvisionable(problem)
    base = posixpath.normpath(str(parameters.get("path") or DEFAULT_LOCAL_PATH))
    if base == "/":
        raise NotProvisionable("the class's path is /: volumes go in a directory of their own")
    return base


def volume_path(base: str, name: str) -> str:
    """`base/name`, checked to be exactly one level under `base` (whatever the two were)."""
    path = posixpath.join(base, name)
    if (not _VOLUME_NAME.match(name) or posixpath.normpath(path) != path or posixpath.dirname(path) != base
            or not base.startswith("/") or base == "/"):
        raise NotProvisionable(f"{path!r} is not one level under {base!r}")
    return path


def make_command(path: str) -> list[str]:
    return ["mkdir", "-p", "-m", "0777", "--", path]


def remove_command(path: str) -> list[str]:
    return ["rm", "-rf", "--one-file-system", "--", path]


def provision_plan(klass: Obj, claim: Obj, node: str | None, server_address: str | None = None
                   ) -> ProvisionPlan:
    """The volume `klass` makes for `claim`. `node`: where the claim's first pod was scheduled
    (required by berth.io/local); `server_address`: the storage node's address (berth.io/shared over
    NFS mounts it by address)."""
    base, name = base_path(klass), volume_name(claim)
    path = volume_path(base, name)
    provisioner = str(klass["provisioner"])
    meta = claim["metadata"]
    if not request_text(claim):
        raise NotProvisionable("the claim requests no storage")
    spec: Obj = {
        "capacity": {"storage": request_text(claim)},
        "accessModes": access_modes(claim),
        "persistentVolumeReclaimPolicy": str(klass.get("reclaimPolicy") or "Delete"),
        "storageClassName": name_of(klass),
        "volumeMode": "Filesystem",
        "claimRef": {"namespace": str(meta.get("namespace") or ""), "name": str(meta["name"]),
                     "uid": uid_of(claim)},
    }
    if provisioner == LOCAL_PROVISIONER:
        if not node or not _NODE_NAME.match(node):
            raise NotProvisionable(f"{LOCAL_PROVISIONER} makes a volume on the node of the claim's first "
                                   "pod, and none is scheduled yet")
        host = node
        spec["local"] = {"path": path}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}
    else:
        parameters = klass["parameters"]
        host = str(parameters["server"])
        if parameters.get("protocol", "sshfs") == "nfs":
            if not server_address:
                raise NotProvisionable(f"the storage node {host} has no address")
            spec["nfs"] = {"server": server_address, "path": path}
        else:
            spec["sshfs"] = {"server": host, "path": path}
    volume: Obj = {
        "apiVersion": API_VERSION, "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {},
                     "annotations": {PROVISIONED_BY: provisioner, STORAGE_NODE: host}},
        "spec": spec, "status": {"phase": "Bound"},
    }
    return ProvisionPlan(volume, host, make_command(path))


def volume_source_path(volume: Obj) -> str | None:
    spec = volume.get("spec") or {}
    for source in ("local", "sshfs", "nfs", "hostPath"):
        if isinstance(spec.get(source), dict):
            path = spec[source].get("path")
            return path if isinstance(path, str) else None
    return None


def reclaim_plan(volume: Obj) -> ReclaimPlan:
    """How a Released volume with reclaim policy Delete loses its data: only one a provisioner of
    Berth made, on its storage node, at its own path, which must be `<dir>/<its name>`."""
    provisioner = annotation(volume, PROVISIONED_BY)
    if provisioner not in PROVISIONERS:
        raise NotProvisionable("no provisioner of Berth made this volume, so none deletes it: delete its "
                               "data and the PersistentVolume by hand")
    node, name, path = annotation(volume, STORAGE_NODE), name_of(volume), volume_source_path(volume)
    if not _NODE_NAME.match(node):
        raise NotProvisionable(f"the volume names no storage node ({STORAGE_NODE})")
    if path is None or not path.startswith("/"):
        raise NotProvisionable("the volume has no path to delete")
    checked = volume_path(posixpath.dirname(path), name)  # raises unless exactly <dir>/<name>
    if checked != path:
        raise NotProvisionable(f"{path!r} is not the volume's own directory")
    if provisioner == SHARED_PROVISIONER and (volume.get("spec") or {}).get("local") is not None:
        raise NotProvisionable("a shared volume with a local source: not made by Berth")
    return ReclaimPlan(node, remove_command(path))
