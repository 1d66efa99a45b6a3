"""The schema of every kind the cluster stores, and the registry of kinds.

These pydantic models are the single description of the objects: the API
validates with them and the OpenAPI document is generated from them. The store
itself keeps plain JSON-like dicts (what `model_dump` gives), so Raft commands
and snapshots never depend on these classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from master.objects.fields import (
    ConfigKey,
    CpuQuantity,
    DnsLabel,
    EnvName,
    ImageRef,
    LabelKey,
    Labels,
    MemoryQuantity,
    Port,
    cpu_millis,
    memory_bytes,
)

API_VERSION = "berth/v1"


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a manifest must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Loose(BaseModel):
    """Status is written by the system; later issues add fields without a schema bump."""

    model_config = ConfigDict(extra="allow")


def _unique(items: list[Any], attr: str, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


class OwnerReference(Strict):
    """The object that made this one (a Deployment's pods): the scheduler spreads its replicas."""

    kind: str = Field(min_length=1, max_length=63)
    name: DnsLabel
    uid: str | None = None
    controller: bool = True


class ObjectMeta(Strict):
    name: DnsLabel
    namespace: DnsLabel | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)
    ownerReferences: list[OwnerReference] = Field(default_factory=list)
    # Set by the system; accepted on input so a fetched object can be sent back.
    uid: str | None = None
    resourceVersion: int | None = Field(default=None, ge=0)
    creationTimestamp: str | None = None
    generation: int | None = None
    deletionTimestamp: str | None = None
    deletionGracePeriodSeconds: int | None = None


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
    command: list[str] = Field(min_length=1)


class HTTPGetAction(Strict):
    path: str = "/"
    port: Port
    scheme: Literal["HTTP"] = "HTTP"


class TCPSocketAction(Strict):
    port: Port


class Probe(Strict):
    exec: ExecAction | None = None
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    initialDelaySeconds: int = Field(default=0, ge=0)
    periodSeconds: int = Field(default=10, ge=1)
    timeoutSeconds: int = Field(default=1, ge=1)
    successThreshold: int = Field(default=1, ge=1)
    failureThreshold: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        if sum(x is not None for x in (self.exec, self.httpGet, self.tcpSocket)) != 1:
            raise ValueError("a probe needs exactly one of exec, httpGet, tcpSocket")
        return self


class VolumeMount(Strict):
    name: DnsLabel
    mountPath: str = Field(min_length=1, pattern=r"^/")
    readOnly: bool = False


class Container(Strict):
    name: DnsLabel
    image: ImageRef
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    workingDir: str | None = Field(default=None, pattern=r"^/")
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    volumeMounts: list[VolumeMount] = Field(default_factory=list)


class Toleration(Strict):
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = Field(default=None, ge=0)


class HostPathSource(Strict):
    path: str = Field(min_length=1, pattern=r"^/")


class VolumeRef(Strict):
    name: DnsLabel


class ConfigMapSource(Strict):
    name: DnsLabel


class SecretSource(Strict):
    secretName: DnsLabel


class PodVolume(Strict):
    name: DnsLabel
    hostPath: HostPathSource | None = None
    persistentVolume: VolumeRef | None = None
    configMap: ConfigMapSource | None = None
    secret: SecretSource | None = None
    emptyDir: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PodVolume:
        sources = (self.hostPath, self.persistentVolume, self.configMap, self.secret, self.emptyDir)
        if sum(x is not None for x in sources) != 1:
            raise ValueError(
                "a volume needs exactly one of hostPath, persistentVolume, configMap, secret, emptyDir"
            )
        return self


class PodSpec(Strict):
    containers: list[Container] = Field(min_length=1)
    restartPolicy: Literal["Always", "OnFailure", "Never"] = "Always"
    nodeSelector: Labels = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    volumes: list[PodVolume] = Field(default_factory=list)
    nodeName: DnsLabel | None = None
    terminationGracePeriodSeconds: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> PodSpec:
        _unique(self.containers, "name", "container name")
        _unique(self.volumes, "name", "volume name")
        volumes = {v.name for v in self.volumes}
        for container in self.containers:
            for mount in container.volumeMounts:
                if mount.name not in volumes:
                    raise ValueError(f"volumeMount {mount.name!r} names no volume of the pod")
        return self


class PodTemplateMeta(Strict):
    labels: Labels = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)


class PodTemplate(Strict):
    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: PodSpec


# --- Node ------------------------------------------------------------------------------

class Taint(Strict):
    key: str = Field(min_length=1)
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodeSpec(Strict):
    address: str = Field(min_length=1, max_length=253)
    sshPort: Port = 22
    sshUser: str = Field(default="root", pattern=r"^[a-z_][a-z0-9_-]*$")
    runtime: Literal["podman", "docker"] = "podman"
    taints: list[Taint] = Field(default_factory=list)
    unschedulable: bool = False


# --- Deployment ------------------------------------------------------------------------

IntOrPercent = int | str


class LabelSelector(Strict):
    matchLabels: Labels = Field(default_factory=dict)


class RollingUpdate(Strict):
    maxSurge: IntOrPercent = Field(default="25%", pattern=r"^[0-9]+%?$")
    maxUnavailable: IntOrPercent = Field(default="25%", pattern=r"^[0-9]+%?$")


class DeploymentStrategy(Strict):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rollingUpdate: RollingUpdate = Field(default_factory=RollingUpdate)


class DeploymentSpec(Strict):
    replicas: int = Field(default=1, ge=0)
    selector: LabelSelector
    template: PodTemplate
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    minReadySeconds: int = Field(default=0, ge=0)
    revisionHistoryLimit: int = Field(default=10, ge=0)
    paused: bool = False

    @model_validator(mode="after")
    def _selector_matches_template(self) -> DeploymentSpec:
        wanted = self.selector.matchLabels
        if not wanted:
            raise ValueError("selector.matchLabels must not be empty")
        labels = self.template.metadata.labels
        if any(labels.get(k) != v for k, v in wanted.items()):
            raise ValueError("selector.matchLabels must match template.metadata.labels")
        return self


# --- HorizontalPodAutoscaler -----------------------------------------------------------

class ScaleTargetRef(Strict):
    kind: Literal["Deployment"] = "Deployment"
    name: DnsLabel


class ScaleDownBehavior(Strict):
    stabilizationWindowSeconds: int = Field(default=300, ge=0, le=3600)


class AutoscalerBehavior(Strict):
    scaleDown: ScaleDownBehavior = Field(default_factory=ScaleDownBehavior)


class HorizontalPodAutoscalerSpec(Strict):
    scaleTargetRef: ScaleTargetRef
    minReplicas: int = Field(default=1, ge=1)
    maxReplicas: int = Field(ge=1)
    targetCPUUtilizationPercentage: int = Field(default=80, ge=1, le=1000)
    behavior: AutoscalerBehavior = Field(default_factory=AutoscalerBehavior)

    @model_validator(mode="after")
    def _bounds(self) -> HorizontalPodAutoscalerSpec:
        if self.minReplicas > self.maxReplicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


# --- Service ---------------------------------------------------------------------------

class ServicePort(Strict):
    name: DnsLabel | None = None
    port: Port
    targetPort: Port | DnsLabel | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"


class ServiceSpec(Strict):
    selector: Labels = Field(default_factory=dict)
    ports: list[ServicePort] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ports(self) -> ServiceSpec:
        _unique(self.ports, "port", "service port")
        return self


# --- Volume ----------------------------------------------------------------------------

class NFSSource(Strict):
    server: str = Field(min_length=1, max_length=253)
    path: str = Field(min_length=1, pattern=r"^/")
    readOnly: bool = False


class LocalVolumeSource(Strict):
    """A named volume of the host's container runtime."""


class VolumeSpec(Strict):
    hostPath: HostPathSource | None = None
    local: LocalVolumeSource | None = None
    nfs: NFSSource | None = None
    nodeName: DnsLabel | None = None
    capacity: MemoryQuantity | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VolumeSpec:
        if sum(x is not None for x in (self.hostPath, self.local, self.nfs)) != 1:
            raise ValueError("a volume needs exactly one of hostPath, local, nfs")
        return self


# --- Event -----------------------------------------------------------------------------

class ObjectReference(Strict):
    kind: str = Field(min_length=1)
    name: DnsLabel
    namespace: DnsLabel | None = None
    uid: str | None = None


class EventSource(Strict):
    component: str = ""
    host: str = ""


# --- whole objects ---------------------------------------------------------------------

class Envelope(Strict):
    apiVersion: Literal["berth/v1"] = API_VERSION
    metadata: ObjectMeta
    status: Loose | None = None


class Node(Envelope):
    kind: Literal["Node"]
    spec: NodeSpec


class Pod(Envelope):
    kind: Literal["Pod"]
    spec: PodSpec


class Deployment(Envelope):
    kind: Literal["Deployment"]
    spec: DeploymentSpec


class HorizontalPodAutoscaler(Envelope):
    kind: Literal["HorizontalPodAutoscaler"]
    spec: HorizontalPodAutoscalerSpec


class Service(Envelope):
    kind: Literal["Service"]
    spec: ServiceSpec


class ConfigMap(Envelope):
    kind: Literal["ConfigMap"]
    data: dict[ConfigKey, str] = Field(default_factory=dict)


class Secret(Envelope):
    """Values are plain strings (no base64 as in Kubernetes): the API hides them by role."""

    kind: Literal["Secret"]
    type: str = "Opaque"
    data: dict[ConfigKey, str] = Field(default_factory=dict)


class Volume(Envelope):
    kind: Literal["Volume"]
    spec: VolumeSpec


class Event(Envelope):
    kind: Literal["Event"]
    involvedObject: ObjectReference
    reason: str = Field(min_length=1, max_length=128)
    message: str = Field(default="", max_length=4096)
    type: Literal["Normal", "Warning"] = "Normal"
    count: int = Field(default=1, ge=1)
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    source: EventSource = Field(default_factory=EventSource)


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short: tuple[str, ...]
    namespaced: bool
    model: type[Envelope]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def names(self) -> tuple[str, ...]:
        return (self.plural, self.singular, *self.short)


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo("Node", "nodes", ("no",), False, Node),
        KindInfo("Pod", "pods", ("po",), True, Pod),
        KindInfo("Deployment", "deployments", ("deploy",), True, Deployment),
        KindInfo("HorizontalPodAutoscaler", "horizontalpodautoscalers", ("hpa",), True,
                 HorizontalPodAutoscaler),
        KindInfo("Service", "services", ("svc",), True, Service),
        KindInfo("ConfigMap", "configmaps", ("cm",), True, ConfigMap),
        KindInfo("Secret", "secrets", (), True, Secret),
        KindInfo("Volume", "volumes", ("vol",), True, Volume),
        KindInfo("Event", "events", ("ev",), True, Event),
    )
}
BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in KINDS.values()}
_BY_ANY_NAME: dict[str, KindInfo] = {
    name: info for info in KINDS.values() for name in (*info.names(), info.kind.lower())
}


def lookup_kind(name: str) -> KindInfo | None:
    """Kind by kind, plural, singular or short name, as kubectl accepts them."""
    return KINDS.get(name) or _BY_ANY_NAME.get(name.lower())
