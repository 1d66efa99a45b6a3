"""The autoscaler in the CLI without a master: `get hpa` columns and `describe hpa` as kubectl shows
them, and, against the stand-in master of test_cli_unit, what `berth autoscale` sends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.cli.commands.autoscale import autoscaler_for
from berth.cli.describe_autoscalers import describe_autoscaler
from berth.cli.output import render_objects
from tests.test_cli_unit import FakeServer, _serve, run

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
NS = "/api/v1/namespaces/default"
CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                   "averageUtilization": 50}}}
MEMORY = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                        "averageValue": "100Mi"}}}
LATENCY = {"type": "ResponseTime", "responseTime": {"target": {"type": "Value", "milliseconds": 200}}}
QUEUE = {"type": "Pods", "pods": {"metric": {"name": "queue_depth"},
                                  "target": {"type": "AverageValue", "averageValue": "10"}}}
BEHAVIOR = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                     {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100,
                                                                "periodSeconds": 15}]}}


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def hpa(metrics: list[Any], current: list[Any] | None = None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": stamp(120)},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
                 "metrics": metrics, "behavior": BEHAVIOR},
        "status": status}
    if current is not None:
        obj["status"]["currentMetrics"] = current
    return obj


def test_get_hpa_shows_each_metric_against_its_target() -> None:
    current = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 85,
                                                                            "averageValue": "85m"}}},
               {"type": "ResponseTime", "responseTime": {"current": {"milliseconds": 240}}},
               {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "41943040"}}}]
    table = render_objects("HorizontalPodAutoscaler", [hpa([CPU, MEMORY, LATENCY, QUEUE], current,
                                                           currentReplicas=3)], None, now=NOW)
    assert [re.split(r"\s{2,}", line) for line in table.splitlines()] == [
        ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
        ["web", "Deployment/web", "cpu: 85%/50%, memory: 40Mi/100Mi, responseTime: 240ms/200ms, "
                                  "queue_depth: <unknown>/10", "2", "6", "3", "2m"]]


@pytest.mark.parametrize(("obj", "targets"), [
    (hpa([CPU]), "cpu: <unknown>/50%"),
    ({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "old"},  # stored before v2
      "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 70}},
     "cpu: <unknown>/70%"),
    ({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "odd"}, "spec": "garbage"}, "<none>"),
])
def test_get_hpa_without_current_values(obj: dict[str, Any], targets: str) -> None:
    row = render_objects("HorizontalPodAutoscaler", [obj], None, now=NOW).splitlines()[1]
    assert targets in row


def test_describe_hpa_reads_as_kubectls() -> None:
    conditions = [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
         "message": "the HPA controller was able to update the target scale to 4"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
         "message": "the HPA was able to successfully calculate a replica count from cpu resource "
                    "utilization (percentage of request)"}]
    current = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 85,
                                                                            "averageValue": "85m"}}}]
    obj = hpa([CPU, MEMORY, LATENCY, QUEUE], current, currentReplicas=2, desiredReplicas=4,
              conditions=conditions)
    events = [{"kind": "Event", "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "web",
                                                   "namespace": "default"},
               "reason": "SuccessfulRescale", "type": "Normal", "lastTimestamp": stamp(10),
               "source": {"component": "horizontal-pod-autoscaler"},
               "message": "New size: 4; reason: cpu resource utilization (percentage of request) above "
                          "target"}]
    page = describe_autoscaler(obj, events, NOW)
    for line in (
        "Reference:            Deployment/web",
        "Metrics:              ( current / target )",
        "  resource cpu on pods  (as a percentage of request):  85% (85m) / 50%",
        "  resource memory on pods:  <unknown> / 100Mi",
        "  p90 response time of the ready pods:  <unknown> / 200ms",
        '  "queue_depth" on pods:  <unknown> / 10',
        "Min replicas:         2",
        "Max replicas:         6",
        "Behavior:",
        "  Scale Up:",
        "    Stabilization Window: 0 seconds",
        "    Select Policy: Max",
        "      - Type: Pods  Value: 4  Period: 15 seconds",
        "  Scale Down:",
        "      - Type: Percent  Value: 100  Period: 15 seconds",
        "Deployment pods:      2 current / 4 desired",
    ):
        assert line + "\n" in page, (line, page)
    assert "Stabilization Window" not in page.split("Scale Down:")[1]  # unset: the master's setting
    table = page.split("Conditions:\n")[1]
    assert table.splitlines()[2].split()[:3] == ["AbleToScale", "True", "SucceededRescale"]
    assert page.splitlines()[-1].split()[:2] == ["Normal", "SuccessfulRescale"] and "New size: 4" in page


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from _serve()


def deployment() -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2}}


def test_autoscale_makes_the_autoscaler_kubectl_makes(fake: FakeServer) -> None:
    fake.json("GET", f"{NS}/deployments/web", deployment())
    fake.routes[("POST", f"{NS}/horizontalpodautoscalers")] = lambda h, q, b: h.send_json(201, json.loads(b))
    result = run(fake.url, "autoscale", "deploy/web", "--min", "2", "--max", "6", "--cpu-percent", "70")
    assert (result.exit_code, result.stdout) == (0, "horizontalpodautoscaler/web autoscaled\n"), result.output
    sent = json.loads(fake.requests[-1]["body"])
    assert sent["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 6,
                            "minReplicas": 2, "metrics": [{"type": "Resource", "resource": {
                                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}
    result = run(fake.url, "autoscale", "deploy", "web", "--max", "3", "--name", "front",
                 "--dry-run", "client")
    assert (result.exit_code, result.stdout) == (0, "horizontalpodautoscaler/front autoscaled (dry run)\n")
    assert fake.requests[-1]["method"] == "GET"  # nothing sent


def test_autoscale_refuses_what_it_cannot_scale(fake: FakeServer) -> None:
    result = run(fake.url, "autoscale", "pod/web", "--max", "3")
    assert result.exit_code == 1 and "autoscale works on deployments, replicasets, not pods" in result.stderr
    assert run(fake.url, "autoscale", "deploy/web").exit_code == 2  # --max is required, as kubectl's
    fake.json("GET", f"{NS}/deployments/nope", {"error": "Deployment default/nope not found",
                                                "reason": "NotFound", "field": "metadata.name"}, status=404)
    result = run(fake.url, "autoscale", "deploy/nope", "--max", "3")
    assert result.exit_code == 1 and "(NotFound)" in result.stderr


def test_what_autoscale_leaves_to_the_defaults() -> None:
    made = autoscaler_for({"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "prod"}}, 4)
    assert made["metadata"] == {"name": "rs", "namespace": "prod"}
    assert made["spec"] == {"scaleTargetRef": {"kind": "ReplicaSet", "name": "rs"}, "maxReplicas": 4}
