"""The schemas of storage: PersistentVolume, PersistentVolumeClaim and StorageClass, Kubernetes' core/v1
and storage.k8s.io/v1 shapes under apiVersion berth/v1.

Kept apart from kinds.py, which makes the whole objects of these parts (the envelope with its
metadata), so that kinds.py stays readable; this module needs nothing of it. What the cluster does
with them (binding, provisioning, protection) is master/storage/ and master/controllers/volumes.py.
Every value is bounded and unknown fields are refused, as everywhere; fields Kubernetes users write
that Berth does not act on yet are refused by name (`not_supported_yet`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from berth.quantity import memory_bytes
from master.objects.fields import (
    DNS1123_LABEL,
    NOT_SUPPORTED_YET,
    AbsolutePath,
    DnsLabel,
    HostAddress,
    LabelKey,
    LabelValue,
    MemoryQuantity,
    Message,
    Reason,
    Timestamp,
    Uid,
    check_absolute_path,
    not_supported_yet,
)

LOCAL_PROVISIONER = "berth.io/local"  # a directory on the node the claim's first pod is scheduled to
SHARED_PROVISIONER = "berth.io/shared"  # a directory on one storage node, mounted over sshfs or NFS
PROVISIONERS = (LOCAL_PROVISIONER, SHARED_PROVISIONER)
DEFAULT_LOCAL_PATH = "/var/lib/berth/volumes"
SHARED_PROTOCOLS = ("sshfs", "nfs")
# Kubernetes' annotation: a class so marked is the one claims without storageClassName get
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
CLAIM_FINALIZER = "kubernetes.io/pvc-protection"
VOLUME_FINALIZER = "kubernetes.io/pv-protection"
# What a DELETE leaves in metadata.finalizers while the object is kept (master/store/state.py)
PROTECTION_FINALIZERS = {"PersistentVolumeClaim": CLAIM_FINALIZER, "PersistentVolume": VOLUME_FINALIZER}
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
MAX_PATH = 4096
_PARAMETER_NAME = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


class _Strict(BaseModel):
    """Unknown fields are errors (as kinds.Strict: this module does not import kinds.py)."""

    model_config = ConfigDict(extra="forbid")


def _check_storage(value: str) -> str:
    if memory_bytes(value) <= 0:
        raise ValueError("a storage quantity must be more than 0")
    return value


def _check_finalizers(value: list[str] | None) -> list[str] | None:
    """Finalizers are the system's: Berth's own protection (shown on a PersistentVolume or a claim
    being deleted) may be sent back as read; a user's own are not supported."""
    others = sorted(set(value or []) - set(PROTECTION_FINALIZERS.values()))
    if others:
        raise PydanticCustomError(NOT_SUPPORTED_YET, "not supported yet: {what}", {
            "what": f"finalizer {others[0]!r}: Berth's only finalizers are its storage protection "
                    f"({', '.join(PROTECTION_FINALIZERS.values())}), which it sets itself"})
    return value


VolumePath = AbsolutePath
StorageQuantity = Annotated[MemoryQuantity, AfterValidator(_check_storage)]
AccessMode = Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
AccessModes = Annotated[list[AccessMode], Field(min_length=1, max_length=4)]
ClassName = DnsLabel | Literal[""]  # "": no class, as Kubernetes reads it
Finalizers = Annotated[list[Annotated[str, StringConstraints(max_length=253)]] | None,
                       Field(default=None, max_length=8), AfterValidator(_check_finalizers)]


def _distinct(modes: list[str]) -> list[str]:
    if len(set(modes)) != len(modes):
        raise ValueError("accessModes lists a mode twice")
    return modes


def _filesystem(value: str) -> str:
    if value != "Filesystem":
        raise PydanticCustomError(NOT_SUPPORTED_YET, "not supported yet: {what}", {
            "what": f"volumeMode {value} (Berth's volumes are Filesystem)"})
    return value


VolumeMode = Annotated[Literal["Filesystem", "Block"], AfterValidator(_filesystem)]


class Storage(_Strict):
    storage: StorageQuantity


class NodeSelectorRequirement(_Strict):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _values_as_the_operator_needs(self) -> NodeSelectorRequirement:
        """Kubernetes' rules: In and NotIn name values, Exists and DoesNotExist none."""
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class NodeSelectorTerm(_Strict):
    matchExpressions: list[NodeSelectorRequirement] = Field(min_length=1, max_length=16)
    matchFields: not_supported_yet("matchFields (a node's labels are matched, and kubernetes.io/hostname "
                                   "is its name)") = None


class NodeSelector(_Strict):
    nodeSelectorTerms: list[NodeSelectorTerm] = Field(min_length=1, max_length=16)


class VolumeNodeAffinity(_Strict):
    required: NodeSelector


class ClaimReference(_Strict):
    """The claim a volume is bound to, or reserved for (`uid` unset: whichever claim of that name)."""

    kind: Literal["PersistentVolumeClaim"] | None = None
    apiVersion: Literal["v1", "berth/v1"] | None = None
    namespace: DnsLabel
    name: DnsLabel
    uid: Uid | None = None


class LocalVolumeSource(_Strict):
    path: VolumePath


class HostPathVolumeSource(_Strict):
    path: VolumePath
    type: Literal["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                  "BlockDevice"] | None = None


class NFSVolumeSource(_Strict):
    server: HostAddress
    path: VolumePath
    readOnly: bool = False


class SshfsVolumeSource(_Strict):
    """Berth's own: a directory of the storage node `server` (a Node's name), mounted over SSH."""

    server: DnsLabel
    path: VolumePath


VOLUME_SOURCES = ("local", "hostPath", "nfs", "sshfs")


class PersistentVolumeSpec(_Strict):
    capacity: Storage
    accessModes: Annotated[AccessModes, AfterValidator(_distinct)]
    persistentVolumeReclaimPolicy: Literal["Retain", "Delete"] = "Retain"  # by hand: Retain, as Kubernetes
    storageClassName: ClassName | None = None
    claimRef: ClaimReference | None = None  # the binder's; set by hand, it reserves the volume for that claim
    nodeAffinity: VolumeNodeAffinity | None = None
    volumeMode: VolumeMode = "Filesystem"
    local: LocalVolumeSource | None = None
    hostPath: HostPathVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    sshfs: SshfsVolumeSource | None = None
    mountOptions: not_supported_yet("mountOptions") = None

    @model_validator(mode="after")
    def _one_source(self) -> PersistentVolumeSpec:
        given = [name for name in VOLUME_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a PersistentVolume needs exactly one of {', '.join(VOLUME_SOURCES)}"
                             + (f" (given: {', '.join(given)})" if given else ""))
        if self.local is not None and self.nodeAffinity is None:
            raise ValueError("a local volume needs nodeAffinity: it is on one node (as in Kubernetes)")
        return self


class PersistentVolumeStatus(_Strict):
    phase: Literal["Pending", "Available", "Bound", "Released", "Failed"] | None = None
    message: Message | None = None
    reason: Reason | None = None
    lastPhaseTransitionTime: Timestamp | None = None


class ClaimResources(_Strict):
    requests: Storage


class PersistentVolumeClaimSpec(_Strict):
    accessModes: Annotated[AccessModes, AfterValidator(_distinct)]
    resources: ClaimResources
    # unset: the default class (storageclass.kubernetes.io/is-default-class), written in by the binder
    storageClassName: ClassName | None = None
    volumeName: DnsLabel | None = None  # the volume asked for; the binder writes the one it bound
    volumeMode: VolumeMode = "Filesystem"
    selector: not_supported_yet("a claim's selector: ask for one volume with volumeName") = None
    dataSource: not_supported_yet("a claim's dataSource (volumes start empty)") = None
    dataSourceRef: not_supported_yet("a claim's dataSourceRef (volumes start empty)") = None
    volumeAttributesClassName: not_supported_yet("volume attributes classes") = None


class PersistentVolumeClaimStatus(_Strict):
    phase: Literal["Pending", "Bound", "Lost"] | None = None
    capacity: Storage | None = None
    accessModes: list[AccessMode] | None = Field(default=None, max_length=4)


ParameterName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=_PARAMETER_NAME)]
ParameterValue = Annotated[str, StringConstraints(max_length=MAX_PATH)]
_PARAMETERS = {LOCAL_PROVISIONER: ("path",), SHARED_PROVISIONER: ("server", "path", "protocol")}


def class_parameter_problem(provisioner: str, parameters: dict[str, str]) -> str | None:
    """What is wrong with a class's parameters for its provisioner (None: nothing)."""
    known = _PARAMETERS.get(provisioner, ())
    for name in parameters:
        if name not in known:
            return f"unknown parameter {name!r} for {provisioner} (its parameters: {', '.join(known)})"
    if "path" in parameters:
        try:
            check_absolute_path(parameters["path"])
        except ValueError as err:
            return f"parameter 'path': {err}"
    if provisioner == SHARED_PROVISIONER:
        server = parameters.get("server")
        if not server or not re.match(DNS1123_LABEL, server) or len(server) > 63:
            return "parameter 'server' is required: the name of the Node that holds the volumes"
        if "path" not in parameters:
            return "parameter 'path' is required: the base directory on the server"
        if parameters.get("protocol", "sshfs") not in SHARED_PROTOCOLS:
            return f"parameter 'protocol' must be one of {', '.join(SHARED_PROTOCOLS)}"
    return None


class StorageClassFields(_Strict):
    """A StorageClass's own fields (top level, beside metadata, as in storage.k8s.io/v1)."""

    provisioner: str = Field(max_length=253, description=f"one of {', '.join(PROVISIONERS)}",
                             json_schema_extra={"enum": list(PROVISIONERS)})  # published: a 400 otherwise
    parameters: dict[ParameterName, ParameterValue] = Field(default_factory=dict, max_length=16)
    reclaimPolicy: Literal["Delete", "Retain"] = "Delete"
    volumeBindingMode: Literal["Immediate", "WaitForFirstConsumer"] = Field(default="Immediate",
                                                                           validate_default=True)
    allowVolumeExpansion: not_supported_yet("volume expansion") = None
    mountOptions: not_supported_yet("mountOptions") = None
    allowedTopologies: not_supported_yet("allowedTopologies (berth.io/local provisions on the node the "
                                         "first pod is scheduled to)") = None

    @field_validator("provisioner")
    @classmethod
    def _ours(cls, value: str) -> str:
        if value not in PROVISIONERS:
            raise ValueError(f"provisioner {value!r} is not one of Berth's: {', '.join(PROVISIONERS)}")
        return value

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        provisioner = info.data.get("provisioner")
        if provisioner in PROVISIONERS:
            problem = class_parameter_problem(provisioner, value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("volumeBindingMode")
    @classmethod
    def _local_waits(cls, value: str, info: ValidationInfo) -> str:
        """A local volume is made on one node: the one the claim's first pod goes to."""
        if info.data.get("provisioner") == LOCAL_PROVISIONER and value != "WaitForFirstConsumer":
            raise ValueError(f"{LOCAL_PROVISIONER} makes a volume on the node the claim's first pod is "
                             "scheduled to: volumeBindingMode must be WaitForFirstConsumer")
        return value

