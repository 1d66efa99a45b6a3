"""The horizontal-pod-autoscaler loop on real masters, without agents (so without metrics): an
autoscaler says it cannot compute a count and leaves its target alone, and a target below
minReplicas is brought up all the same, as Kubernetes' controller does. The path with the agents'
metrics is the lab's (the pure decisions are table-tested in test_autoscaling.py)."""

from __future__ import annotations

from typing import Any

from master.objects.kinds import API_VERSION
from tests.harness import MasterCluster, wait_until

CLUSTER_SETTINGS = {"controllers": ["horizontal-pod-autoscaler"],
                    "horizontal_pod_autoscaler_sync_period_seconds": 1}
NS = "/api/v1/namespaces/default"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": API_VERSION, "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": "localhost/busybox:lab",
                          "resources": {"requests": {"cpu": "100m"}}}]}}}}


def pod(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "web", "image": "localhost/busybox:lab",
                                     "resources": {"requests": {"cpu": "100m"}}}]}}


def autoscaler(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}, "maxReplicas": 5, **spec}}


def post(cluster: MasterCluster, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = cluster.session().post(cluster.url(0, f"{NS}/{plural}"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def get(cluster: MasterCluster, path: str) -> dict[str, Any]:
    answer = cluster.session().get(cluster.url(1, f"{NS}/{path}?consistent=true"), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def condition(hpa: dict[str, Any], kind: str) -> tuple[str, str] | None:
    found = [c for c in (hpa.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return (found[0]["status"], found[0]["reason"]) if found else None


def events(cluster: MasterCluster, name: str) -> list[tuple[str, str]]:
    listed = get(cluster, "events")["items"]
    about = ("HorizontalPodAutoscaler", name)
    return [(e["reason"], e["message"]) for e in listed
            if (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == about]


def test_without_metrics_nothing_changes_and_the_autoscaler_says_why(cluster: MasterCluster) -> None:
    post(cluster, "deployments", deployment("quiet", 2))
    for index in range(2):
        post(cluster, "pods", pod(f"quiet-{index}", "quiet"))
    stored = post(cluster, "horizontalpodautoscalers", autoscaler("quiet", targetCPUUtilizationPercentage=60))
    assert stored["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]  # stored as v2

    def decided() -> dict[str, Any] | None:
        hpa = get(cluster, "horizontalpodautoscalers/quiet")
        return hpa if condition(hpa, "ScalingActive") == ("False", "FailedGetResourceMetric") else None

    hpa = wait_until(decided, 30, interval=0.2, what="the autoscaler's verdict")
    assert condition(hpa, "AbleToScale") == ("True", "SucceededGetScale")
    assert (hpa["status"]["currentReplicas"], hpa["status"]["desiredReplicas"]) == (2, 2)
    assert get(cluster, "deployments/quiet")["spec"]["replicas"] == 2
    message = ("failed to get cpu utilization: did not receive metrics for targeted pods (pods might be "
               "unready)")
    assert ("FailedGetResourceMetric", message) in events(cluster, "quiet")


def test_a_target_below_min_replicas_is_scaled_up_without_metrics(cluster: MasterCluster) -> None:
    post(cluster, "deployments", deployment("small", 1))
    post(cluster, "horizontalpodautoscalers", autoscaler("small", minReplicas=3))
    wait_until(lambda: get(cluster, "deployments/small")["spec"]["replicas"] == 3, 30, interval=0.2,
               what="the deployment at minReplicas")
    hpa = wait_until(lambda: (h := get(cluster, "horizontalpodautoscalers/small")).get("status", {}).get(
        "lastScaleTime") and h, 30, interval=0.2, what="the autoscaler's status")
    assert condition(hpa, "AbleToScale") == ("True", "SucceededRescale")
    assert ("SuccessfulRescale", "New size: 3; reason: Current number of replicas below Spec.MinReplicas") \
        in events(cluster, "small")


def test_the_api_refuses_an_autoscaler_naming_the_field(cluster: MasterCluster) -> None:
    answer = cluster.session().post(cluster.url(2, f"{NS}/horizontalpodautoscalers"), timeout=10,
                                    json=autoscaler("bad", metrics=[{"type": "Object", "object": {}}]))
    assert answer.status_code == 422  # the published schema allows the type; Berth does not implement it
    refused = answer.json()
    assert (refused["reason"], refused["field"]) == ("FieldValueNotSupported", "spec.metrics[0].type")
