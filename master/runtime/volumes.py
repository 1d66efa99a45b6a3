"""A pod's volumes on its host, as data: pure, from the pod and the objects it names.

Every pod gets a directory of its own on its host, `/var/lib/berth/pods/UID` (kubelet's
`/var/lib/kubelet/pods/UID`), and each volume a directory in it, `volumes/NAME`:
- emptyDir: that directory (0777, as Kubernetes makes it), or a tmpfs there for medium Memory,
  sized by sizeLimit; shared by the pod's containers, removed with the pod;
- configMap, secret: files the master writes there over SFTP (files.py), a secret's on a tmpfs
  (never on the host's disk), swapped whole on a change (`..data`, as kubelet's atomic writer);
  always mounted read-only, as Kubernetes does;
- hostPath: the host's own path, checked (or made) by its type; no directory of the pod's.
A mount with a subPath of an emptyDir or hostPath volume is bound, on the host, onto a staging
path (`volume-subpaths/VOLUME/CONTAINER/INDEX`) that the container mounts; of a configMap or
secret, it names a file or directory of the current `..data`.

`host_plan` says what the host must have (volume_host.py does it), `files` what the master
writes, `container_mounts` what each container's run mounts, and `volume_digest` a digest of
everything the volumes hold, which the runtime compares to what it last set up on the host.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from berth.objects import Obj
from berth.quantity import memory_bytes
from master.runtime.env import Lookup
from master.runtime.volume_host import PODS_DIR

FAILED_MOUNT = "FailedMount"  # the reason of an outcome, and of the event kubelet records
UID = re.compile(r"^[a-zA-Z0-9-]{1,64}$")
WRITTEN = ("configMap", "secret")  # the sources whose files the master writes
EMPTY_DIR_MODE = 0o777
FILES_DIR_MODE = 0o755


class VolumeError(ValueError):
    """A volume cannot be set up: the pod waits (ContainerCreating), told as a FailedMount event."""


@dataclass(frozen=True)
class FileSet:
    """The files of one configMap or secret volume: relative path -> (content, mode)."""

    volume: str
    directory: str
    files: dict[str, tuple[bytes, int]]
    digest: str


@dataclass(frozen=True)
class HostMount:
    """One bind of a container's run: `--volume=SOURCE:TARGET[:ro]`."""

    source: str
    target: str
    read_only: bool

    def option(self) -> str:
        return f"--volume={self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True)
class HostPlan:
    """What volume_host.py's `setup` is sent, as JSON."""

    pod_dir: str
    dirs: list[Obj] = field(default_factory=list)
    tmpfs: list[Obj] = field(default_factory=list)
    host_paths: list[Obj] = field(default_factory=list)
    binds: list[Obj] = field(default_factory=list)  # a claim's local or hostPath volume
    sshfs: list[Obj] = field(default_factory=list)  # a claim's shared volume
    nfs: list[Obj] = field(default_factory=list)
    subpaths: list[Obj] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps({"pod_dir": self.pod_dir, "dirs": self.dirs, "tmpfs": self.tmpfs,
                           "host_paths": self.host_paths, "binds": self.binds, "sshfs": self.sshfs,
                           "nfs": self.nfs, "subpaths": self.subpaths}).encode()


def pod_dir(uid: str) -> str:
    if not UID.match(uid):
        raise VolumeError(f"pod uid {uid!r} cannot name a directory")
    return f"{PODS_DIR}/{uid}"


def volume_dir(uid: str, name: str) -> str:
    return f"{pod_dir(uid)}/volumes/{name}"


def staging_path(uid: str, volume: str, container: str, index: int) -> str:
    return f"{pod_dir(uid)}/volume-subpaths/{volume}/{container}/{index}"


def has_volumes(pod: Obj) -> bool:
    return bool(pod["spec"].get("volumes"))


def _all_containers(pod: Obj) -> list[Obj]:
    return [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]


def _volumes(pod: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in pod["spec"].get("volumes") or []}


def _source(volume: Obj) -> str:
    return next(k for k in volume if k != "name")


def claimed_volume(pod: Obj, volume: Obj, lookup: Lookup) -> Obj:
    """The PersistentVolume a pod's claim is bound to; VolumeError while there is none (the pod
    waits, as kubelet's FailedMount: the binder may not have bound it yet)."""
    name = volume["persistentVolumeClaim"]["claimName"]
    claim = lookup("PersistentVolumeClaim", pod["metadata"]["namespace"], name)
    if claim is None:
        raise VolumeError(f'persistentvolumeclaim "{name}" not found')
    bound = (claim.get("spec") or {}).get("volumeName")
    if not bound or (claim.get("status") or {}).get("phase") != "Bound":
        raise VolumeError(f'persistentvolumeclaim "{name}" is not bound yet')
    found = lookup("PersistentVolume", "", bound)
    if found is None:
        raise VolumeError(f'persistentvolume "{bound}" of claim "{name}" not found')
    return found


def _claim_plan(plan: HostPlan, pod: Obj, volume: Obj, lookup: Lookup) -> None:
    """Every claim's volume is mounted at the pod's `volumes/NAME`, as the other volumes are: a
    local or hostPath one bound there, a shared one by sshfs (its server is a Node: its address)
    or NFS. The pod's cleanup takes the mount off and never touches the data."""
    pv = claimed_volume(pod, volume, lookup)
    spec, where = pv.get("spec") or {}, volume_dir(pod["metadata"]["uid"], volume["name"])
    read_only = bool(volume["persistentVolumeClaim"].get("readOnly"))
    if spec.get("local"):
        plan.binds.append({"source": spec["local"]["path"], "path": where, "type": "Directory"})
    elif spec.get("hostPath"):
        plan.binds.append({"source": spec["hostPath"]["path"], "path": where,
                           "type": spec["hostPath"].get("type") or "Directory"})
    elif spec.get("sshfs"):
        server = lookup("Node", "", spec["sshfs"]["server"])
        if server is None:
            raise VolumeError(f'persistentvolume "{pv["metadata"]["name"]}": its storage server, node '
                              f'"{spec["sshfs"]["server"]}", is not in the cluster')
        plan.sshfs.append({"path": where, "server": server["spec"]["address"],
                           "port": int(server["spec"].get("sshPort") or 22), "remote": spec["sshfs"]["path"],
                           "read_only": read_only})
    elif spec.get("nfs"):
        plan.nfs.append({"path": where, "server": spec["nfs"]["server"], "remote": spec["nfs"]["path"],
                         "read_only": read_only or bool(spec["nfs"].get("readOnly"))})
    else:
        raise VolumeError(f'persistentvolume "{pv["metadata"]["name"]}" has no source this runtime mounts')


def host_plan(pod: Obj, lookup: Lookup) -> HostPlan:
    uid = pod["metadata"]["uid"]
    plan = HostPlan(pod_dir(uid))
    volumes = _volumes(pod)
    for name, volume in volumes.items():
        source = _source(volume)
        where = volume_dir(uid, name)
        if source == "emptyDir" and volume["emptyDir"].get("medium") == "Memory":
            limit = volume["emptyDir"].get("sizeLimit")
            plan.tmpfs.append({"path": where, "size": memory_bytes(limit) if limit is not None else None,
                               "mode": EMPTY_DIR_MODE})
        elif source == "emptyDir":
            plan.dirs.append({"path": where, "mode": EMPTY_DIR_MODE})
        elif source == "secret":
            plan.tmpfs.append({"path": where, "size": None, "mode": FILES_DIR_MODE})
        elif source == "configMap":
            plan.dirs.append({"path": where, "mode": FILES_DIR_MODE})
        elif source == "hostPath":
            given = volume["hostPath"]
            plan.host_paths.append({"path": given["path"], "type": given.get("type", "")})
        else:
            _claim_plan(plan, pod, volume, lookup)
    for container in _all_containers(pod):
        for index, mount in enumerate(container.get("volumeMounts") or []):
            volume = volumes[mount["name"]]
            if mount.get("subPath") and _source(volume) not in WRITTEN:
                plan.subpaths.append({"root": _root(uid, volume), "path": mount["subPath"],
                                      "staging": staging_path(uid, mount["name"], container["name"], index)})
    return plan


def _root(uid: str, volume: Obj) -> str:
    """Where a volume's content is on the host: a claim's is mounted in the pod's directory too."""
    if _source(volume) == "hostPath":
        return str(volume["hostPath"]["path"])
    return volume_dir(uid, volume["name"])


def container_mounts(pod: Obj, container: Obj) -> list[HostMount]:
    uid = pod["metadata"]["uid"]
    volumes = _volumes(pod)
    mounts = []
    for index, mount in enumerate(container.get("volumeMounts") or []):
        volume = volumes[mount["name"]]
        written = _source(volume) in WRITTEN
        read_only = bool(mount.get("readOnly")) or written or bool(
            (volume.get("persistentVolumeClaim") or {}).get("readOnly"))
        sub = mount.get("subPath")
        if sub and written:
            path = f"{volume_dir(uid, volume['name'])}/..data/{sub}"
        elif sub:
            path = staging_path(uid, mount["name"], container["name"], index)
        else:
            path = _root(uid, volume)
        mounts.append(HostMount(path, mount["mountPath"], read_only))
    return mounts


def named_objects(pod: Obj) -> list[tuple[str, str]]:
    """The (kind, name) of each ConfigMap and Secret the pod's volumes hold."""
    return [_named_object(v) for v in pod["spec"].get("volumes") or [] if _source(v) in WRITTEN]


def _named_object(volume: Obj) -> tuple[str, str]:
    """The (kind, name) of the ConfigMap or Secret a written volume holds."""
    if "configMap" in volume:
        return "ConfigMap", str(volume["configMap"]["name"])
    return "Secret", str(volume["secret"]["secretName"])


def _decoded(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VolumeError(f"{what} is not base64") from None


def files(pod: Obj, lookup: Lookup) -> list[FileSet]:
    """Each configMap and secret volume's files, resolved; raises VolumeError for a missing
    object or key that is not optional (the pod waits, as kubelet's FailedMount)."""
    uid, namespace = pod["metadata"]["uid"], pod["metadata"]["namespace"]
    made = []
    for name, volume in _volumes(pod).items():
        source = _source(volume)
        if source not in WRITTEN:
            continue
        spec = volume[source]
        kind, object_name = _named_object(volume)
        found = lookup(kind, namespace, object_name)
        data = dict((found or {}).get("data") or {})
        if found is None and not spec.get("optional"):
            raise VolumeError(f'{kind.lower()} "{object_name}" not found (volume "{name}")')
        default_mode = int(spec.get("defaultMode", 0o644))
        items = spec.get("items")
        chosen = [(item["key"], item["path"], item.get("mode")) for item in items] if items else \
            [(key, key, None) for key in sorted(data)]
        files: dict[str, tuple[bytes, int]] = {}
        for key, path, mode in chosen:
            if key not in data:
                if spec.get("optional"):
                    continue
                raise VolumeError(f'{kind.lower()} "{object_name}" has no key "{key}" (volume "{name}")')
            what = f'{kind.lower()} "{object_name}" key "{key}"'
            content = _decoded(str(data[key]), what) if kind == "Secret" else str(data[key]).encode()
            files[path] = (content, int(mode) if mode is not None else default_mode)
        listed = repr(sorted((p, c, m) for p, (c, m) in files.items()))
        digest = hashlib.sha256(listed.encode()).hexdigest()[:16]
        made.append(FileSet(name, volume_dir(uid, name), files, digest))
    return made


def volume_digest(pod: Obj, lookup: Lookup) -> str:
    """Changes when anything the pod's volumes hold changes: their spec and the versions of the
    ConfigMaps and Secrets they name (their resourceVersion, cheap to read every round)."""
    namespace = pod["metadata"]["namespace"]
    parts: list[object] = [pod["metadata"]["uid"], pod["spec"].get("volumes")]
    for volume in pod["spec"].get("volumes") or []:
        if _source(volume) in WRITTEN:
            kind, name = _named_object(volume)
            found = lookup(kind, namespace, name)
            parts.append((kind, name, None if found is None else found["metadata"].get("resourceVersion")))
        elif _source(volume) == "persistentVolumeClaim":  # the volume it is bound to
            claim = lookup("PersistentVolumeClaim", namespace, volume["persistentVolumeClaim"]["claimName"])
            parts.append(((claim or {}).get("spec") or {}).get("volumeName"))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
