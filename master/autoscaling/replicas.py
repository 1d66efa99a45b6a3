"""How many replicas one metric asks for: Kubernetes' replica calculator, pure.

The usage ratio is the current value over the target; within `tolerance` (0.1) of 1 nothing
changes, otherwise the ready pods are scaled by it: ceil(ratio * ready pods). Pods are grouped as
Kubernetes groups them: terminating and Failed pods are ignored, Pending ones are unready, and so
is a pod whose cpu sample does not count when readiness counts (cpu, whose usage while starting
says little: `cpu_sample_counts`);
a pod with no sample has missing metrics. When some are missing, or unready pods stand beside a
scale-up, the ratio is worked out again the conservative way: a missing pod uses 0 on a scale-up
and its whole request (or the target, when it is above 100%) on a scale-down, an unready pod 0
on a scale-up. If that reverses the direction or falls within the tolerance, nothing changes;
otherwise the count is ceil(new ratio * the pods it covered). Values are whole thousandths of
their unit (millicores, milli-bytes), and the utilization a whole percent, as in Kubernetes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

CPU_INITIALIZATION_SECONDS = 300.0  # Kubernetes' horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY_SECONDS = 30.0  # its horizontal-pod-autoscaler-initial-readiness-delay


@dataclass(frozen=True)
class Readiness:
    """A pod's Ready condition: its status and when it last changed (Unix seconds)."""

    ready: bool
    changed: float


def cpu_sample_counts(started: float | None, readiness: Readiness | None, sampled: float | None,
                      window: float, now: float) -> bool:
    """Whether a pod's cpu sample is taken as a ready pod's, Kubernetes' groupPods rule.

    A starting pod burns cpu that says nothing of its load, so for the first 5 minutes after its
    start a sample counts only if the pod is Ready and the sample's whole window came after it
    turned Ready. Later, only a pod that has never been Ready (it turned NotReady within 30 s of its
    start) is left out: a pod that was serving and went unready still tells what its load was.
    `sampled`: the end of the sample's window, on the agent's clock (None: no sample)."""
    if started is None or readiness is None:
        return False
    if started + CPU_INITIALIZATION_SECONDS > now:
        return readiness.ready and sampled is not None and sampled >= readiness.changed + window
    return readiness.ready or started + INITIAL_READINESS_DELAY_SECONDS <= readiness.changed


class MetricUnavailable(Exception):
    """A metric that gives no replica count this round; the text is Kubernetes' for the same case."""


@dataclass(frozen=True)
class PodView:
    """What the calculator needs of one of the target's pods."""

    uid: str
    phase: str = "Running"  # a pod without a phase yet is Pending
    ready: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class Groups:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


@dataclass(frozen=True)
class Proposal:
    replicas: int
    average: int  # thousandths of the unit per pod, over the pods with metrics (ready ones)
    utilization: int | None = None  # percent of the pods' requests, for a Utilization target


Ratio = Callable[[Mapping[str, int]], float]


def group_pods(pods: Sequence[PodView], values: Mapping[str, int], readiness_counts: bool) -> Groups:
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.terminating or pod.phase == "Failed":
            ignored.add(pod.uid)
        elif pod.phase == "Pending":
            unready.add(pod.uid)
        elif pod.uid not in values:
            missing.add(pod.uid)
        elif readiness_counts and not pod.ready:
            unready.add(pod.uid)
        else:
            ready += 1
    return Groups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _count(current: int, pods: Sequence[PodView], values: Mapping[str, int], readiness_counts: bool,
           tolerance: float, ratio_of: Ratio, full: Callable[[str], int]) -> tuple[int, Mapping[str, int]]:
    """The replica count, and the values of the pods with metrics that counted (ready ones)."""
    if not pods:
        raise MetricUnavailable("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, values, readiness_counts)
    present = {pod.uid for pod in pods}
    known = {uid: value for uid, value in values.items()
             if uid in present and uid not in groups.ignored and uid not in groups.unready}
    if not known:
        raise MetricUnavailable("did not receive metrics for targeted pods (pods might be unready)")
    usage = ratio_of(known)
    with_unready = bool(groups.unready) and usage > 1.0
    if not with_unready and not groups.missing:
        if abs(1.0 - usage) <= tolerance:
            return current, known
        return math.ceil(usage * groups.ready), known
    filled = dict(known)
    for uid in groups.missing:
        if usage < 1.0:
            filled[uid] = full(uid)
        elif usage > 1.0:
            filled[uid] = 0
    if with_unready:
        filled.update(dict.fromkeys(groups.unready, 0))
    new = ratio_of(filled)
    if abs(1.0 - new) <= tolerance or (usage < 1.0 < new) or (usage > 1.0 > new):
        return current, known  # too small a change, or the pods without metrics turn it round
    replicas = math.ceil(new * len(filled))
    if (new < 1.0 and replicas > current) or (new > 1.0 and replicas < current):
        return current, known  # counting those pods would move it the other way
    return replicas, known


def _utilization(values: Mapping[str, int], requests: Mapping[str, int]) -> int:
    """Percent of the pods' requests used, whole, over the pods both known."""
    used = sum(value for uid, value in values.items() if uid in requests)
    asked = sum(requests[uid] for uid in values if uid in requests)
    if asked == 0:
        raise MetricUnavailable("no metrics returned matched known pods")
    return used * 100 // asked


def utilization_replicas(current: int, target: int, pods: Sequence[PodView], values: Mapping[str, int],
                         requests: Mapping[str, int], readiness_counts: bool, tolerance: float) -> Proposal:
    """A Utilization target: `target` percent of what the pods request (`requests` by pod uid)."""
    def ratio_of(metrics: Mapping[str, int]) -> float:
        return _utilization(metrics, requests) / target

    def full(uid: str) -> int:
        return requests.get(uid, 0) * max(100, target) // 100

    replicas, known = _count(current, pods, values, readiness_counts, tolerance, ratio_of, full)
    return Proposal(replicas, sum(known.values()) // len(known), _utilization(known, requests))


def average_value_replicas(current: int, target: int, pods: Sequence[PodView], values: Mapping[str, int],
                           readiness_counts: bool, tolerance: float) -> Proposal:
    """An AverageValue target: `target` per pod (Resource AverageValue, Pods metrics)."""
    def ratio_of(metrics: Mapping[str, int]) -> float:
        return (sum(metrics.values()) // len(metrics)) / target

    replicas, known = _count(current, pods, values, readiness_counts, tolerance, ratio_of, lambda uid: target)
    return Proposal(replicas, sum(known.values()) // len(known))


def value_replicas(current: int, value: float, target: float, ready_pods: int, tolerance: float) -> int:
    """A Value target, one value for the whole target (Kubernetes' Object metrics; Berth's ResponseTime):
    the ready pods scaled by the ratio; from zero replicas, the ratio itself."""
    ratio = value / target
    if current == 0:
        return math.ceil(ratio)
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * ready_pods)
