"""What each of an autoscaler's metrics proposes this round, from its target's pods and their samples.

Kubernetes' computeReplicasForMetrics: every metric is measured (a `Resource` metric against the
pods' requests or per pod, a `Pods` metric per pod, Berth's `ResponseTime` for the whole target over
its ready pods) and proposes a count with the replica calculator (master/autoscaling/replicas.py);
the largest wins. A metric that cannot be measured says why, in Kubernetes' words, as a Warning; when
none can, or one cannot and the others would scale down, there is no count this round and
ScalingActive is False with the first one's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from berth.objects import Obj
from berth.quantity import cpu_millis, memory_bytes, milli_text, milli_value
from master.autoscaling.metrics import ALL_PATHS, PodSample
from master.autoscaling.replicas import (
    MetricUnavailable,
    PodView,
    Proposal,
    Readiness,
    average_value_replicas,
    cpu_sample_counts,
    utilization_replicas,
    value_replicas,
)
from master.objects.conditions import condition
from master.workloads.replicas import moment, ready_since

SetCondition = tuple[str, str, str, str]  # type, status, reason, message
FAILED = {"Resource": "FailedGetResourceMetric", "Pods": "FailedGetPodsMetric",
          "ResponseTime": "FailedGetResponseTimeMetric"}


@dataclass(frozen=True)
class Note:
    """An event to tell on the autoscaler."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Measured:
    replicas: int
    name: str  # the metric as Kubernetes names it in its messages
    status: Obj  # its entry in status.currentMetrics


def pod_view(pod: Obj) -> PodView:
    status = pod.get("status") or {}
    return PodView(str(pod["metadata"].get("uid") or ""), str(status.get("phase") or "Pending"),
                   ready_since(pod) is not None, bool(pod["metadata"].get("deletionTimestamp")))


def cpu_view(pod: Obj, sample: PodSample | None, now: float) -> PodView:
    """The pod as a cpu metric sees it: `ready` when its sample counts (replicas.cpu_sample_counts)."""
    ready = condition(pod, "Ready")
    changed = moment(ready.get("lastTransitionTime")) if ready is not None else None
    readiness = None if ready is None or changed is None \
        else Readiness(ready.get("status") == "True", changed)
    started = moment((pod.get("status") or {}).get("startTime"))
    counts = cpu_sample_counts(started, readiness, sample.timestamp if sample else None,
                               sample.window if sample else 0.0, now)
    view = pod_view(pod)
    return PodView(view.uid, view.phase, counts, view.terminating)


def _in_millis(resource: str, quantity: str | int) -> int:
    """A cpu or memory quantity in thousandths of its unit (millicores, milli-bytes), as Kubernetes
    compares them."""
    return cpu_millis(quantity) if resource == "cpu" else memory_bytes(quantity) * 1000


def pod_requests(pods: Sequence[Obj], resource: str) -> dict[str, int]:
    """Each pod's request of `resource` (its app containers' sum), by uid: a Utilization target is a
    percentage of it, so a container without one makes the metric unusable, as in Kubernetes."""
    requests = {}
    for pod in pods:
        total = 0
        for container in (pod.get("spec") or {}).get("containers") or []:
            asked = ((container.get("resources") or {}).get("requests") or {}).get(resource)
            if asked is None:
                where = f"container {container.get('name')} of Pod {pod['metadata']['name']}"
                raise MetricUnavailable(f"missing request for {resource} in {where}")
            total += _in_millis(resource, asked)
        requests[str(pod["metadata"].get("uid") or "")] = total
    return requests


def _usage(sample: PodSample, resource: str) -> int:
    if resource == "cpu":
        return sum(c.cpu_millis for c in sample.containers.values())
    return sum(c.memory_bytes for c in sample.containers.values()) * 1000


@dataclass(frozen=True)
class Seen:
    """What every metric of one round is measured against."""

    current: int
    pods: Sequence[Obj]
    samples: Mapping[str, PodSample]  # by pod uid
    tolerance: float
    wall: float  # Unix seconds now: pods' start and readiness times are on this clock

    @property
    def views(self) -> list[PodView]:
        return [pod_view(p) for p in self.pods]

    @property
    def cpu_views(self) -> list[PodView]:
        return [cpu_view(p, self.samples.get(str(p["metadata"].get("uid") or "")), self.wall)
                for p in self.pods]


def _resource(metric: Obj, seen: Seen) -> Measured:
    source = metric["resource"]
    name, target = source["name"], source["target"]
    values = {uid: _usage(sample, name) for uid, sample in seen.samples.items()}
    readiness_counts = name == "cpu"  # Kubernetes' rule: a starting pod's cpu says little
    views = seen.cpu_views if readiness_counts else seen.views
    proposal: Proposal
    try:
        if target["type"] == "Utilization":
            requests = pod_requests(seen.pods, name)
            proposal = utilization_replicas(seen.current, int(target["averageUtilization"]), views,
                                            values, requests, readiness_counts, seen.tolerance)
        else:
            proposal = average_value_replicas(seen.current, _in_millis(name, target["averageValue"]),
                                              views, values, readiness_counts, seen.tolerance)
    except MetricUnavailable as err:
        measure = "utilization" if target["type"] == "Utilization" else "usage"
        raise MetricUnavailable(f"failed to get {name} {measure}: {err}") from None
    value: Obj = {"averageValue": milli_text(proposal.average)}
    label = f"{name} resource"
    if proposal.utilization is not None:
        value = {"averageUtilization": proposal.utilization, **value}
        label = f"{name} resource utilization (percentage of request)"
    return Measured(proposal.replicas, label,
                    {"type": "Resource", "resource": {"name": name, "current": value}})


def _pods(metric: Obj, seen: Seen) -> Measured:
    source = metric["pods"]
    name = source["metric"]["name"]
    values = {uid: round(sample.custom[name] * 1000) for uid, sample in seen.samples.items()
              if name in sample.custom}
    try:
        proposal = average_value_replicas(seen.current, milli_value(source["target"]["averageValue"]),
                                          seen.views, values, False, seen.tolerance)
    except MetricUnavailable as err:
        raise MetricUnavailable(f"failed to get pods metric value: unable to get metric {name}: {err}") \
            from None
    current = {"averageValue": milli_text(proposal.average)}
    return Measured(proposal.replicas, f"pods metric {name}",
                    {"type": "Pods", "pods": {"metric": {"name": name}, "current": current}})


def response_time(samples: Sequence[PodSample], path: str | None) -> float | None:
    """The p90 of the requests to these pods: each pod's, weighted by its requests (None: no request
    seen). Pooling the pods' percentiles this way is an estimate; each pod's is the agent's measure."""
    key = path or ALL_PATHS
    latencies = [s.response_times[key] for s in samples if key in s.response_times]
    requests = sum(latency.requests for latency in latencies)
    if requests <= 0:
        return None
    return sum(latency.p90_ms * latency.requests for latency in latencies) / requests


def _response_time(metric: Obj, seen: Seen) -> Measured:
    source = metric["responseTime"]
    path = source.get("path")
    label = f"responseTime of {path}" if path else "responseTime"
    serving = [view.uid for view in seen.views if _serving(view)]
    value = response_time([seen.samples[uid] for uid in serving if uid in seen.samples], path)
    if not seen.pods:
        problem = "no pods returned by selector while calculating replica count"
    elif value is None:
        problem = "did not receive response times for the target's ready pods"
    else:
        target = float(source["target"]["milliseconds"])
        replicas = value_replicas(seen.current, value, target, len(serving), seen.tolerance)
        entry: Obj = {"path": path} if path else {}
        entry["current"] = {"milliseconds": round(value)}
        return Measured(replicas, label, {"type": "ResponseTime", "responseTime": entry})
    raise MetricUnavailable(f"failed to get {label}: {problem}")


def _serving(pod: PodView) -> bool:
    """Ready and running: among the Service's ready endpoints, where requests go."""
    return pod.phase == "Running" and pod.ready and not pod.terminating


MEASURES = {"Resource": _resource, "Pods": _pods, "ResponseTime": _response_time}


@dataclass(frozen=True)
class FromMetrics:
    replicas: int | None  # None: no count this round
    name: str
    condition: SetCondition
    statuses: tuple[Obj, ...]
    events: tuple[Note, ...]


def from_metrics(metrics: Sequence[Obj], seen: Seen) -> FromMetrics:
    """The largest count the metrics propose (Kubernetes' computeReplicasForMetrics)."""
    measured: list[Measured] = []
    failed: list[Note] = []
    for metric in metrics:
        try:
            measured.append(MEASURES[metric["type"]](metric, seen))
        except MetricUnavailable as err:
            failed.append(Note(FAILED[metric["type"]], str(err), warning=True))
    statuses = tuple(m.status for m in measured)
    best = max(measured, key=lambda m: m.replicas, default=None)
    if failed and (best is None or len(failed) == len(metrics) or best.replicas < seen.current):
        first = failed[0]
        condition = ("ScalingActive", "False", first.reason,
                     f"the HPA was unable to compute the replica count: {first.message}")
        summary = Note("FailedComputeMetricsReplicas", f"invalid metrics ({len(failed)} invalid out of "
                       f"{len(metrics)}), first error is: {first.message}", warning=True)
        return FromMetrics(None, "", condition, statuses, (*failed, summary))
    assert best is not None  # every metric measured or failed, and not all failed
    condition = ("ScalingActive", "True", "ValidMetricFound",
                 f"the HPA was able to successfully calculate a replica count from {best.name}")
    return FromMetrics(best.replicas, best.name, condition, statuses, tuple(failed))
