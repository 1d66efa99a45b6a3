"""The columns `berth get` shows for each kind: the few facts a person scans a list for.

Each column reads the object defensively: status is written by controllers that
may not have run yet, so a missing field prints as kubectl would, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from berth.cli.timefmt import age
from berth.objects import Obj
from berth.quantity import memory_bytes, milli_text

ROLE_PREFIX = "node-role.berth.io/"
NONE = "<none>"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Obj, datetime], str]
    wide_only: bool = False


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _or_none(value: Any) -> str:
    return NONE if value in (None, "", [], {}) else str(value)


def selector_text(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in labels.items())


# --- generic ---------------------------------------------------------------------------

def name(obj: Obj, now: datetime) -> str:
    return str(_get(obj, "metadata", "name") or "")


def namespace(obj: Obj, now: datetime) -> str:
    return str(_get(obj, "metadata", "namespace") or "")


def creation_age(obj: Obj, now: datetime) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"), now)


AGE = Column("AGE", creation_age)


# --- namespaces ------------------------------------------------------------------------

def namespace_status(obj: Obj, now: datetime) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(_get(obj, "status", "phase") or "Active")


NAMESPACE = [Column("STATUS", namespace_status), AGE]


# --- pods ------------------------------------------------------------------------------

def pod_ready(obj: Obj, now: datetime) -> str:
    statuses = _list(_get(obj, "status", "containerStatuses"))
    total = len(_list(_get(obj, "spec", "containers"))) or len(statuses)
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready") is True)
    return f"{ready}/{total}"


def _init_status(obj: Obj) -> str | None:
    """kubectl's word while init containers run or after one failed: `Init:N/M` (N of M completed),
    `Init:<reason>` (Error, CrashLoopBackOff, ...); None once they all completed."""
    statuses = [s for s in _list(_get(obj, "status", "initContainerStatuses")) if isinstance(s, dict)]
    total = len(_list(_get(obj, "spec", "initContainers"))) or len(statuses)
    for index, container in enumerate(statuses):
        terminated = _get(container, "state", "terminated")
        waiting = _get(container, "state", "waiting", "reason")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if isinstance(terminated, dict):
            return f"Init:{terminated.get('reason') or 'ExitCode:' + str(_int(terminated.get('exitCode')))}"
        if waiting and waiting != "PodInitializing":
            return f"Init:{waiting}"
        return f"Init:{index}/{total}"
    return None


def pod_status(obj: Obj, now: datetime) -> str:
    """Like kubectl: a terminating pod, init containers' progress, or a container's waiting reason
    says more than phase."""
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    initializing = _init_status(obj)
    if initializing is not None:
        return initializing
    status = str(_get(obj, "status", "reason") or _get(obj, "status", "phase") or "Pending")
    if status == "NodeLost":  # its node stopped answering: what runs there is not known
        return "Unknown"
    if status in ("Succeeded", "Failed"):  # kubectl shows how the containers ended
        containers = _list(_get(obj, "status", "containerStatuses"))
        ended = [_get(c, "state", "terminated", "reason") for c in containers]
        said = [str(reason) for reason in ended if reason]
        return said[-1] if said else ("Completed" if status == "Succeeded" else "Error")
    for container in _list(_get(obj, "status", "containerStatuses")):
        waiting = _get(container, "state", "waiting", "reason")
        if waiting:
            return str(waiting)
    return status


def pod_restarts(obj: Obj, now: datetime) -> str:
    """Init containers' restarts count too, as kubectl counts them."""
    statuses = [*_list(_get(obj, "status", "initContainerStatuses")),
                *_list(_get(obj, "status", "containerStatuses"))]
    return str(sum(_int(s.get("restartCount")) for s in statuses if isinstance(s, dict)))


POD = [
    Column("READY", pod_ready),
    Column("STATUS", pod_status),
    Column("RESTARTS", pod_restarts),
    AGE,
    Column("IP", lambda o, now: _or_none(_get(o, "status", "podIP")), wide_only=True),
    Column("NODE", lambda o, now: _or_none(_get(o, "spec", "nodeName")), wide_only=True),
]


# --- nodes -----------------------------------------------------------------------------

def node_status(obj: Obj, now: datetime) -> str:
    state = "Unknown"
    for condition in _list(_get(obj, "status", "conditions")):
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            value = str(condition.get("status"))
            state = "Ready" if value == "True" else "NotReady"  # Unknown (silent) too, as kubectl shows it
    if _get(obj, "spec", "unschedulable"):
        state += ",SchedulingDisabled"
    return state


def node_roles(obj: Obj, now: datetime) -> str:
    labels = _get(obj, "metadata", "labels") or {}
    roles = sorted(k[len(ROLE_PREFIX):] for k in labels if k.startswith(ROLE_PREFIX))
    return ",".join(r for r in roles if r) or NONE


def cpu_text(millis: Any) -> str:
    return milli_text(millis) if isinstance(millis, int) else "?"


def bytes_text(size: Any) -> str:
    if not isinstance(size, int):
        return "?"
    for unit, factor in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value >= 100 or value == int(value) else f"{value:.1f}{unit}"
    return str(size)


def node_cpu(obj: Obj, now: datetime) -> str:
    """allocatable/capacity, then the CPU in use (% of the host) when the leader has heard it."""
    text = (f"{cpu_text(_get(obj, 'status', 'allocatable', 'cpu'))}/"
            f"{cpu_text(_get(obj, 'status', 'capacity', 'cpu'))}")
    used = _get(obj, "status", "usage", "cpuPercent")
    return f"{text} {used:.0f}%" if isinstance(used, int | float) else text


def node_memory(obj: Obj, now: datetime) -> str:
    """in use/allocatable/capacity."""
    return "/".join(bytes_text(_get(obj, "status", *path)) for path in (
        ("usage", "memoryUsed"), ("allocatable", "memory"), ("capacity", "memory")))


NODE = [
    Column("STATUS", node_status),
    Column("ROLES", node_roles),
    Column("CPU", node_cpu),
    Column("MEMORY", node_memory),
    AGE,
    Column("ADDRESS", lambda o, now: _or_none(_get(o, "spec", "address")), wide_only=True),
    Column("RUNTIME", lambda o, now: _or_none(_get(o, "spec", "runtime")), wide_only=True),
    Column("POD-CIDR", lambda o, now: _or_none(_get(o, "spec", "podCIDR")), wide_only=True),
]


# --- deployments -----------------------------------------------------------------------

def _containers(template_spec: Any) -> list[Obj]:
    return [c for c in _list(_get(template_spec, "containers")) if isinstance(c, dict)]


# -o wide of Deployments and ReplicaSets alike: what their pod template runs, whom they select
TEMPLATE_WIDE = [
    Column(
        "CONTAINERS",
        lambda o, now: ",".join(str(c.get("name")) for c in
                                _containers(_get(o, "spec", "template", "spec"))) or NONE,
        wide_only=True,
    ),
    Column(
        "IMAGES",
        lambda o, now: ",".join(str(c.get("image")) for c in
                                _containers(_get(o, "spec", "template", "spec"))) or NONE,
        wide_only=True,
    ),
    Column(
        "SELECTOR",
        lambda o, now: selector_text(_get(o, "spec", "selector", "matchLabels")),
        wide_only=True,
    ),
]

DEPLOYMENT = [
    Column(
        "READY",
        lambda o, now: f"{_int(_get(o, 'status', 'readyReplicas'))}/"
        f"{_int(_get(o, 'spec', 'replicas'))}",
    ),
    Column("UP-TO-DATE", lambda o, now: str(_int(_get(o, "status", "updatedReplicas")))),
    Column("AVAILABLE", lambda o, now: str(_int(_get(o, "status", "availableReplicas")))),
    AGE,
    *TEMPLATE_WIDE,
]

REPLICASET = [
    Column("DESIRED", lambda o, now: str(_int(_get(o, "spec", "replicas")))),
    Column("CURRENT", lambda o, now: str(_int(_get(o, "status", "replicas")))),
    Column("READY", lambda o, now: str(_int(_get(o, "status", "readyReplicas")))),
    AGE,
    *TEMPLATE_WIDE,
]


# --- disruption budgets ---------------------------------------------------------------

def _bound(obj: Obj, field: str) -> str:
    value = _get(obj, "spec", field)
    return "N/A" if value is None else str(value)


PDB = [
    Column("MIN AVAILABLE", lambda o, now: _bound(o, "minAvailable")),
    Column("MAX UNAVAILABLE", lambda o, now: _bound(o, "maxUnavailable")),
    Column("ALLOWED DISRUPTIONS", lambda o, now: str(_int(_get(o, "status", "disruptionsAllowed")))),
    AGE,
]


# --- network policies -------------------------------------------------------------------

def label_selector_text(selector: Any) -> str:
    """kubectl's FormatLabelSelector: `app=web,tier in (a,b),gpu,!spot`; <none> selects every pod."""
    if not isinstance(selector, dict):
        return NONE
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": f"{key}", "DoesNotExist": f"!{key}"}.get(operator, f"{key} {operator}"))
    return ",".join(terms) or NONE


NETWORK_POLICY = [Column("POD-SELECTOR", lambda o, now: label_selector_text(_get(o, "spec", "podSelector"))),
                  AGE]


# --- services and endpoints -------------------------------------------------------------

def service_ports(obj: Obj, now: datetime) -> str:
    """kubectl's PORT(S): `80/TCP`, with the node port of a NodePort service `80:30080/TCP`."""
    parts = []
    for port in _list(_get(obj, "spec", "ports")):
        if not isinstance(port, dict):
            continue
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        parts.append(f"{port.get('port')}{node_port}/{port.get('protocol') or 'TCP'}")
    return ",".join(parts) or NONE


SERVICE = [
    Column("TYPE", lambda o, now: str(_get(o, "spec", "type") or "ClusterIP")),
    Column("CLUSTER-IP", lambda o, now: _or_none(_get(o, "spec", "clusterIP"))),
    Column("PORT(S)", service_ports),
    AGE,
    Column("SELECTOR", lambda o, now: selector_text(_get(o, "spec", "selector")), wide_only=True),
]
SHOWN_ENDPOINTS = 3  # kubectl's: then "+ N more..."


def endpoints_text(obj: Any, port_names: set[str] | None = None) -> str:
    """Ready addresses as `ip:port`, for every port (or those named in `port_names`, as describe
    shows each service port's), the first three and how many more, as kubectl lists them."""
    shown: list[str] = []
    count = 0
    for subset in _list(_get(obj, "subsets")):
        addresses = [a for a in _list(_get(subset, "addresses")) if isinstance(a, dict)]
        for port in _list(_get(subset, "ports")):
            if not isinstance(port, dict) or (port_names is not None and (port.get("name") or "") not in
                                              port_names):
                continue
            count += len(addresses)
            room = SHOWN_ENDPOINTS - len(shown)
            shown += [f"{a.get('ip')}:{port.get('port')}" for a in addresses[:max(room, 0)]]
    text = ",".join(shown)
    if count > len(shown):
        return f"{text} + {count - len(shown)} more..."
    return text or NONE


ENDPOINTS = [Column("ENDPOINTS", lambda o, now: endpoints_text(o)), AGE]


# --- config and secrets ----------------------------------------------------------------

def data_count(obj: Obj, now: datetime) -> str:
    data = obj.get("data")
    return str(len(data) if isinstance(data, dict) else 0)


CONFIGMAP = [Column("DATA", data_count), AGE]
SECRET = [Column("TYPE", lambda o, now: str(o.get("type") or "Opaque")), Column("DATA", data_count), AGE]


# --- autoscalers ------------------------------------------------------------------------

UNKNOWN = "<unknown>"
METRIC_MEMBERS = {"Resource": "resource", "Pods": "pods", "ResponseTime": "responseTime"}


def metric_key(metric: Any) -> tuple[Any, ...]:
    """What ties a metric of the spec to its entry in status.currentMetrics (the controller lists only
    the metrics it could measure, so the positions need not match)."""
    kind = _get(metric, "type")
    if kind == "Resource":
        return kind, _get(metric, "resource", "name")
    if kind == "Pods":
        return kind, _get(metric, "pods", "metric", "name")
    return kind, _get(metric, "responseTime", "path")


def metric_current(obj: Obj, metric: Any) -> Obj:
    """The metric's current value from the autoscaler's status ({} while it has none)."""
    member, key = METRIC_MEMBERS.get(_get(metric, "type")), metric_key(metric)
    found = next((s for s in _list(_get(obj, "status", "currentMetrics")) if metric_key(s) == key), None)
    current = _get(found, member, "current") if member else None
    return current if isinstance(current, dict) else {}


def _amount(resource: Any, value: Any) -> str:
    """memory as kubectl top shows it (128Mi), anything else as written."""
    if value is None:
        return UNKNOWN
    if resource == "memory":
        try:
            return bytes_text(memory_bytes(value))
        except ValueError:
            pass
    return str(value)


def metric_text(obj: Obj, metric: Any) -> tuple[str, str, str]:
    """A metric's name, current value and target, as kubectl's TARGETS shows them."""
    current, kind = metric_current(obj, metric), _get(metric, "type")
    if kind == "Resource":
        name, target = _get(metric, "resource", "name"), _get(metric, "resource", "target") or {}
        if target.get("type") == "Utilization":
            used = current.get("averageUtilization")
            return str(name), UNKNOWN if used is None else f"{used}%", f"{target.get('averageUtilization')}%"
        used, wanted = current.get("averageValue"), target.get("averageValue")
        return str(name), _amount(name, used), _amount(name, wanted)
    if kind == "Pods":
        return (str(_get(metric, "pods", "metric", "name")), str(current.get("averageValue", UNKNOWN)),
                str(_get(metric, "pods", "target", "averageValue")))
    path = _get(metric, "responseTime", "path")
    millis = current.get("milliseconds")
    return (f"responseTime {path}" if path else "responseTime", UNKNOWN if millis is None else f"{millis}ms",
            f"{_get(metric, 'responseTime', 'target', 'milliseconds')}ms")


def hpa_targets(obj: Obj, now: datetime) -> str:
    """`cpu: 85%/50%, memory: 40Mi/100Mi`: each metric's current value and its target."""
    shown = [metric_text(obj, m) for m in _list(_get(obj, "spec", "metrics")) if isinstance(m, dict)]
    if not shown and _get(obj, "spec", "targetCPUUtilizationPercentage") is not None:  # stored before v2
        shown = [("cpu", UNKNOWN, f"{_get(obj, 'spec', 'targetCPUUtilizationPercentage')}%")]
    return ", ".join(f"{name}: {current}/{target}" for name, current, target in shown) or NONE


def hpa_reference(obj: Obj, now: datetime) -> str:
    ref = _get(obj, "spec", "scaleTargetRef")
    return f"{_get(ref, 'kind') or 'Deployment'}/{_get(ref, 'name') or ''}"


HPA = [
    Column("REFERENCE", hpa_reference),
    Column("TARGETS", hpa_targets),
    Column("MINPODS", lambda o, now: str(_get(o, "spec", "minReplicas") or 1)),
    Column("MAXPODS", lambda o, now: str(_get(o, "spec", "maxReplicas") or "")),
    Column("REPLICAS", lambda o, now: str(_int(_get(o, "status", "currentReplicas")))),
    AGE,
]


# --- storage: volumes, claims, classes ---------------------------------------------------

# kubectl's abbreviations, in its order
ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                "ReadWriteOncePod": "RWOP"}
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def access_modes_text(modes: Any) -> str:
    """`RWO,RWX`, as kubectl shows a volume's or a claim's access modes."""
    given = set(_list(modes))
    return ",".join(short for mode, short in ACCESS_MODES.items() if mode in given)


def storage_status(obj: Obj, now: datetime) -> str:
    """The phase; Terminating once deleted (kept while in use), as kubectl shows volumes and claims."""
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(_get(obj, "status", "phase") or "Pending")


def volume_claim(obj: Obj, now: datetime) -> str:
    ref = _get(obj, "spec", "claimRef")
    return f"{_get(ref, 'namespace') or ''}/{_get(ref, 'name') or ''}" if isinstance(ref, dict) else ""


def claim_capacity(obj: Obj, now: datetime) -> str:
    """What the bound volume gives (nothing while the claim waits), as kubectl."""
    return str(_get(obj, "status", "capacity", "storage") or "")


PERSISTENT_VOLUME = [
    Column("CAPACITY", lambda o, now: str(_get(o, "spec", "capacity", "storage") or "")),
    Column("ACCESS MODES", lambda o, now: access_modes_text(_get(o, "spec", "accessModes"))),
    Column("RECLAIM POLICY",
           lambda o, now: str(_get(o, "spec", "persistentVolumeReclaimPolicy") or "Retain")),
    Column("STATUS", storage_status),
    Column("CLAIM", volume_claim),
    Column("STORAGECLASS", lambda o, now: str(_get(o, "spec", "storageClassName") or "")),
    AGE,
]
PERSISTENT_VOLUME_CLAIM = [
    Column("STATUS", storage_status),
    Column("VOLUME", lambda o, now: str(_get(o, "spec", "volumeName") or "")),
    Column("CAPACITY", claim_capacity),
    Column("ACCESS MODES", lambda o, now: access_modes_text(_get(o, "status", "accessModes"))),
    Column("STORAGECLASS", lambda o, now: str(_get(o, "spec", "storageClassName") or "")),
    AGE,
]


def default_class(obj: Obj) -> bool:
    return _get(obj, "metadata", "annotations", DEFAULT_CLASS) == "true"


def class_name(obj: Obj, now: datetime) -> str:
    """kubectl marks the default class: `standard (default)`."""
    return name(obj, now) + (" (default)" if default_class(obj) else "")


STORAGE_CLASS = [
    Column("PROVISIONER", lambda o, now: str(o.get("provisioner") or "")),
    Column("RECLAIMPOLICY", lambda o, now: str(o.get("reclaimPolicy") or "Delete")),
    Column("VOLUMEBINDINGMODE", lambda o, now: str(o.get("volumeBindingMode") or "Immediate")),
    AGE,
]


# --- events ----------------------------------------------------------------------------

def event_last_seen(obj: Obj, now: datetime) -> str:
    stamp = (
        obj.get("lastTimestamp")
        or obj.get("firstTimestamp")
        or _get(obj, "metadata", "creationTimestamp")
    )
    return age(stamp, now)


def event_object(obj: Obj, now: datetime) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind') or '').lower()}/{ref.get('name') or ''}"


def event_source(obj: Obj, now: datetime) -> str:
    source = obj.get("source") or {}
    parts = [str(source.get(k)) for k in ("component", "host") if source.get(k)]
    return ", ".join(parts) or NONE


EVENT = [
    Column("LAST SEEN", event_last_seen),
    Column("TYPE", lambda o, now: str(o.get("type") or "Normal")),
    Column("REASON", lambda o, now: str(o.get("reason") or "")),
    Column("OBJECT", event_object),
    Column("SOURCE", event_source, wide_only=True),
    Column("COUNT", lambda o, now: str(o.get("count") or 1), wide_only=True),
    Column("NAME", name, wide_only=True),
    Column("MESSAGE", lambda o, now: " ".join(str(o.get("message") or "").split())),
]

# --- RBAC --------------------------------------------------------------------------------

def role_ref(obj: Obj, now: datetime) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def subjects_of(kind: str) -> Callable[[Obj, datetime], str]:
    def names(obj: Obj, now: datetime) -> str:
        return ",".join(str(s.get("name")) for s in obj.get("subjects") or () if s.get("kind") == kind)
    return names


BINDING = [Column("ROLE", role_ref), AGE, Column("USERS", subjects_of("User"), wide_only=True),
           Column("GROUPS", subjects_of("Group"), wide_only=True)]  # kubectl's columns

BY_KIND: dict[str, list[Column]] = {
    "Namespace": NAMESPACE,
    "Pod": POD,
    "Node": NODE,
    "Deployment": DEPLOYMENT,
    "ReplicaSet": REPLICASET,
    "PodDisruptionBudget": PDB,
    "Service": SERVICE,
    "Endpoints": ENDPOINTS,
    "NetworkPolicy": NETWORK_POLICY,
    "ConfigMap": CONFIGMAP,
    "Secret": SECRET,
    "HorizontalPodAutoscaler": HPA,
    "PersistentVolume": PERSISTENT_VOLUME,
    "PersistentVolumeClaim": PERSISTENT_VOLUME_CLAIM,
    "StorageClass": STORAGE_CLASS,
    "Event": EVENT,
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
}
NAMELESS = frozenset({"Event"})  # kubectl lists events by what happened, not by name
NAME_TEXT: dict[str, Callable[[Obj, datetime], str]] = {"StorageClass": class_name}  # NAME beyond the name


def labels_text(obj: Obj, now: datetime) -> str:
    labels = _get(obj, "metadata", "labels")
    return ",".join(f"{k}={v}" for k, v in labels.items()) if isinstance(labels, dict) and labels else NONE


def columns_for(kind: str, *, wide: bool = False, namespaced_view: bool = False,
                show_labels: bool = False, kind_prefix: bool = False) -> list[Column]:
    """NAMESPACE leads when listing across namespaces, then NAME (`kind/name` with `kind_prefix`,
    as kubectl names them when one listing shows several kinds), then the kind's own, then LABELS
    if asked for (kubectl's --show-labels)."""
    columns: list[Column] = []
    if namespaced_view:
        columns.append(Column("NAMESPACE", namespace))
    if kind not in NAMELESS:
        prefix = f"{kind.lower()}/" if kind_prefix else ""
        shown = NAME_TEXT.get(kind, name)
        columns.append(Column("NAME", lambda o, now: prefix + shown(o, now)))
    columns.extend(c for c in BY_KIND.get(kind, [AGE]) if wide or not c.wide_only)
    if show_labels:
        columns.append(Column("LABELS", labels_text))
    return columns


def rows(objects: list[Obj], columns: list[Column], now: datetime) -> list[list[str]]:
    return [[column.value(obj, now) for column in columns] for obj in objects]
