"""Deployments on real hosts: a rolling update keeps every replica serving, a lost pod comes back,
and a rollout to an image that cannot start stalls with the old pods serving until it is undone.

Three lab hosts ("wl", names of their own) and three masters with the scheduler, the runtime and the
workload controllers, shared by the module's tests; the test deletes its Deployment before it ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from berth.lab.hosts import IMAGE, Lab
from tests.conftest import TEST_ROOT
from tests.harness import MasterCluster, berth, masters_driving, sampling, temporary_lab, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
NS = "/api/v1/namespaces/default"
MANIFEST = """apiVersion: berth/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  progressDeadlineSeconds: 15
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: {image}
        command: [sh, -c, 'echo "$GREETING" > /tmp/index.html && exec httpd -f -p 8080 -h /tmp']
        env: [{{name: GREETING, value: {greeting}}}]
        resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("wl", hosts=3) as made:
        yield made


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[MasterCluster]:
    with masters_driving(lab, TEST_ROOT / "workloads-lab") as made:
        yield made


def apply(cluster: MasterCluster, image: str = IMAGE, greeting: str = "v1") -> None:
    done = berth(cluster, "apply", "-f", "-", stdin=MANIFEST.format(image=image, greeting=greeting))
    assert done.returncode == 0, done.stderr


def pods(cluster: MasterCluster) -> list[dict[str, Any]]:
    answer = cluster.session().get(cluster.url(0, f"{NS}/pods?labelSelector=app=web"), timeout=10)
    return [p for p in answer.json()["items"] if not p["metadata"].get("deletionTimestamp")]


def ready(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in listed if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]


def greeting_in(cluster: MasterCluster, pod: str) -> str:
    """What the container itself holds: read by exec on its host, not from the spec."""
    answer = cluster.session().post(cluster.url(0, f"{NS}/pods/{pod}/exec"), timeout=30,
                                    json={"command": ["cat", "/tmp/index.html"]})
    assert answer.status_code == 200, answer.text
    return answer.json()["stdout"].strip()


def rollout_status(cluster: MasterCluster, timeout: str = "120s") -> Any:
    return berth(cluster, "rollout", "status", "deploy/web", f"--timeout={timeout}", timeout=150)


def test_rolling_update_replacement_stall_and_undo(cluster: MasterCluster) -> None:
    try:
        apply(cluster)
        done = rollout_status(cluster)
        assert done.returncode == 0 and 'deployment "web" successfully rolled out' in done.stdout, done
        first = {p["metadata"]["name"] for p in pods(cluster)}
        assert len(first) == 3
        # a changed env rolls out one surge pod at a time; never fewer than 3 ready
        with sampling(lambda: len(ready(pods(cluster))), 0.2) as counts:
            apply(cluster, greeting="v2")
            done = rollout_status(cluster)
        assert done.returncode == 0, done
        assert counts and min(counts) >= 3, counts
        now = pods(cluster)
        assert len(now) == 3 and not first & {p["metadata"]["name"] for p in now}
        assert {greeting_in(cluster, p["metadata"]["name"]) for p in now} == {"v2"}
        # a deleted pod is replaced
        lost = now[0]["metadata"]["name"]
        assert berth(cluster, "delete", "pod", lost).returncode == 0
        wait_until(lambda: len(ready(pods(cluster))) == 3 and lost not in {p["metadata"]["name"]
                                                                             for p in pods(cluster)},
                   60, interval=0.5, what="a replacement for the deleted pod")
        # an image that does not exist: the rollout stalls, the old pods keep serving
        serving = {p["metadata"]["name"] for p in ready(pods(cluster))}
        apply(cluster, image="localhost/berth-missing:nope", greeting="v3")
        stalled = rollout_status(cluster)
        assert stalled.returncode != 0 and "exceeded its progress deadline" in stalled.stderr + stalled.stdout
        assert serving <= {p["metadata"]["name"] for p in ready(pods(cluster))}
        undone = berth(cluster, "rollout", "undo", "deploy/web")
        assert undone.returncode == 0, undone
        done = rollout_status(cluster)
        assert done.returncode == 0, done
        back = pods(cluster)
        assert len(ready(back)) == 3 and all(p["spec"]["containers"][0]["image"] == IMAGE for p in back)
        assert {greeting_in(cluster, p["metadata"]["name"]) for p in back} == {"v2"}
    finally:
        berth(cluster, "delete", "deploy", "web")
        wait_until(lambda: not cluster.session().get(cluster.url(0, f"{NS}/pods?labelSelector=app=web"),
                                                     timeout=10).json()["items"], 60, interval=0.5,
                   what="the deployment's pods gone")
