"""The schema of every kind the cluster stores, and the registry of kinds.

These pydantic models are the single description of the objects: the API
validates with them and the OpenAPI document is generated from them. The store
itself keeps plain JSON-like dicts (what `model_dump` gives), so Raft commands
and snapshots never depend on these classes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from berth.kinds import KINDS as KIND_NAMES
from berth.kinds import Kind
from berth.kinds import lookup_kind as lookup_names
from berth.quantity import milli_value
from master.objects.fields import (
    NOT_SUPPORTED_YET,
    AbsolutePath,
    Bytes,
    Cidr,
    ConfigKey,
    Count,
    CpuQuantity,
    DnsLabel,
    EnvName,
    FileMode,
    HostAddress,
    HttpPath,
    ImageRef,
    Ipv4Address,
    LabelKey,
    Labels,
    LabelValue,
    MemoryQuantity,
    Message,
    MilliCpu,
    PodAddress,
    Port,
    PortName,
    Quantity,
    Reason,
    RelativePath,
    Seconds,
    Timestamp,
    Uid,
    cpu_millis,
    forbidden,
    memory_bytes,
    not_supported_yet,
)
from master.objects.network_policy_kinds import NetworkPolicySpec
from master.objects.rbac_kinds import (
    RBAC_VERSIONS,
    ClusterRoleBindingFields,
    ClusterRoleFields,
    RoleBindingFields,
    RoleFields,
)
from master.objects.storage_kinds import (
    Finalizers,
    PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus,
    PersistentVolumeSpec,
    PersistentVolumeStatus,
    StorageClassFields,
)
from master.objects.tolerations import MAX_TOLERATIONS

API_VERSION = "berth/v1"
_READ_ONLY = {"readOnly": True}  # OpenAPI: a client may send it back; writes of the spec ignore it
# A resourceVersion a client sends back (api/resources.py `_expected_rv`): a number, or its digits
SENT_RESOURCE_VERSION = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                                   {"type": "string", "pattern": "^[0-9]{0,19}$"}, {"type": "null"}]}
DISK_SIZE_LIMIT = ("sizeLimit of an emptyDir on disk (Berth enforces a size only for medium: Memory, "
                   "a tmpfs)")
NO_PROBE_ON_INIT = forbidden("an init container runs to completion, so nothing probes it (as in Kubernetes)")
# Kinds Kubernetes users may send that Berth does not have yet: refused with this reason.
FINALIZERS_NOT_YET = not_supported_yet("namespace finalizers: Berth's namespace controller empties a "
                                       "deleted namespace itself")
SERVICE_FIELD_NOT_YET = not_supported_yet("Berth's services are ClusterIP and NodePort, without external "
                                          "addresses, and every pod that is not Ready is left out")
MAX_ENDPOINT_ADDRESSES = 5000  # of a subset's addresses, ready or not: the object's size bounds them too
KINDS_NOT_YET = {"Volume": "a pod's volumes are in its spec; storage it keeps is a PersistentVolumeClaim"}


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a manifest must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _unique(items: list[Any], attr: str, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def _sent_version(value: Any) -> Any:
    """A resourceVersion as Kubernetes' clients send it, a string of digits ("" for none), is the
    number Berth keeps (validation is strict: this is said here, as the schema says it)."""
    if value == "":
        return None
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


class OwnerReference(Strict):
    """The object that made this one (a ReplicaSet's pods, a Deployment's ReplicaSets): the
    scheduler spreads an owner's replicas, and the garbage collector deletes a dependent whose
    owners are all gone (master/workloads/owners.py)."""

    apiVersion: Literal["berth/v1"] | None = None
    kind: str = Field(min_length=1, max_length=63)
    name: DnsLabel
    uid: Uid | None = None
    controller: bool = True
    blockOwnerDeletion: bool | None = None


class ObjectMeta(Strict):
    name: DnsLabel
    namespace: DnsLabel | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)
    ownerReferences: list[OwnerReference] = Field(default_factory=list, max_length=16)
    # Set by the system; accepted on input so a fetched object can be sent back.
    uid: Uid | None = None
    resourceVersion: Annotated[int | None, BeforeValidator(_sent_version)] = Field(
        default=None, ge=0, le=2**63 - 1, json_schema_extra=SENT_RESOURCE_VERSION)
    creationTimestamp: Timestamp | None = None
    generation: Count | None = None
    deletionTimestamp: Timestamp | None = None
    deletionGracePeriodSeconds: Seconds | None = None
    finalizers: Finalizers = None  # the storage protection's, shown while a deleted volume or claim is kept

    @field_validator("ownerReferences")
    @classmethod
    def _one_controller(cls, value: list[OwnerReference]) -> list[OwnerReference]:
        """Two controllers would both count the object as theirs (Kubernetes refuses it too)."""
        if sum(1 for ref in value if ref.controller) > 1:
            raise ValueError("only one ownerReference may have controller: true")
        return value


# --- Namespace -----------------------------------------------------------------------

NamespacePhase = Literal["Active", "Terminating"]


class NamespaceSpec(Strict):
    finalizers: FINALIZERS_NOT_YET = None


class NamespaceStatus(Strict):
    phase: NamespacePhase | None = None


# --- Pod -------------------------------------------------------------------------------

class ResourceList(Strict):
    cpu: CpuQuantity | None = None
    memory: MemoryQuantity | None = None


class Resources(Strict):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        req, lim = self.requests, self.limits
        if req.cpu is not None and lim.cpu is not None and cpu_millis(lim.cpu) < cpu_millis(req.cpu):
            raise ValueError("limits.cpu must be at least requests.cpu")
        if (
            req.memory is not None
            and lim.memory is not None
            and memory_bytes(lim.memory) < memory_bytes(req.memory)
        ):
            raise ValueError("limits.memory must be at least requests.memory")
        return self


class KeyRef(Strict):
    name: DnsLabel
    key: ConfigKey
    optional: bool = False


class EnvSource(Strict):
    configMapKeyRef: KeyRef | None = None
    secretKeyRef: KeyRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvSource:
        if (self.configMapKeyRef is None) == (self.secretKeyRef is None):
            raise ValueError("valueFrom needs exactly one of configMapKeyRef, secretKeyRef")
        return self


class EnvVar(Strict):
    name: EnvName
    value: str | None = None
    valueFrom: EnvSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.valueFrom is not None:
            raise ValueError("env var takes value or valueFrom, not both")
        return self


class ContainerPort(Strict):
    containerPort: Port
    hostPort: Port | None = None
    name: DnsLabel | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"


class ExecAction(Strict):
    command: list[str] = Field(min_length=1, max_length=256)


class HTTPGetAction(Strict):
    path: HttpPath = "/"
    port: Port
    scheme: Literal["HTTP"] = "HTTP"


class TCPSocketAction(Strict):
    port: Port


class Probe(Strict):
    exec: ExecAction | None = None
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    initialDelaySeconds: Seconds = 0
    periodSeconds: int = Field(default=10, ge=1, le=3600)
    timeoutSeconds: int = Field(default=1, ge=1, le=600)
    successThreshold: int = Field(default=1, ge=1, le=1000)
    failureThreshold: int = Field(default=3, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        if sum(x is not None for x in (self.exec, self.httpGet, self.tcpSocket)) != 1:
            raise ValueError("a probe needs exactly one of exec, httpGet, tcpSocket")
        return self


class VolumeMount(Strict):
    name: DnsLabel
    mountPath: AbsolutePath
    readOnly: bool = False
    subPath: RelativePath | None = None  # a path inside the volume, mounted instead of its root


class EmptyDirVolumeSource(Strict):
    """A directory made for the pod on its host, shared by its containers, gone with the pod."""

    medium: Literal["", "Memory"] = ""  # Memory: a tmpfs, counted in the host's memory
    sizeLimit: MemoryQuantity | None = None

    @model_validator(mode="after")
    def _limit_enforced(self) -> EmptyDirVolumeSource:
        if self.sizeLimit is not None and self.medium != "Memory":
            raise PydanticCustomError(NOT_SUPPORTED_YET, "not supported yet: {what}",
                                      {"what": DISK_SIZE_LIMIT})
        return self


class HostPathVolumeSource(Strict):
    """A path of the host itself: allowed only where an admin permits it (master setting
    `host_path_namespaces`, admins everywhere), since a pod that mounts the host escapes isolation."""

    path: AbsolutePath
    type: Literal["", "Directory", "DirectoryOrCreate", "File", "FileOrCreate"] = ""


class KeyToPath(Strict):
    key: ConfigKey
    path: RelativePath
    mode: FileMode | None = None


class ConfigMapVolumeSource(Strict):
    name: DnsLabel
    items: list[KeyToPath] | None = Field(default=None, max_length=1024)
    defaultMode: FileMode = 0o644
    optional: bool = False


class SecretVolumeSource(Strict):
    secretName: DnsLabel
    items: list[KeyToPath] | None = Field(default=None, max_length=1024)
    defaultMode: FileMode = 0o644
    optional: bool = False


class PersistentVolumeClaimVolumeSource(Strict):
    claimName: DnsLabel
    readOnly: bool = False


VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "persistentVolumeClaim")


class Volume(Strict):
    name: DnsLabel
    emptyDir: EmptyDirVolumeSource | None = None
    hostPath: HostPathVolumeSource | None = None
    configMap: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        given = [name for name in VOLUME_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"volume {self.name!r} needs exactly one source of {', '.join(VOLUME_SOURCES)}"
                             + (f" (it has {', '.join(given)})" if given else ""))
        return self


Capability = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Z_]+$")]
UserId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class Capabilities(Strict):
    """Linux capabilities, as Kubernetes names them (without `CAP_`; `ALL` in drop)."""

    add: list[Capability] = Field(default_factory=list, max_length=64)
    drop: list[Capability] = Field(default_factory=list, max_length=64)


class PodSecurityContext(Strict):
    """What every container of the pod runs as, unless its own securityContext says otherwise."""

    runAsUser: UserId | None = None
    runAsGroup: UserId | None = None
    runAsNonRoot: bool | None = None
    seccompProfile: not_supported_yet("seccompProfile: the engines' default profile applies") = None
    fsGroup: not_supported_yet("fsGroup") = None
    supplementalGroups: not_supported_yet("supplementalGroups") = None
    sysctls: not_supported_yet("sysctls") = None


class SecurityContext(Strict):
    runAsUser: UserId | None = None
    runAsGroup: UserId | None = None
    runAsNonRoot: bool | None = None
    readOnlyRootFilesystem: bool | None = None
    allowPrivilegeEscalation: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    seccompProfile: not_supported_yet("seccompProfile: the engines' default profile applies") = None
    procMount: not_supported_yet("procMount") = None
    seLinuxOptions: not_supported_yet("seLinuxOptions") = None

    @model_validator(mode="after")
    def _privileged_escalates(self) -> SecurityContext:
        if self.privileged and self.allowPrivilegeEscalation is False:
            raise ValueError("privileged: true needs allowPrivilegeEscalation unset or true "
                             "(as in Kubernetes)")
        return self


class Container(Strict):
    name: DnsLabel
    image: ImageRef
    # when the engine pulls the image (unset: when it is missing, the engines' default)
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] = Field(default_factory=list, max_length=1024)
    args: list[str] = Field(default_factory=list, max_length=1024)
    workingDir: str | None = Field(default=None, max_length=4096, pattern=r"^/")
    env: list[EnvVar] = Field(default_factory=list, max_length=1024)
    ports: list[ContainerPort] = Field(default_factory=list, max_length=128)
    resources: Resources = Field(default_factory=Resources)
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    volumeMounts: list[VolumeMount] | None = Field(default=None, max_length=64)
    securityContext: SecurityContext | None = None

    @field_validator("volumeMounts")
    @classmethod
    def _one_per_path(cls, value: list[VolumeMount] | None) -> list[VolumeMount] | None:
        _unique(value or [], "mountPath", "mountPath")
        return value or None  # [] is stored as none: a template's hash stays what it was before volumes


class InitContainer(Container):
    """A container run to completion before the app containers start (runtime/planner.py says in
    which order). Its ports are accepted, as Kubernetes accepts them, and published nowhere."""

    livenessProbe: NO_PROBE_ON_INIT = None  # type: ignore[assignment] - narrowed to "none at all"
    readinessProbe: NO_PROBE_ON_INIT = None  # type: ignore[assignment]


class Toleration(Strict):
    key: LabelKey | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: Seconds | None = None


class PodSpec(Strict):
    # before containers, as in Kubernetes' PodSpec: the check of containers' names sees them
    initContainers: list[InitContainer] | None = Field(default=None, max_length=64)
    containers: list[Container] = Field(min_length=1, max_length=64)
    restartPolicy: Literal["Always", "OnFailure", "Never"] = "Always"
    nodeSelector: Labels = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=MAX_TOLERATIONS)
    volumes: list[Volume] | None = Field(default=None, max_length=64)
    securityContext: PodSecurityContext | None = None
    nodeName: DnsLabel | None = None
    terminationGracePeriodSeconds: Seconds = 30

    @field_validator("initContainers")
    @classmethod
    def _init_names(cls, value: list[InitContainer] | None) -> list[InitContainer] | None:
        _unique(value or [], "name", "init container name")
        return value or None  # [] is stored as nothing asked for: the pod's spec is the same either way

    @field_validator("volumes")
    @classmethod
    def _volume_names(cls, value: list[Volume] | None) -> list[Volume] | None:
        _unique(value or [], "name", "volume name")
        return value or None

    @field_validator("containers")
    @classmethod
    def _names_unique_across(cls, value: list[Container], info: ValidationInfo) -> list[Container]:
        """Names are unique across init and app containers: the runtime names a host's container,
        its logs and exec by the pod's container name alone (berth.containers.container_name)."""
        inits = {c.name for c in info.data.get("initContainers") or []}
        for index, container in enumerate(value):
            if container.name in inits:
                raise ValueError(f"containers[{index}].name {container.name!r} is also an init container's "
                                 "(names are unique across initContainers and containers)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PodSpec:
        _unique(self.containers, "name", "container name")
        names = {v.name for v in self.volumes or []}
        for container in [*(self.initContainers or []), *self.containers]:
            for mount in container.volumeMounts or []:
                if mount.name not in names:
                    raise ValueError(f"container {container.name!r} mounts volume {mount.name!r}, which "
                                     "spec.volumes does not name")
        return self


class PodTemplateMeta(Strict):
    labels: Labels = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)


class PodTemplate(Strict):
    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: PodSpec


# --- Node ------------------------------------------------------------------------------

class Taint(Strict):
    """Validated as written in a Node's spec; frozen, so the scheduler and the taint evictor
    use it as a key (node_taints reads a stored Node's without validating it again)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: LabelKey
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


class NodeSpec(Strict):
    address: HostAddress
    sshPort: Port = 22
    sshUser: str = Field(default="root", max_length=32, pattern=r"^[a-z_][a-z0-9_-]*$")
    runtime: Literal["podman", "docker"] = "podman"
    taints: list[Taint] = Field(default_factory=list, max_length=64)
    unschedulable: bool = False
    # the node's pod subnet, given by node-ipam from cluster_cidr: a write may only send it back
    # (master/objects/updates.py)
    podCIDR: Cidr | None = Field(default=None, json_schema_extra=_READ_ONLY)


# --- ReplicaSet, Deployment -------------------------------------------------------------

IntOrPercent = (Annotated[int, Field(ge=0, le=100_000)]
                | Annotated[str, StringConstraints(pattern=r"^[0-9]{1,3}%$")])
Replicas = Annotated[int, Field(ge=0, le=100_000)]


class LabelSelector(Strict):
    matchLabels: Labels = Field(default_factory=dict)


def _selects_template(selector: LabelSelector, template: PodTemplate) -> None:
    """A controller whose pods its own selector would not find would make them for ever."""
    wanted = selector.matchLabels
    if not wanted:
        raise ValueError("selector.matchLabels must not be empty")
    labels = template.metadata.labels
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise ValueError("selector.matchLabels must match template.metadata.labels")


class ReplicaSetSpec(Strict):
    replicas: Replicas = 1
    minReadySeconds: Seconds = 0
    selector: LabelSelector
    template: PodTemplate

    @model_validator(mode="after")
    def _selector_matches_template(self) -> ReplicaSetSpec:
        _selects_template(self.selector, self.template)
        return self


class RollingUpdate(Strict):
    maxSurge: IntOrPercent = "25%"
    maxUnavailable: IntOrPercent = "25%"

    @field_validator("maxUnavailable")
    @classmethod
    def _at_most_all(cls, value: int | str) -> int | str:
        if isinstance(value, str) and int(value.rstrip("%")) > 100:
            raise ValueError("must not be greater than 100%")
        return value


class DeploymentStrategy(Strict):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rollingUpdate: RollingUpdate = Field(default_factory=RollingUpdate)


class DeploymentSpec(Strict):
    replicas: Replicas = 1
    selector: LabelSelector
    template: PodTemplate
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    minReadySeconds: Seconds = 0
    revisionHistoryLimit: int = Field(default=10, ge=0, le=1000)
    progressDeadlineSeconds: int = Field(default=600, ge=1, le=2**31 - 1)
    paused: bool = False

    @model_validator(mode="after")
    def _selector_matches_template(self) -> DeploymentSpec:
        _selects_template(self.selector, self.template)
        if self.progressDeadlineSeconds <= self.minReadySeconds:
            raise ValueError("progressDeadlineSeconds must be greater than minReadySeconds")
        return self


class ScaleSpec(Strict):
    replicas: Replicas


class Scale(Strict):
    """The `/scale` subresource of Deployments and ReplicaSets, as Kubernetes serves it: what an
    autoscaler or `berth scale` reads and writes without the rest of the spec."""

    apiVersion: Literal["berth/v1"] = API_VERSION
    kind: Literal["Scale"] = "Scale"
    # name, namespace, resourceVersion as read; only the version is read back (api/scale.py), as
    # Kubernetes' clients send it or as Berth's do
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"properties": {
        "resourceVersion": SENT_RESOURCE_VERSION}})
    spec: ScaleSpec
    status: dict[str, Any] | None = Field(default=None, json_schema_extra=_READ_ONLY)


SCALABLE = ("Deployment", "ReplicaSet")


# --- PodDisruptionBudget, Eviction ----------------------------------------------------------

MAX_DISRUPTED_PODS = 2000  # Kubernetes' MaxDisruptedPodSize: evictions not yet confirmed by its controller


def _percent_at_most_all(value: int | str | None, name: str) -> None:
    if isinstance(value, str) and int(value.rstrip("%")) > 100:
        raise ValueError(f"{name} must not be greater than 100%")


class PodDisruptionBudgetSpec(Strict):
    """How many of the selected pods voluntary disruptions (evictions: drain, the rebalancer) must
    leave: exactly one of minAvailable and maxUnavailable, a count or a percentage (rounded up)."""

    minAvailable: IntOrPercent | None = None
    maxUnavailable: IntOrPercent | None = None
    selector: LabelSelector

    @model_validator(mode="after")
    def _one_bound(self) -> PodDisruptionBudgetSpec:
        if (self.minAvailable is None) == (self.maxUnavailable is None):
            raise ValueError("give exactly one of minAvailable and maxUnavailable")
        _percent_at_most_all(self.minAvailable, "minAvailable")
        _percent_at_most_all(self.maxUnavailable, "maxUnavailable")
        if not self.selector.matchLabels:
            raise ValueError("selector.matchLabels must not be empty (a budget over every pod of a "
                             "namespace is not supported)")
        return self


class DeleteOptions(Strict):
    gracePeriodSeconds: int | None = Field(default=None, ge=0, le=3600)


class EvictionMeta(Strict):
    name: DnsLabel
    namespace: DnsLabel | None = None


class Eviction(Strict):
    """What `POST .../pods/NAME/eviction` takes (master/api/eviction.py): the pod goes as a graceful
    delete would, unless its disruption budget says no. Kubernetes' own policy/v1 body is accepted."""

    apiVersion: Literal["berth/v1", "policy/v1"] = API_VERSION
    kind: Literal["Eviction"] = "Eviction"
    metadata: EvictionMeta
    deleteOptions: DeleteOptions | None = None


# --- HorizontalPodAutoscaler -----------------------------------------------------------
# Kubernetes' autoscaling/v2 shape under apiVersion berth/v1: master/autoscaling/ decides with it,
# master/controllers/autoscaler.py acts. autoscaling/v1's targetCPUUtilizationPercentage is still
# taken, and stored as the cpu Utilization metric it means: there is one stored form, `metrics`.

DEFAULT_CPU_UTILIZATION = 80  # Kubernetes' target when an autoscaler names no metric
METRICS_NOT_YET = not_supported_yet("Object, External and ContainerResource metrics (Berth's are Resource, "
                                    "Pods and ResponseTime)")
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"  # a Prometheus metric's name
METRIC_MEMBERS = {"Resource": "resource", "Pods": "pods", "ResponseTime": "responseTime"}
# Kubernetes' default behavior (autoscaling/v2): up by 4 pods or 100% each 15 s, whichever is more;
# down by up to 100% each 15 s, after the highest recommendation of the stabilization window
SCALE_UP_POLICIES = ({"type": "Pods", "value": 4, "periodSeconds": 15},
                     {"type": "Percent", "value": 100, "periodSeconds": 15})
SCALE_DOWN_POLICIES = ({"type": "Percent", "value": 100, "periodSeconds": 15},)


def _positive(value: str | None, field: str) -> None:
    if value is not None and milli_value(value) <= 0:
        raise ValueError(f"{field} must be positive")


class ScaleTargetRef(Strict):
    apiVersion: Literal["berth/v1", "apps/v1"] | None = None  # apps/v1: as Kubernetes manifests name them
    kind: Literal["Deployment", "ReplicaSet"] = "Deployment"
    name: DnsLabel


class ResourceTarget(Strict):
    type: Literal["Utilization", "AverageValue"]
    averageUtilization: int | None = Field(default=None, ge=1, le=100_000)  # percent of the pods' requests
    averageValue: Quantity | None = None  # per pod: cpu (250m) or memory (64Mi)
    value: forbidden("a resource metric's target is Utilization or AverageValue, as in Kubernetes") = None

    @model_validator(mode="after")
    def _one_target(self) -> ResourceTarget:
        if self.type == "Utilization" and (self.averageUtilization is None or self.averageValue is not None):
            raise ValueError("type Utilization takes averageUtilization, and no averageValue")
        if self.type == "AverageValue" and (self.averageValue is None or self.averageUtilization is not None):
            raise ValueError("type AverageValue takes averageValue, and no averageUtilization")
        _positive(self.averageValue, "averageValue")
        return self


class ResourceMetricSource(Strict):
    name: Literal["cpu", "memory"]
    target: ResourceTarget

    @field_validator("target")
    @classmethod
    def _value_of_its_resource(cls, value: ResourceTarget, info: ValidationInfo) -> ResourceTarget:
        """An average value is a quantity of the resource: 1Gi of cpu is a typo, not a million cores."""
        if value.averageValue is not None and info.data.get("name") in ("cpu", "memory"):
            (cpu_millis if info.data["name"] == "cpu" else memory_bytes)(value.averageValue)
        return value


class MetricIdentifier(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=METRIC_NAME)
    selector: not_supported_yet("a metric's selector: Berth reads an app's metric by its name alone") = None


class AverageValueTarget(Strict):
    type: Literal["AverageValue"]
    averageValue: Quantity  # per pod
    value: forbidden("a Pods metric's target is an AverageValue, as in Kubernetes") = None
    averageUtilization: forbidden("a Pods metric's target is an AverageValue, as in Kubernetes") = None

    @model_validator(mode="after")
    def _positive_value(self) -> AverageValueTarget:
        _positive(self.averageValue, "averageValue")
        return self


class PodsMetricSource(Strict):
    """An app's own metric, scraped from each pod (Prometheus), averaged over the pods."""

    metric: MetricIdentifier
    target: AverageValueTarget


class ResponseTimeTarget(Strict):
    type: Literal["Value"]
    milliseconds: int = Field(ge=1, le=3_600_000)


class ResponseTimeMetricSource(Strict):
    """Berth's own: the 90th percentile of the latency of HTTP requests to the target's ready pods
    (those to `path` alone when given), one value for the whole target."""

    path: HttpPath | None = None
    target: ResponseTimeTarget


class MetricSpec(Strict):
    type: Literal["Resource", "Pods", "ResponseTime", "Object", "External", "ContainerResource"]
    resource: ResourceMetricSource | None = None
    pods: PodsMetricSource | None = None
    responseTime: ResponseTimeMetricSource | None = None
    object: METRICS_NOT_YET = None
    external: METRICS_NOT_YET = None
    containerResource: METRICS_NOT_YET = None

    @field_validator("type")
    @classmethod
    def _implemented(cls, value: str) -> str:
        if value not in METRIC_MEMBERS:
            raise PydanticCustomError(NOT_SUPPORTED_YET, "not supported yet: {what}", {
                "what": f"{value} metrics (Berth's are Resource, Pods and ResponseTime)"})
        return value

    @model_validator(mode="after")
    def _its_member(self) -> MetricSpec:
        wanted = METRIC_MEMBERS[self.type]
        if getattr(self, wanted) is None:
            raise ValueError(f"type {self.type} needs {wanted}")
        others = [m for m in METRIC_MEMBERS.values() if m != wanted and getattr(self, m) is not None]
        if others:
            raise ValueError(f"type {self.type} takes {wanted}, not {', '.join(others)}")
        return self


def cpu_utilization(percent: int) -> MetricSpec:
    return MetricSpec.model_validate({"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}})


class ScalingPolicy(Strict):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=100_000)
    periodSeconds: int = Field(ge=1, le=1800)  # Kubernetes' bounds: half an hour at most


class ScalingRules(Strict):
    # unset for scaleDown: the master's horizontal_pod_autoscaler_downscale_stabilization_seconds
    stabilizationWindowSeconds: int | None = Field(default=None, ge=0, le=3600)
    selectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] | None = Field(default=None, min_length=1, max_length=16)
    tolerance: not_supported_yet("a tolerance per autoscaler (Kubernetes' alpha HPAConfigurableTolerance): "
                                 "the master setting horizontal_pod_autoscaler_tolerance applies") = None


class AutoscalerBehavior(Strict):
    scaleUp: ScalingRules = Field(default_factory=ScalingRules)
    scaleDown: ScalingRules = Field(default_factory=ScalingRules)

    @model_validator(mode="after")
    def _defaults(self) -> AutoscalerBehavior:
        """Kubernetes' defaults fill in what a direction does not say, so the stored object shows
        the rules that apply."""
        if self.scaleUp.stabilizationWindowSeconds is None:
            self.scaleUp.stabilizationWindowSeconds = 0
        for rules, policies in ((self.scaleUp, SCALE_UP_POLICIES), (self.scaleDown, SCALE_DOWN_POLICIES)):
            if rules.policies is None:
                rules.policies = [ScalingPolicy(**policy) for policy in policies]
        return self


class HorizontalPodAutoscalerSpec(Strict):
    scaleTargetRef: ScaleTargetRef
    minReplicas: int = Field(default=1, ge=1, le=100_000)
    maxReplicas: int = Field(ge=1, le=100_000)
    metrics: list[MetricSpec] | None = Field(default=None, max_length=32)  # none: cpu at 80%, as Kubernetes
    targetCPUUtilizationPercentage: int | None = Field(
        default=None, ge=1, le=100_000, description="autoscaling/v1's: stored as the cpu Utilization metric")
    behavior: AutoscalerBehavior = Field(default_factory=AutoscalerBehavior)

    @field_validator("maxReplicas")
    @classmethod
    def _at_least_min(cls, value: int, info: ValidationInfo) -> int:
        least = info.data.get("minReplicas")
        if least is not None and value < least:
            raise ValueError(f"must be at least minReplicas ({least})")
        return value

    @field_validator("targetCPUUtilizationPercentage")
    @classmethod
    def _one_form(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("metrics"):
            raise ValueError("give metrics (autoscaling/v2) or targetCPUUtilizationPercentage "
                             "(autoscaling/v1), not both")
        return value

    @model_validator(mode="after")
    def _as_metrics(self) -> HorizontalPodAutoscalerSpec:
        """The v1 field becomes the metric it means; no metric at all is Kubernetes' default."""
        if not self.metrics:
            self.metrics = [cpu_utilization(self.targetCPUUtilizationPercentage or DEFAULT_CPU_UTILIZATION)]
        self.targetCPUUtilizationPercentage = None
        return self


# --- Service, Endpoints -----------------------------------------------------------------
# Kubernetes' core/v1 shapes. What needs the cluster's settings or the other Services (the
# address and node ports given, the rules across fields, with the field at fault named) is
# checked by master/objects/services.py when the API writes one; what Berth does not implement
# (LoadBalancer, ExternalName, headless) is accepted by the schema only to be refused there by name.

HEADLESS = "None"  # spec.clusterIP of a headless service
Protocol = Literal["TCP", "UDP"]


def _digits_as_number(value: Any) -> Any:
    """Kubernetes' IntOrString as clients write it: a string of digits is the number (validation
    is strict, so this is said here rather than left to pydantic's lax coercion)."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


class ServicePort(Strict):
    name: DnsLabel | None = None
    protocol: Protocol = "TCP"
    port: Port
    # the pods' port: a number, or a container port's name; "8080" is the number (a name has a letter)
    targetPort: Annotated[Port | PortName | None, BeforeValidator(_digits_as_number)] = None
    nodePort: Port | None = None  # type NodePort: given from service_node_port_range unless asked for

    @model_validator(mode="after")
    def _target_defaults_to_port(self) -> ServicePort:
        if self.targetPort is None:
            self.targetPort = self.port
        return self


class ClientIPConfig(Strict):
    timeoutSeconds: int = Field(default=10800, ge=1, le=86400)


class SessionAffinityConfig(Strict):
    clientIP: ClientIPConfig | None = None


class ServiceSpec(Strict):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = Field(
        default="ClusterIP", description="ClusterIP or NodePort (LoadBalancer and ExternalName are refused: "
                                         "not implemented)")
    selector: Labels = Field(default_factory=dict)
    ports: list[ServicePort] = Field(min_length=1, max_length=128)
    clusterIP: Ipv4Address | Literal["None"] | None = Field(
        default=None, description="given by the cluster from service_cidr unless asked for; fixed once given "
                                  "(None, headless, is refused: not implemented)")
    sessionAffinity: Literal["None", "ClientIP"] = "None"
    sessionAffinityConfig: SessionAffinityConfig | None = None
    externalIPs: SERVICE_FIELD_NOT_YET = None
    externalName: SERVICE_FIELD_NOT_YET = None
    loadBalancerIP: SERVICE_FIELD_NOT_YET = None
    publishNotReadyAddresses: SERVICE_FIELD_NOT_YET = None

    @field_validator("clusterIP", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # Kubernetes: "" asks the cluster for one

    @model_validator(mode="after")
    def _affinity_defaults(self) -> ServiceSpec:
        if self.sessionAffinity == "ClientIP":
            config = self.sessionAffinityConfig or SessionAffinityConfig()
            self.sessionAffinityConfig = config
            config.clientIP = config.clientIP or ClientIPConfig()
        return self


class EndpointTarget(Strict):
    kind: Literal["Pod"] = "Pod"
    name: DnsLabel
    namespace: DnsLabel | None = None
    uid: Uid | None = None


class EndpointAddress(Strict):
    ip: Ipv4Address
    nodeName: DnsLabel | None = None
    targetRef: EndpointTarget | None = None


class EndpointPort(Strict):
    name: DnsLabel | None = None
    port: Port
    protocol: Protocol = "TCP"


class EndpointSubset(Strict):
    addresses: list[EndpointAddress] | None = Field(default=None, max_length=MAX_ENDPOINT_ADDRESSES)
    notReadyAddresses: list[EndpointAddress] | None = Field(default=None, max_length=MAX_ENDPOINT_ADDRESSES)
    ports: list[EndpointPort] | None = Field(default=None, max_length=128)


# --- Event -----------------------------------------------------------------------------

class ObjectReference(Strict):
    kind: str = Field(min_length=1, max_length=63)
    name: DnsLabel
    namespace: DnsLabel | None = None
    uid: Uid | None = None


class EventSource(Strict):
    component: str = Field(default="", max_length=63)
    host: str = Field(default="", max_length=253)


# --- status ----------------------------------------------------------------------------
# Written by the system (controllers), and through the API only by the roles that own it
# (an agent for its own Node): validated all the same, so that no writer can store what
# a controller would choke on. Spec writes ignore a status they carry, as Kubernetes does.

class Condition(Strict):
    type: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    status: Literal["True", "False", "Unknown"]
    reason: Reason = ""
    message: Message = ""
    lastUpdateTime: Timestamp | None = None  # a Deployment's Progressing: the last progress seen
    lastTransitionTime: Timestamp | None = None


class _WithConditions(Strict):
    conditions: list[Condition] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _one_per_type(self) -> _WithConditions:
        _unique(self.conditions or [], "type", "condition type")
        return self


class NodeResources(Strict):
    """Whole millicores and bytes, as the agent reports them (a quantity string is converted)."""

    cpu: MilliCpu = 0
    memory: Bytes = 0


class NodeStatus(_WithConditions):
    capacity: NodeResources | None = None
    allocatable: NodeResources | None = None


class ContainerStateWaiting(Strict):
    reason: Reason = ""
    message: Message = ""


class ContainerStateRunning(Strict):
    startedAt: Timestamp = ""


class ContainerStateTerminated(Strict):
    exitCode: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    reason: Reason = ""
    message: Message = ""
    startedAt: Timestamp = ""
    finishedAt: Timestamp = ""


class ContainerStateInfo(Strict):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(Strict):
    name: DnsLabel
    image: str = Field(default="", max_length=512)
    restartCount: Count = 0
    ready: bool = False
    state: ContainerStateInfo | None = None
    lastState: ContainerStateInfo | None = None


class PodStatus(_WithConditions):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"] | None = None
    reason: Reason | None = None  # NodeLost: its node stopped answering (master/liveness.py)
    message: Message | None = None
    hostIP: HostAddress | None = None
    podIP: PodAddress | None = None
    containerStatuses: list[ContainerStatus] | None = Field(default=None, max_length=64)
    startTime: Timestamp | None = None  # when the runtime first acted on the pod (the autoscaler's cpu rule)


class ReplicaSetStatus(_WithConditions):
    replicas: Replicas = 0
    fullyLabeledReplicas: Replicas = 0
    readyReplicas: Replicas = 0
    availableReplicas: Replicas = 0
    observedGeneration: Count = 0


class DeploymentStatus(_WithConditions):
    replicas: Replicas = 0
    updatedReplicas: Replicas = 0
    readyReplicas: Replicas = 0
    availableReplicas: Replicas = 0
    unavailableReplicas: Replicas = 0
    observedGeneration: Count = 0
    collisionCount: Count | None = None


class MetricValueStatus(Strict):
    averageUtilization: int | None = Field(default=None, ge=0, le=10**9)  # percent of the pods' requests
    averageValue: Quantity | None = None
    milliseconds: int | None = Field(default=None, ge=0, le=10**9)  # a ResponseTime metric's p90


class ResourceMetricStatus(Strict):
    name: Literal["cpu", "memory"]
    current: MetricValueStatus


class PodsMetricStatus(Strict):
    metric: MetricIdentifier
    current: MetricValueStatus


class ResponseTimeMetricStatus(Strict):
    path: HttpPath | None = None
    current: MetricValueStatus


class MetricStatus(Strict):
    type: Literal["Resource", "Pods", "ResponseTime"]
    resource: ResourceMetricStatus | None = None
    pods: PodsMetricStatus | None = None
    responseTime: ResponseTimeMetricStatus | None = None


class HorizontalPodAutoscalerStatus(_WithConditions):
    """The autoscaler controller's (master/controllers/autoscaler.py): AbleToScale, ScalingActive and
    ScalingLimited conditions with Kubernetes' reasons, and each metric's current value (a metric
    without one this round is left out)."""

    observedGeneration: Count | None = None
    lastScaleTime: Timestamp | None = None
    currentReplicas: Replicas = 0
    desiredReplicas: Replicas = 0
    currentMetrics: list[MetricStatus] | None = Field(default=None, max_length=32)
    # the target's pods, as the /scale subresource's status names them ("app=web,tier=front"): the
    # agents time a ResponseTime metric's path on those of their host (agent/app_metrics.py)
    selector: str | None = Field(default=None, max_length=8192)


class PodDisruptionBudgetStatus(_WithConditions):
    """The disruption controller's count (master/workloads/disruption.py), and the eviction's charge."""

    observedGeneration: Count = 0
    disruptedPods: dict[DnsLabel, Timestamp] | None = Field(default=None, max_length=MAX_DISRUPTED_PODS)
    disruptionsAllowed: Count = 0
    currentHealthy: Count = 0
    desiredHealthy: Count = 0
    expectedPods: Count = 0




# --- whole objects ---------------------------------------------------------------------

class Envelope(Strict):
    apiVersion: Literal["berth/v1"] = API_VERSION
    metadata: ObjectMeta


class Namespace(Envelope):
    """Cluster-scoped. Its status is the store's alone (master/store/state.py): Active when made,
    Terminating once deleted, so no writer, an admin included, can mark one emptied or revive it."""

    kind: Literal["Namespace"]
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class Node(Envelope):
    kind: Literal["Node"]
    spec: NodeSpec
    status: NodeStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class Pod(Envelope):
    kind: Literal["Pod"]
    spec: PodSpec
    status: PodStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class ReplicaSet(Envelope):
    kind: Literal["ReplicaSet"]
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class Deployment(Envelope):
    kind: Literal["Deployment"]
    spec: DeploymentSpec
    status: DeploymentStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class PodDisruptionBudget(Envelope):
    kind: Literal["PodDisruptionBudget"]
    spec: PodDisruptionBudgetSpec
    status: PodDisruptionBudgetStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class HorizontalPodAutoscaler(Envelope):
    kind: Literal["HorizontalPodAutoscaler"]
    spec: HorizontalPodAutoscalerSpec
    status: HorizontalPodAutoscalerStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class Service(Envelope):
    kind: Literal["Service"]
    spec: ServiceSpec


class Endpoints(Envelope):
    """Written by the endpoints controller for every Service with a selector (named as it):
    master/network/endpoints.py says which pods' addresses, and ports, it holds."""

    kind: Literal["Endpoints"]
    subsets: list[EndpointSubset] = Field(default_factory=list, max_length=1000)


class NetworkPolicy(Envelope):
    """Which traffic the pods it selects take (master/objects/network_policy_kinds.py); every agent
    enforces it for its own pods (agent/network_policy.py)."""

    kind: Literal["NetworkPolicy"]
    spec: NetworkPolicySpec


class PersistentVolume(Envelope):
    """Cluster-scoped: storage, made by an admin or a class's provisioner, bound to one claim
    (master/storage/, master/controllers/volumes.py)."""

    kind: Literal["PersistentVolume"]
    spec: PersistentVolumeSpec
    status: PersistentVolumeStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class PersistentVolumeClaim(Envelope):
    kind: Literal["PersistentVolumeClaim"]
    spec: PersistentVolumeClaimSpec
    status: PersistentVolumeClaimStatus | None = Field(default=None, json_schema_extra=_READ_ONLY)


class StorageClass(StorageClassFields, Envelope):
    """Cluster-scoped: how claims of this class get a volume (storage.k8s.io/v1's fields, at the top)."""

    kind: Literal["StorageClass"]


class ConfigMap(Envelope):
    kind: Literal["ConfigMap"]
    data: dict[ConfigKey, str] = Field(default_factory=dict)


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64: a Secret's data values are base64, as in Kubernetes "
                         "(put plain text in stringData)") from None
    return value


Base64Text = Annotated[str, AfterValidator(_base64)]


class Secret(Envelope):
    """As in Kubernetes: `data` values are base64; `stringData` (plain text, write-only) is folded
    into `data` when written, a key in both taking stringData's value. The API hides values by role."""

    kind: Literal["Secret"]
    type: Literal["Opaque"] = "Opaque"  # the only type Berth gives a meaning to
    data: dict[ConfigKey, Base64Text] = Field(default_factory=dict)
    stringData: dict[ConfigKey, str] | None = None

    @model_validator(mode="after")
    def _fold_string_data(self) -> Secret:
        if self.stringData:
            self.data = {**self.data, **{key: base64.b64encode(value.encode()).decode()
                                         for key, value in self.stringData.items()}}
        self.stringData = None
        return self


class Event(Envelope):
    kind: Literal["Event"]
    involvedObject: ObjectReference
    reason: str = Field(min_length=1, max_length=128)
    message: Message = ""
    type: Literal["Normal", "Warning"] = "Normal"
    count: int = Field(default=1, ge=1, le=2**31 - 1)
    firstTimestamp: Timestamp | None = None
    lastTimestamp: Timestamp | None = None
    source: EventSource = Field(default_factory=EventSource)


class _RbacEnvelope(Strict):
    """RBAC's kinds, under Berth's apiVersion or Kubernetes' (manifests written for kubectl apply)."""

    apiVersion: RBAC_VERSIONS = API_VERSION
    metadata: ObjectMeta


class Role(RoleFields, _RbacEnvelope):
    """Namespaced: rules that hold in its namespace for whoever a RoleBinding there binds to it."""

    kind: Literal["Role"]


class ClusterRole(ClusterRoleFields, _RbacEnvelope):
    """Cluster-scoped: rules that hold everywhere through a ClusterRoleBinding, or in one namespace
    through a RoleBinding there. Built-ins (master/rbac/builtin.py) are listed beside stored ones."""

    kind: Literal["ClusterRole"]


class RoleBinding(RoleBindingFields, _RbacEnvelope):
    kind: Literal["RoleBinding"]


class ClusterRoleBinding(ClusterRoleBindingFields, _RbacEnvelope):
    kind: Literal["ClusterRoleBinding"]


@dataclass(frozen=True)
class KindInfo(Kind):
    """A kind's names (berth/kinds.py) with the schemas that validate it."""

    model: type[Envelope]
    status_model: type[Strict] | None = None  # None: nothing writes its status yet (no subresource)


_SCHEMAS: dict[str, tuple[type[Envelope], type[Strict] | None]] = {
    "Namespace": (Namespace, None), "Node": (Node, NodeStatus), "Pod": (Pod, PodStatus),
    "Deployment": (Deployment, DeploymentStatus), "ReplicaSet": (ReplicaSet, ReplicaSetStatus),
    "PodDisruptionBudget": (PodDisruptionBudget, PodDisruptionBudgetStatus),
    "HorizontalPodAutoscaler": (HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus),
    "Service": (Service, None), "Endpoints": (Endpoints, None), "NetworkPolicy": (NetworkPolicy, None),
    "ConfigMap": (ConfigMap, None), "Secret": (Secret, None), "Event": (Event, None),
    "PersistentVolume": (PersistentVolume, PersistentVolumeStatus),
    "PersistentVolumeClaim": (PersistentVolumeClaim, PersistentVolumeClaimStatus),
    "StorageClass": (StorageClass, None),
    "Role": (Role, None), "RoleBinding": (RoleBinding, None),
    "ClusterRole": (ClusterRole, None), "ClusterRoleBinding": (ClusterRoleBinding, None),
}
KINDS: dict[str, KindInfo] = {
    name: KindInfo(**vars(names), model=_SCHEMAS[name][0], status_model=_SCHEMAS[name][1])
    for name, names in KIND_NAMES.items()
}
BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in KINDS.values()}
# Each kind by each of its names, exactly as written (the watch's `kind` parameter, which the OpenAPI
# document lists as an enum: Berth's client sends the kind itself, so no case folding is needed)
BY_ANY_NAME: dict[str, KindInfo] = {name: info for info in KINDS.values()
                                    for name in (info.kind, *info.names())}


def lookup_kind(name: str) -> KindInfo | None:
    """Kind by kind, plural, singular or short name, as kubectl accepts them."""
    names = lookup_names(name)
    return None if names is None else KINDS[names.kind]
