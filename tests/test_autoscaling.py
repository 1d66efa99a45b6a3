"""The horizontal pod autoscaler without a server: the kind's schema, Kubernetes' replica calculator
and behavior as tables (the expected values worked out from Kubernetes' documented rules and
examples), one autoscaler's round, the metrics book, and the controller's rounds over a plain state."""

from __future__ import annotations

from typing import Any

import pytest

from berth.objects import Obj
from berth.quantity import milli_text, milli_value
from master.autoscaling.behavior import (
    Behavior,
    History,
    Policy,
    Rules,
    Stamped,
    first_recommendation,
    limit_rate,
    normalize,
    policy_limit,
    record_scale,
    stabilize,
)
from master.autoscaling.decide import Decision, Settings, decide, next_status, rescaled
from master.autoscaling.measure import response_time
from master.autoscaling.metrics import ContainerUsage, Latency, PodSample
from master.autoscaling.replicas import (
    MetricUnavailable,
    PodView,
    Readiness,
    average_value_replicas,
    cpu_sample_counts,
    group_pods,
    utilization_replicas,
    value_replicas,
)
from master.config import check_autoscaling
from master.controllers.autoscaler import Autoscaler
from master.errors import ApiError
from master.objects.kinds import KINDS
from master.objects.validate import validate_object, validate_status
from master.reports.pod_metrics import MetricsBook
from master.store.commands import Create, Replace, UpdateStatus
from tests.test_isolation import FakeStore

NOW = "2026-01-01T00:00:00Z"
WALL = 1767225600.0 + 3600  # an hour after NOW: the pods started at NOW are past cpu initialization
LATER = "2026-01-01T01:00:00Z"  # WALL, as the controller's clock writes it
TOLERANCE = 0.1


# --- the kind -----------------------------------------------------------------------------------

def hpa_document(**spec: Any) -> Obj:
    return {"apiVersion": "berth/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicas": 6, **spec}}


def cpu(percent: int) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                       "averageUtilization": percent}}}


DEFAULT_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"selectPolicy": "Max",
                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}
QUEUE = {"type": "Pods", "pods": {"metric": {"name": "http_requests"},
                                  "target": {"type": "AverageValue", "averageValue": "1k"}}}
API_LATENCY = {"type": "ResponseTime",
               "responseTime": {"path": "/api", "target": {"type": "Value", "milliseconds": 200}}}


@pytest.mark.parametrize(("case", "spec", "metrics"), [
    ("autoscaling/v1's target becomes the cpu metric it means", {"targetCPUUtilizationPercentage": 70},
     [cpu(70)]),
    ("no metric at all is cpu at 80%, as Kubernetes", {}, [cpu(80)]),
    ("v2 metrics are kept as given", {"metrics": [cpu(50), QUEUE, API_LATENCY]},
     [cpu(50), QUEUE, API_LATENCY]),
])
def test_one_stored_form_with_kubernetes_defaults(case: str, spec: Obj, metrics: list[Obj]) -> None:
    stored = validate_object(hpa_document(**spec))["spec"]
    assert stored["metrics"] == metrics, case
    assert "targetCPUUtilizationPercentage" not in stored
    assert stored["minReplicas"] == 1 and stored["behavior"] == DEFAULT_BEHAVIOR
    assert stored["scaleTargetRef"] == {"kind": "Deployment", "name": "web"}


def test_a_direction_given_in_part_gets_the_rest_of_its_defaults() -> None:
    stored = validate_object(hpa_document(behavior={"scaleDown": {"stabilizationWindowSeconds": 60},
                                                    "scaleUp": {"selectPolicy": "Disabled"}}))["spec"]
    assert stored["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                               **{"policies": DEFAULT_BEHAVIOR["scaleDown"]["policies"]}}
    assert stored["behavior"]["scaleUp"] == {**DEFAULT_BEHAVIOR["scaleUp"], "selectPolicy": "Disabled"}


@pytest.mark.parametrize(("spec", "field", "reason", "says"), [
    ({"minReplicas": 3, "maxReplicas": 2}, "spec.maxReplicas", "FieldValueInvalid",
     "at least minReplicas (3)"),
    ({"targetCPUUtilizationPercentage": 50, "metrics": [cpu(60)]}, "spec.targetCPUUtilizationPercentage",
     "FieldValueInvalid", "not both"),
    ({"minReplicas": 0}, "spec.minReplicas", "FieldValueInvalid", "greater than or equal to 1"),
    ({"scaleTargetRef": {"kind": "StatefulSet", "name": "web"}}, "spec.scaleTargetRef.kind",
     "FieldValueInvalid", "'Deployment' or 'ReplicaSet'"),
    ({"metrics": [{"type": "External", "external": {"metric": {"name": "queue"}}}]}, "spec.metrics[0].type",
     "FieldValueNotSupported", "External metrics"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue",
                                                                              "averageValue": "1Gi"}}}]},
     "spec.metrics[0].resource.target", "FieldValueInvalid", "invalid CPU quantity '1Gi'"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Value",
                                                                              "value": "1"}}}]},
     "spec.metrics[0].resource.target.type", "FieldValueInvalid", "'Utilization' or 'AverageValue'"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "Utilization", "averageValue": "64Mi"}}}]},
     "spec.metrics[0].resource.target", "FieldValueInvalid", "takes averageUtilization"),
    ({"metrics": [{"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                          "averageUtilization": 5}}}]},
     "spec.metrics[0]", "FieldValueInvalid", "type Pods needs pods"),
    ({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "x", "selector": {"matchLabels": {"a": "b"}}},
                                            "target": {"type": "AverageValue", "averageValue": "1"}}}]},
     "spec.metrics[0].pods.metric.selector", "FieldValueNotSupported", "a metric's selector"),
    ({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "x"},
                                            "target": {"type": "AverageValue", "averageValue": "0"}}}]},
     "spec.metrics[0].pods.target", "FieldValueInvalid", "must be positive"),
    ({"metrics": [{"type": "ResponseTime", "responseTime": {"path": "api", "target": {
        "type": "Value", "milliseconds": 200}}}]}, "spec.metrics[0].responseTime.path", "FieldValueInvalid",
     "/"),
    ({"behavior": {"scaleUp": {"tolerance": 0.05}}}, "spec.behavior.scaleUp.tolerance",
     "FieldValueNotSupported", "horizontal_pod_autoscaler_tolerance"),
    ({"behavior": {"scaleDown": {"policies": []}}}, "spec.behavior.scaleDown.policies", "FieldValueInvalid",
     "at least 1 item"),
    ({"behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}},
     "spec.behavior.scaleDown.policies[0].periodSeconds", "FieldValueInvalid", "1800"),
])
def test_what_is_refused_names_its_field(spec: Obj, field: str, reason: str, says: str) -> None:
    with pytest.raises(ApiError) as caught:
        validate_object(hpa_document(**spec))
    assert (caught.value.status, caught.value.field, caught.value.reason) == (400, field, reason)
    assert says in caught.value.message


def test_the_status_has_a_schema_of_its_own() -> None:
    info = KINDS["HorizontalPodAutoscaler"]
    status = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 85,
                                                                     "averageValue": "85m"}}}],
        "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}
    assert validate_status(info, status) == status
    with pytest.raises(ApiError) as caught:
        validate_status(info, {"currentMetrics": [{"type": "Object"}]})
    assert caught.value.field == "status.currentMetrics[0].type"


@pytest.mark.parametrize(("settings", "says"), [
    ((15, 0.1, 300), None),
    ((1, 0, 0), None),
    ((0.5, 0.1, 300), "horizontal_pod_autoscaler_sync_period_seconds"),
    ((15, 1.0, 300), "horizontal_pod_autoscaler_tolerance"),
    ((15, 0.1, 30.5), "horizontal_pod_autoscaler_downscale_stabilization_seconds"),
    ((15, True, 300), "horizontal_pod_autoscaler_tolerance"),
])
def test_the_settings_are_checked_at_start(settings: tuple[Any, Any, Any], says: str | None) -> None:
    if says is None:
        check_autoscaling(*settings)
        return
    with pytest.raises(ValueError, match=says):
        check_autoscaling(*settings)


@pytest.mark.parametrize(("text", "millis", "shown"), [
    ("500m", 500, "500m"), ("2", 2000, "2"), ("1.5k", 1_500_000, "1500"),
    ("64Mi", 67_108_864_000, "67108864"), (12, 12_000, "12"),
])
def test_quantities_in_thousandths(text: str | int, millis: int, shown: str) -> None:
    assert milli_value(text) == millis and milli_text(millis) == shown


# --- which cpu samples count (Kubernetes' groupPods for cpu) ------------------------------------

@pytest.mark.parametrize(("case", "started", "readiness", "sampled", "counts"), [
    # within the 300 s of cpu initialization: Ready, and the whole 15 s window after turning Ready
    ("starting, ready, a sample after a full window", 0, (True, 10), 25, True),
    ("starting, ready, the window began before it was ready", 0, (True, 10), 24, False),
    ("starting, not ready", 0, (False, 10), 100, False),
    ("starting, ready, no sample", 0, (True, 10), None, False),
    # after it: left out only if it never was Ready (turned NotReady within 30 s of its start)
    ("started long ago, ready", -1000, (True, -990), 0, True),
    ("started long ago, never ready", -1000, (False, -980), 0, False),
    ("started long ago, unready after serving", -1000, (False, -900), 0, True),
    ("no start time", None, (True, 10), 100, False),
    ("no Ready condition", 0, None, 100, False),
])
def test_which_cpu_samples_count(case: str, started: float | None, readiness: tuple[bool, float] | None,
                                 sampled: float | None, counts: bool) -> None:
    now = 100.0
    assert cpu_sample_counts(started, Readiness(*readiness) if readiness else None, sampled, 15.0, now) \
        is counts, case


def test_a_pod_unready_after_serving_keeps_its_cpu_in_the_count() -> None:
    """Kubernetes counts its sample (it tells the load); one never ready holds a scale-up back."""
    served = pod("b", ready=False)
    served["status"]["startTime"] = "2025-12-31T23:00:00Z"  # an hour before it turned NotReady
    samples = by_uid(sample("a", cpu=150), sample("b", cpu=150))
    never = decide(spec_of(metrics=[cpu(100)]), scale(2), [pod("a"), pod("b", ready=False)], samples,
                   History(), 0.0, Settings(), WALL)
    after = decide(spec_of(metrics=[cpu(100)]), scale(2), [pod("a"), served], samples, History(), 0.0,
                   Settings(), WALL)
    assert (never.desired, after.desired) == (2, 3)


# --- the replica calculator ---------------------------------------------------------------------

def views(*pods: str) -> list[PodView]:
    """`a`, or `a:Pending`, `a:unready`, `a:terminating`, `a:Failed`."""
    made = []
    for spec in pods:
        uid, _, state = spec.partition(":")
        made.append(PodView(uid, phase=state if state in ("Pending", "Failed") else "Running",
                            ready=state != "unready", terminating=state == "terminating"))
    return made


def requests_of(pods: list[PodView], millis: int = 100) -> dict[str, int]:
    return {p.uid: millis for p in pods}


@pytest.mark.parametrize(("case", "current", "target", "pods", "usage", "expected", "utilization"), [
    # the HPA walkthrough: php-apache at 305% of its 200m request against 50%: ceil(6.1 x 1) = 7
    ("walkthrough", 1, 50, ["a"], {"a": 610}, 7, 305),
    ("twice the target doubles", 2, 100, ["a", "b"], {"a": 200, "b": 200}, 4, 200),
    ("half the target halves", 4, 100, ["a", "b", "c", "d"], dict.fromkeys("abcd", 50), 2, 50),
    ("within the tolerance above: no change", 3, 80, ["a", "b", "c"], dict.fromkeys("abc", 87), 3, 87),
    ("past the tolerance above", 3, 80, ["a", "b", "c"], dict.fromkeys("abc", 89), 4, 89),
    ("within the tolerance below: no change", 3, 80, ["a", "b", "c"], dict.fromkeys("abc", 73), 3, 73),
    ("past the tolerance below", 4, 80, ["a", "b", "c", "d"], dict.fromkeys("abcd", 60), 3, 60),
    ("the ratio scales the ready pods, not the replicas", 5, 50, ["a", "b"], {"a": 100, "b": 100}, 4, 100),
    # scale-up, a pod without metrics counts as 0%: (150+150+0)/300 = 100% is within the tolerance
    ("a missing pod holds a scale-up back", 3, 100, ["a", "b", "c"], {"a": 150, "b": 150}, 3, 150),
    # scale-down, a missing pod counts as 100% of its request: (40+40+100)/300 = 60%, ceil(0.75 x 3) = 3
    ("a missing pod holds a scale-down back", 3, 80, ["a", "b", "c"], {"a": 40, "b": 40}, 3, 40),
    # (10+10+10+100)/400 = 32% of a 50% target: ceil(0.64 x 4) = 3 (1 without the missing pod)
    ("a missing pod slows a scale-down", 4, 50, ["a", "b", "c", "d"], dict.fromkeys("abc", 10), 3, 10),
    # 70% of 80% is a scale-down; with the missing pod at 100%, (70+100)/200 = 85%: the other way
    ("a missing pod that reverses the direction stops it", 2, 80, ["a", "b"], {"a": 70}, 2, 70),
    # cpu: a pod not Ready counts 0 on a scale-up: (150+150+0)/300 = 100%
    ("an unready pod holds a scale-up back", 3, 100, ["a", "b", "c:unready"],
     dict.fromkeys("abc", 150), 3, 150),
    # a Pending pod is left out of a scale-down: 20% of 80% over the 2 running: ceil(0.25 x 2) = 1
    ("a pending pod is left out of a scale-down", 3, 80, ["a", "b", "c:Pending"], {"a": 20, "b": 20}, 1, 20),
    ("terminating and failed pods are ignored", 3, 50, ["a", "b", "c:terminating", "d:Failed"],
     {"a": 100, "b": 100, "c": 500, "d": 500}, 4, 100),
])
def test_utilization_replicas(case: str, current: int, target: int, pods: list[str], usage: dict[str, int],
                              expected: int, utilization: int) -> None:
    listed = views(*pods)
    request = 200 if case == "walkthrough" else 100
    proposal = utilization_replicas(current, target, listed, usage, requests_of(listed, request), True,
                                    TOLERANCE)
    assert (proposal.replicas, proposal.utilization) == (expected, utilization), case


def test_readiness_counts_for_cpu_only() -> None:
    """Memory's usage says as much while a pod starts: a pod not Ready counts with the others."""
    listed = views("a", "b", "c:unready")
    usage = dict.fromkeys("abc", 150)
    assert utilization_replicas(3, 100, listed, usage, requests_of(listed), True, TOLERANCE).replicas == 3
    assert utilization_replicas(3, 100, listed, usage, requests_of(listed), False, TOLERANCE).replicas == 5


def test_grouping_as_kubernetes_groups_pods() -> None:
    groups = group_pods(views("a", "b:unready", "c:Pending", "d", "e:terminating", "f:Failed"),
                        {"a": 1, "b": 1, "e": 1}, readiness_counts=True)
    assert (groups.ready, groups.unready, groups.missing, groups.ignored) == (
        1, frozenset("bc"), frozenset("d"), frozenset("ef"))


@pytest.mark.parametrize(("pods", "usage", "says"), [
    ([], {}, "no pods returned by selector while calculating replica count"),
    (["a", "b"], {}, "did not receive metrics for targeted pods (pods might be unready)"),
    (["a:Pending"], {"a": 100}, "did not receive metrics for targeted pods (pods might be unready)"),
])
def test_a_metric_that_cannot_be_computed_says_why(pods: list[str], usage: dict[str, int], says: str) -> None:
    listed = views(*pods)
    with pytest.raises(MetricUnavailable, match=says.replace("(", r"\(").replace(")", r"\)")):
        utilization_replicas(2, 50, listed, usage, requests_of(listed), True, TOLERANCE)


@pytest.mark.parametrize(("case", "current", "target", "pods", "values", "expected", "average"), [
    ("twice the target per pod", 3, 10_000, ["a", "b", "c"], dict.fromkeys("abc", 20_000), 6, 20_000),
    ("within the tolerance", 3, 10_000, ["a", "b", "c"], dict.fromkeys("abc", 10_500), 3, 10_500),
    # scale-down, a missing pod counts as the target: (2+2+10)/3 = 4.666 of 10: ceil(0.4666 x 3) = 2
    ("a missing pod counts as the target on a scale-down", 3, 10_000, ["a", "b", "c"],
     {"a": 2000, "b": 2000}, 2, 2000),
    ("a pod not Ready still counts (not cpu)", 2, 10_000, ["a", "b:unready"], dict.fromkeys("ab", 30_000),
     6, 30_000),
])
def test_average_value_replicas(case: str, current: int, target: int, pods: list[str], values: dict[str, int],
                                expected: int, average: int) -> None:
    proposal = average_value_replicas(current, target, views(*pods), values, False, TOLERANCE)
    assert (proposal.replicas, proposal.average) == (expected, average), case


@pytest.mark.parametrize(("current", "value", "target", "ready", "expected"), [
    (3, 400.0, 200.0, 3, 6),
    (3, 210.0, 200.0, 3, 3),  # within the tolerance
    (4, 300.0, 200.0, 2, 3),  # the ready pods scaled, not the replicas
    (4, 100.0, 200.0, 4, 2),
    (0, 300.0, 200.0, 0, 2),  # from zero: the ratio itself
])
def test_value_replicas(current: int, value: float, target: float, ready: int, expected: int) -> None:
    assert value_replicas(current, value, target, ready, TOLERANCE) == expected


# --- behavior -----------------------------------------------------------------------------------

UP = Rules(0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))  # Kubernetes' defaults
DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


def behavior(minimum: int = 1, maximum: int = 100, up: Rules = UP, down: Rules = DOWN) -> Behavior:
    return Behavior(minimum, maximum, up, down)


def test_the_default_scale_up_adds_4_pods_or_doubles_every_15_seconds() -> None:
    history = History()
    replicas, why = limit_rate(1, 10, behavior(), history, 0.0)
    assert (replicas, why[0]) == (5, "ScaleUpLimit")  # max(1 + 4, 1 x 2)
    history = record_scale(history, 1, 5, behavior(), 0.0)
    assert limit_rate(5, 10, behavior(), history, 10.0)[0] == 5  # the period began at 1: 5 is its limit
    assert limit_rate(5, 10, behavior(), history, 16.0) == (10, ("DesiredWithinRange", (
        "the desired count is within the acceptable range")))  # max(5 + 4, 5 x 2) = 10


# The documented scale-down example: 80 replicas going to 10, at most 4 pods or 10% a minute
TEN_PERCENT = Rules(0, "Max", (Policy("Pods", 4, 60), Policy("Percent", 10, 60)))


@pytest.mark.parametrize(("case", "current", "desired", "rules", "events", "now", "expected"), [
    ("10% of 80 is more than 4: 8 go", 80, 10, TEN_PERCENT, (), 0.0, 72),
    ("within the period, counted from its start (80): none more", 72, 10, TEN_PERCENT, ((0.0, 8),), 30.0,
     72),
    ("the next period: 10% of 72 is 7.2, 8 go", 72, 10, TEN_PERCENT, ((0.0, 8),), 60.0, 64),
    ("below 40 replicas the 4 pods allow the most", 30, 10, TEN_PERCENT, (), 0.0, 26),
    ("Min selects the policy allowing the least change", 100, 10,
     Rules(0, "Min", (Policy("Percent", 10, 60), Policy("Pods", 5, 60))), (), 0.0, 95),
    ("Disabled forbids scaling down", 10, 1, Rules(0, "Disabled", DOWN.policies), (), 0.0, 10),
])
def test_scale_down_policies(case: str, current: int, desired: int, rules: Rules,
                             events: tuple[tuple[float, int], ...], now: float, expected: int) -> None:
    history = History(downs=tuple(Stamped(at, change) for at, change in events))
    assert limit_rate(current, desired, behavior(down=rules), history, now)[0] == expected, case


@pytest.mark.parametrize(("case", "current", "desired", "rules", "expected", "reason"), [
    ("Min up: the lesser of +4 and x2", 10, 40, Rules(0, "Min", UP.policies), 14, "ScaleUpLimit"),
    ("Max up: the greater of +4 and x2", 10, 40, UP, 20, "ScaleUpLimit"),
    ("a percentage rounds up: 3 x 1.5 = 4.5 is 5", 3, 40, Rules(0, "Max", (Policy("Percent", 50, 60),)), 5,
     "ScaleUpLimit"),
    ("Disabled forbids scaling up", 3, 40, Rules(0, "Disabled", UP.policies), 3, "ScaleUpLimit"),
])
def test_scale_up_policies(case: str, current: int, desired: int, rules: Rules, expected: int,
                           reason: str) -> None:
    replicas, why = limit_rate(current, desired, behavior(up=rules), History(), 0.0)
    assert (replicas, why[0]) == (expected, reason), case


def test_a_period_counts_scale_events_both_ways() -> None:
    """From 6 down to 4 a moment ago, a policy of 1 pod a minute counts from the 6 the period began with."""
    history = History(downs=(Stamped(0.0, 2),))
    assert policy_limit(4, Rules(0, "Max", (Policy("Pods", 1, 60),)), history, 10.0, upward=True) == 7


@pytest.mark.parametrize(("case", "current", "desired", "minimum", "maximum", "expected", "reason"), [
    ("above maxReplicas", 5, 20, 1, 10, 10, "TooManyReplicas"),
    ("below minReplicas", 5, 1, 3, 10, 3, "TooFewReplicas"),
    ("within both", 5, 7, 1, 10, 7, "DesiredWithinRange"),
    ("no change", 5, 5, 1, 10, 5, "DesiredWithinRange"),
])
def test_clamped_to_min_and_max(case: str, current: int, desired: int, minimum: int, maximum: int,
                                expected: int, reason: str) -> None:
    replicas, why = limit_rate(current, desired, behavior(minimum, maximum), History(), 0.0)
    assert (replicas, why[0]) == (expected, reason), case


def recommended(*pairs: tuple[float, int]) -> History:
    return History(recommendations=tuple(Stamped(at, replicas) for at, replicas in pairs))


@pytest.mark.parametrize(("case", "current", "desired", "rules", "history", "now", "expected", "reason"), [
    ("scale-down waits for the highest recommendation of its window", 5, 2, behavior(),
     recommended((0.0, 5), (100.0, 3)), 200.0, 5, "ScaleDownStabilized"),
    ("once the 5 left the window, the highest is 3", 5, 2, behavior(), recommended((0.0, 5), (100.0, 3)),
     301.0, 3, "ScaleDownStabilized"),
    ("scale-up at once without a window", 2, 6, behavior(), recommended((0.0, 4), (30.0, 3)), 40.0, 6,
     "ScaleUpStabilized"),
    ("scale-up to the lowest recommendation of its window", 2, 6, behavior(up=Rules(60, "Max", UP.policies)),
     recommended((0.0, 4), (30.0, 3)), 40.0, 3, "ScaleUpStabilized"),
    ("a window of 0 scales down at once", 5, 2, behavior(down=Rules(0, "Max", DOWN.policies)),
     recommended((0.0, 5)), 10.0, 2, "ScaleDownStabilized"),
])
def test_stabilization_windows(case: str, current: int, desired: int, rules: Behavior, history: History,
                               now: float, expected: int, reason: str) -> None:
    replicas, why, kept = stabilize(current, desired, rules, history, now)
    assert (replicas, why[0]) == (expected, reason), case
    assert kept.recommendations[-1] == Stamped(now, desired)


def test_a_new_autoscaler_does_not_scale_down_within_its_window() -> None:
    """Its first recommendation is the current size (a new leader's too)."""
    history = first_recommendation(History(), 5, 0.0)
    normalized = normalize(5, 1, behavior(), history, 10.0)
    assert (normalized.replicas, normalized.stabilized[0], normalized.limited) == (5, "ScaleDownStabilized",
                                                                                    False)
    assert normalize(5, 1, behavior(), normalized.history, 301.0).replicas == 1
    assert first_recommendation(history, 9, 5.0) is history


def test_normalize_says_ready_and_limited_as_kubernetes() -> None:
    normalized = normalize(2, 20, behavior(maximum=10), History(), 0.0)
    assert (normalized.replicas, normalized.stabilized[0], normalized.limited, normalized.limit[0]) == (
        6, "ReadyForNewScale", True, "ScaleUpLimit")  # max(2 + 4, 2 x 2); 10 would be TooManyReplicas


def test_scale_events_older_than_every_period_are_forgotten() -> None:
    history = History(ups=(Stamped(0.0, 3),), downs=(Stamped(10.0, 1),))
    kept = record_scale(history, 4, 6, behavior(), 20.0)  # the longest period is 15 s
    assert (kept.ups, kept.downs) == ((Stamped(20.0, 2),), (Stamped(10.0, 1),))


# --- one autoscaler's round -----------------------------------------------------------------------

def spec_of(**spec: Any) -> Obj:
    return validate_object(hpa_document(**spec))["spec"]


def scale(replicas: int) -> Obj:
    return {"kind": "Scale", "spec": {"replicas": replicas}, "status": {"replicas": replicas}}


def pod(name: str, ready: bool = True, cpu: str | None = "100m", memory: str | None = "100Mi",
        phase: str = "Running") -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                                        "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "localhost/busybox:lab",
                                     "resources": {"requests": requests}}]},
            "status": {"phase": phase, "startTime": NOW,
                       "conditions": [{"type": "Ready", "status": str(ready), "lastTransitionTime": NOW}]}}


def sample(name: str, cpu: int = 0, memory_mi: int = 0, latency: tuple[float, int] | None = None,
           **custom: float) -> PodSample:
    return PodSample(f"uid-{name}", 1000.0, 15.0, {"web": ContainerUsage(cpu, memory_mi << 20)},
                     {"": Latency(*latency)} if latency else {}, custom)


def by_uid(*samples: PodSample) -> dict[str, PodSample]:
    return {s.uid: s for s in samples}


def conditions(decision: Decision) -> dict[str, tuple[str, str]]:
    """The last of each type, as the status keeps them."""
    return {kind: (state, reason) for kind, state, reason, _ in decision.conditions}


CPU_ABOVE = "cpu resource utilization (percentage of request) above target"
DOWN_AT_ONCE = {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}


def test_no_metrics_for_any_pod_changes_nothing_and_says_so() -> None:
    decision = decide(spec_of(), scale(2), [pod("a"), pod("b")], {}, History(), 0.0, Settings(), WALL)
    assert (decision.current, decision.desired, decision.rescale) == (2, 2, False)
    assert conditions(decision) == {"AbleToScale": ("True", "SucceededGetScale"),
                                    "ScalingActive": ("False", "FailedGetResourceMetric")}
    message = ("failed to get cpu utilization: did not receive metrics for targeted pods (pods might be "
               "unready)")
    assert decision.conditions[-1][3] == f"the HPA was unable to compute the replica count: {message}"
    assert [(e.reason, e.message, e.warning) for e in decision.events] == [
        ("FailedGetResourceMetric", message, True),
        ("FailedComputeMetricsReplicas", f"invalid metrics (1 invalid out of 1), first error is: {message}",
         True)]


def test_cpu_above_target_scales_up() -> None:
    """85% of the 100m requested, against 50%: ceil(1.7 x 2) = 4."""
    decision = decide(spec_of(metrics=[cpu(50)]), scale(2), [pod("a"), pod("b")],
                      by_uid(sample("a", cpu=85), sample("b", cpu=85)), History(), 0.0, Settings(), WALL)
    assert (decision.desired, decision.reason) == (4, CPU_ABOVE)
    assert conditions(decision) == {"AbleToScale": ("True", "ReadyForNewScale"),
                                    "ScalingActive": ("True", "ValidMetricFound"),
                                    "ScalingLimited": ("False", "DesiredWithinRange")}
    assert decision.metrics == ({"type": "Resource", "resource": {"name": "cpu", "current": {
        "averageUtilization": 85, "averageValue": "85m"}}},)


def test_all_metrics_below_target_scale_down() -> None:
    spec = spec_of(metrics=[cpu(50), {"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "100Mi"}}}], **DOWN_AT_ONCE)
    pods = [pod(n) for n in "abcd"]
    samples = by_uid(*(sample(n, cpu=10, memory_mi=25) for n in "abcd"))
    decision = decide(spec, scale(4), pods, samples, History(), 0.0, Settings(), WALL)
    assert (decision.desired, decision.reason) == (1, "All metrics below target")
    assert decision.metrics[1] == {"type": "Resource", "resource": {"name": "memory", "current": {
        "averageValue": "26214400"}}}


def test_the_largest_proposal_wins() -> None:
    """cpu 75% of 50% proposes 3, memory 200% of 100% 4: memory's reason is told."""
    spec = spec_of(metrics=[cpu(50), {"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "Utilization", "averageUtilization": 100}}}])
    samples = by_uid(sample("a", cpu=75, memory_mi=200), sample("b", cpu=75, memory_mi=200))
    decision = decide(spec, scale(2), [pod("a"), pod("b")], samples, History(), 0.0, Settings(), WALL)
    assert (decision.desired, decision.reason) == (4, "memory resource utilization (percentage of request) "
                                                      "above target")


def test_a_failing_metric_does_not_stop_a_scale_up_but_stops_a_scale_down() -> None:
    responses = {"type": "ResponseTime", "responseTime": {"target": {"type": "Value", "milliseconds": 200}}}
    pods = [pod("a"), pod("b")]
    up = decide(spec_of(metrics=[cpu(50), responses]), scale(2), pods,
                by_uid(sample("a", cpu=100), sample("b", cpu=100)), History(), 0.0, Settings(), WALL)
    assert (up.desired, conditions(up)["ScalingActive"]) == (4, ("True", "ValidMetricFound"))
    assert [e.reason for e in up.events] == ["FailedGetResponseTimeMetric"]
    down = decide(spec_of(metrics=[cpu(50), responses], **DOWN_AT_ONCE), scale(2), pods,
                  by_uid(sample("a", cpu=10), sample("b", cpu=10)), History(), 0.0, Settings(), WALL)
    assert (down.desired, conditions(down)["ScalingActive"]) == (2, ("False", "FailedGetResponseTimeMetric"))
    assert down.events[0].message == "failed to get responseTime: did not receive response times for the " \
                                     "target's ready pods"


def test_response_time_scales_on_the_ready_pods() -> None:
    """p90 300 ms against 200: ceil(1.5 x 2 ready pods) = 3; the pod that is not Ready is not served."""
    spec = spec_of(metrics=[{"type": "ResponseTime", "responseTime": {"target": {"type": "Value",
                                                                                 "milliseconds": 200}}}])
    pods = [pod("a"), pod("b"), pod("c", ready=False)]
    samples = by_uid(sample("a", latency=(200.0, 10)), sample("b", latency=(400.0, 10)),
                     sample("c", latency=(9000.0, 10)))
    decision = decide(spec, scale(3), pods, samples, History(), 0.0, Settings(), WALL)
    assert decision.desired == 3 and decision.metrics == (
        {"type": "ResponseTime", "responseTime": {"current": {"milliseconds": 300}}},)
    assert response_time([samples["uid-a"], samples["uid-b"]], None) == 300.0
    assert response_time([samples["uid-a"]], "/api") is None  # nothing measured for that path


def test_pods_metric_averages_an_apps_own_metric() -> None:
    target = {"type": "AverageValue", "averageValue": "10"}
    spec = spec_of(metrics=[{"type": "Pods", "pods": {"metric": {"name": "queue_depth"}, "target": target}}])
    samples = by_uid(sample("a", queue_depth=25), sample("b", queue_depth=35))
    decision = decide(spec, scale(2), [pod("a"), pod("b")], samples, History(), 0.0, Settings(), WALL)
    assert (decision.desired, decision.reason) == (6, "pods metric queue_depth above target")
    assert decision.metrics == ({"type": "Pods", "pods": {"metric": {"name": "queue_depth"},
                                                          "current": {"averageValue": "30"}}},)


@pytest.mark.parametrize(("case", "current", "minimum", "expected", "reason", "active"), [
    ("below minReplicas: brought up without a metric", 1, 3, 3, "Current number of replicas below "
     "Spec.MinReplicas", None),
    ("above maxReplicas: brought down", 9, 1, 6, "Current number of replicas above Spec.MaxReplicas", None),
    ("at zero: not scaled", 0, 1, 0, "", ("False", "ScalingDisabled")),
])
def test_outside_the_bounds(case: str, current: int, minimum: int, expected: int, reason: str,
                            active: tuple[str, str] | None) -> None:
    decision = decide(spec_of(minReplicas=minimum), scale(current), [], {}, History(), 0.0, Settings(), WALL)
    assert (decision.desired, decision.reason, decision.events) == (expected, reason, ()), case
    assert conditions(decision).get("ScalingActive") == active


def test_a_container_without_a_request_makes_utilization_unusable() -> None:
    decision = decide(spec_of(), scale(1), [pod("a", cpu=None)], by_uid(sample("a", cpu=50)), History(), 0.0,
                      Settings(), WALL)
    assert decision.events[0].message == ("failed to get cpu utilization: missing request for cpu in "
                                          "container web of Pod a")


def test_a_missing_target_cannot_be_scaled() -> None:
    decision = decide(spec_of(), None, [], {}, History(), 0.0, Settings(), WALL)
    assert (decision.current, decision.rescale) == (None, False)
    assert conditions(decision) == {"AbleToScale": ("False", "FailedGetScale")}
    assert decision.events[0].message == 'deployments "web" not found'


def test_a_rescale_and_the_status_it_leaves() -> None:
    spec = spec_of(metrics=[cpu(50)])
    decision = decide(spec, scale(2), [pod("a"), pod("b")], by_uid(sample("a", cpu=85), sample("b", cpu=85)),
                      History(), 0.0, Settings(), WALL)
    done = rescaled(decision, spec, Settings(), None, 0.0)
    assert [(e.reason, e.message) for e in done.events] == [
        ("SuccessfulRescale", f"New size: 4; reason: {CPU_ABOVE}")]
    assert done.history.ups == (Stamped(0.0, 2),)
    before = {"conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                              "lastTransitionTime": "earlier"}]}
    status = next_status(before, done, 3, NOW)
    assert status["conditions"] == [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
         "message": "the HPA controller was able to update the target scale to 4",
         "lastTransitionTime": "earlier"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
         "message": "the HPA was able to successfully calculate a replica count from cpu resource "
                    "utilization (percentage of request)", "lastTransitionTime": NOW},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
         "message": "the desired count is within the acceptable range", "lastTransitionTime": NOW}]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "currentReplicas": 2, "desiredReplicas": 4, "lastScaleTime": NOW, "observedGeneration": 3,
        "currentMetrics": list(decision.metrics)}
    failed = rescaled(decision, spec, Settings(), "conflict", 0.0)
    assert (failed.desired, failed.scaled) == (2, False)
    assert conditions(failed)["AbleToScale"] == ("False", "FailedUpdateScale")
    assert failed.events[-1].message.endswith("above target; error: conflict") and failed.events[-1].warning


# --- the metrics book ---------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_book_keeps_each_nodes_latest_batch_for_a_window() -> None:
    clock = Clock()
    book = MetricsBook(window=60.0, clock=clock)
    book.record("n1", [sample("a", cpu=10), sample("b", cpu=20)])
    book.record("n2", [sample("c", cpu=30)])
    assert set(book.samples(["uid-a", "uid-b", "uid-c", "uid-x"])) == {"uid-a", "uid-b", "uid-c"}
    clock.now = 30.0
    book.record("n1", [sample("a", cpu=11)])  # b stopped there: it no longer counts
    found = book.samples(["uid-a", "uid-b", "uid-c"])
    assert {uid: s.containers["web"].cpu_millis for uid, s in found.items()} == {"uid-a": 11, "uid-c": 30}
    clock.now = 61.0  # n2 went silent a window ago
    assert set(book.samples(["uid-a", "uid-c"])) == {"uid-a"}
    book.reset()
    assert book.samples(["uid-a"]) == {}


# --- the controller, over a plain state ---------------------------------------------------------

class Metrics:
    """A stand-in for the book: these samples, whatever is asked."""

    def __init__(self) -> None:
        self.by_uid: dict[str, PodSample] = {}

    def samples(self, uids: Any) -> dict[str, PodSample]:
        return {uid: self.by_uid[uid] for uid in uids if uid in self.by_uid}


def deployment(replicas: int) -> Obj:
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "localhost/busybox:lab"}]}}
    return {"apiVersion": "berth/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template}}


def cluster(*objects: Obj) -> FakeStore:
    store = FakeStore()
    for number, obj in enumerate(objects):
        outcome, _ = store.state.apply(Create(obj, f"uid-{obj['metadata']['name']}"
                                             if obj["kind"] == "Pod" else f"uid-{number}", NOW))
        assert outcome.error is None, outcome.error
    return store


def stored_hpa(**spec: Any) -> Obj:
    return {**validate_object(hpa_document(**spec)), "metadata": {"name": "web", "namespace": "default"}}


def test_the_controller_scales_the_target_and_tells() -> None:
    store = cluster(deployment(2), stored_hpa(metrics=[cpu(50)]), pod("a"), pod("b"))
    metrics = Metrics()
    clock = Clock()
    loop = Autoscaler(store, metrics, lambda: LATER, lambda: "event-uid", Settings(), period=15.0,  # type: ignore[arg-type]
                      clock=clock)
    loop.started_leading()
    metrics.by_uid = by_uid(sample("a", cpu=85), sample("b", cpu=85))
    loop.reconcile()  # a new leader waits a period: the agents' metrics reach it first
    assert store.state.get("Deployment", "default", "web")["spec"]["replicas"] == 2  # type: ignore[index]
    clock.now = 15.0
    loop.reconcile()
    assert store.state.get("Deployment", "default", "web")["spec"]["replicas"] == 4  # type: ignore[index]
    hpa = store.state.get("HorizontalPodAutoscaler", "default", "web")
    assert hpa is not None
    status = hpa["status"]
    assert (status["currentReplicas"], status["desiredReplicas"], status["lastScaleTime"]) == (2, 4, LATER)
    events = [(e["reason"], e["message"], e["source"]["component"]) for e in store.state.list("Event")]
    assert events == [("SuccessfulRescale", f"New size: 4; reason: {CPU_ABOVE}", "horizontal-pod-autoscaler")]


def test_the_controller_writes_again_when_only_the_targets_status_moved() -> None:
    store = cluster(deployment(2), stored_hpa(minReplicas=3))
    writes: list[Any] = []
    propose = store.propose_all

    def status_moves_first(commands: list[Any], timeout: float | None = None) -> list[Any]:
        if any(isinstance(c, Replace) for c in commands) and not writes:  # the deployment controller's write
            current = store.state.get("Deployment", "default", "web")
            store.state.apply(UpdateStatus("Deployment", "default", "web", {"replicas": 2},
                                           current["metadata"]["resourceVersion"]))  # type: ignore[index]
        writes.extend(commands)
        return propose(commands)

    store.propose_all = status_moves_first  # type: ignore[method-assign]
    loop = Autoscaler(store, Metrics(), lambda: LATER, lambda: "e", Settings(), period=1.0,  # type: ignore[arg-type]
                      clock=Clock())
    loop._term_began = -1.0
    loop.reconcile()
    assert store.state.get("Deployment", "default", "web")["spec"]["replicas"] == 3  # type: ignore[index]
    assert sum(isinstance(c, Replace) for c in writes) == 2


def test_the_controller_reads_an_autoscaler_stored_before_v2() -> None:
    """An autoscaler stored by an earlier Berth (targetCPUUtilizationPercentage, no metrics) reads as v2."""
    old = {"apiVersion": "berth/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
                    "maxReplicas": 6, "targetCPUUtilizationPercentage": 50,
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}}
    store = cluster(deployment(2), old, pod("a"), pod("b"))
    metrics = Metrics()
    metrics.by_uid = by_uid(sample("a", cpu=100), sample("b", cpu=100))
    loop = Autoscaler(store, metrics, lambda: LATER, lambda: "e", Settings(), period=1.0,  # type: ignore[arg-type]
                      clock=Clock())
    loop._term_began = -1.0
    loop.reconcile()
    assert store.state.get("Deployment", "default", "web")["spec"]["replicas"] == 4  # type: ignore[index]
