"""Draining a real host: the replicas move to the other hosts within their disruption budget, the host
ends with none of Berth's containers, and once uncordoned it takes pods again.

Three lab hosts ("dr", names of their own) and three masters with the scheduler, the runtime, the
workload controllers and the disruption controller; the test deletes what it made before it ends.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from berth.lab import hosts as lab_hosts
from berth.lab.hosts import IMAGE, Lab
from tests.conftest import TEST_ROOT
from tests.harness import MasterCluster, berth, masters_driving, sampling, temporary_lab, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")  # CI runs as root
NS = "/api/v1/namespaces/default"
MANIFEST = f"""apiVersion: berth/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: {IMAGE}
        command: [httpd, -f, -p, '8080']
        resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}
---
apiVersion: berth/v1
kind: PodDisruptionBudget
metadata: {{name: web}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: web}}}}
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with temporary_lab("dr", hosts=3) as made:
        yield made


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[MasterCluster]:
    with masters_driving(lab, TEST_ROOT / "drain-lab", controllers=("disruption",)) as made:
        yield made


def get(cluster: MasterCluster, path: str) -> Any:
    return cluster.session().get(cluster.url(0, path), timeout=10).json()


def ready(cluster: MasterCluster) -> list[dict[str, Any]]:
    """The Deployment's pods a budget counts healthy: Ready and not terminating."""
    def healthy(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return not pod["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return [p for p in get(cluster, f"{NS}/pods?labelSelector=app=web")["items"] if healthy(p)]


def containers_on(lab: Lab, host: str) -> list[str]:
    listed = lab_hosts.in_host(lab, host, ["podman", "ps", "-a", "--filter", "label=berth.managed=true",
                                           "--format", "{{.Names}}"], check=False)
    assert isinstance(listed, subprocess.CompletedProcess) and listed.returncode == 0, listed
    return listed.stdout.split()


def cli(cluster: MasterCluster, *args: str) -> str:
    done = berth(cluster, *args, timeout=150)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_drain_moves_replicas_within_the_budget_and_uncordon_brings_the_host_back(
        cluster: MasterCluster, lab: Lab) -> None:
    try:
        cli(cluster, "cordon", "h2", "h3")
        done = berth(cluster, "apply", "-f", "-", stdin=MANIFEST)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: len(ready(cluster)) == 3, 90, interval=0.5, what="three replicas running on h1")
        assert {p["spec"]["nodeName"] for p in ready(cluster)} == {"h1"}
        cli(cluster, "uncordon", "h2", "h3")
        wait_until(lambda: (get(cluster, f"{NS}/poddisruptionbudgets/web").get("status") or {})
                   .get("disruptionsAllowed") == 1, 30, what="the budget allowing one")

        with sampling(lambda: len(ready(cluster)), 0.2) as counts:
            drained = cli(cluster, "drain", "h1", "--timeout", "120s").splitlines()
        assert counts and min(counts) >= 2, counts
        assert drained[0] == "node/h1 cordoned" and drained[-1] == "node/h1 drained", drained
        assert get(cluster, "/api/v1/pods?fieldSelector=spec.nodeName=h1")["items"] == []
        assert containers_on(lab, "h1") == []
        moved = ready(cluster)
        assert len(moved) == 3 and {p["spec"]["nodeName"] for p in moved} == {"h2", "h3"}

        cli(cluster, "uncordon", "h1")
        rebalanced = cli(cluster, "rebalance")
        assert rebalanced.startswith("pod/web-") and "0 on h1" in rebalanced, rebalanced
        wait_until(lambda: len(ready(cluster)) == 3 and "h1" in {p["spec"]["nodeName"]
                                                                 for p in ready(cluster)},
                   60, interval=0.5, what="a replica running on h1 again")
        [back] = [p for p in ready(cluster) if p["spec"]["nodeName"] == "h1"]
        assert any(back["metadata"]["name"] in name for name in containers_on(lab, "h1"))
    finally:
        berth(cluster, "uncordon", "h1", "h2", "h3")
        berth(cluster, "delete", "pdb", "web")
        berth(cluster, "delete", "deploy", "web")
        wait_until(lambda: not get(cluster, f"{NS}/pods?labelSelector=app=web")["items"], 60, interval=0.5,
                   what="the deployment's pods gone")
