"""A lost node on real masters (no hosts: heartbeats sent by the test, a stand-in kubelet): its pods
are marked Unknown at once, moved after their default toleration, and it takes no new work when it
comes back until the runtime has cleaned it (the lab tests, test_lab_cluster.py, do it on hosts)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from berth.lab.fake_kubelet import FakeKubelet
from tests.harness import (
    GI,
    TOKENS,
    WORKLOADS,
    MasterCluster,
    add_node,
    berth,
    berth_process,
    sampling,
    wait_until,
)
from tests.test_workloads_masters import NS, create, deployment, get, rolled_out

CLUSTER_SETTINGS = {"controllers": ["node-lifecycle", "scheduler", "taint-eviction", *WORKLOADS],
                    "node_grace_seconds": 1.5, "default_eviction_seconds": 1}
NODES = ("s0", "s1", "s2")


class Heartbeats:
    """Heartbeats for the nodes that are alive, every 0.3 s (the masters take an admin's too)."""

    def __init__(self, cluster: MasterCluster) -> None:
        self.cluster, self.alive = cluster, set(NODES)
        self.admin = cluster.session()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for name in list(self.alive):
                for index in range(3):
                    try:
                        answer = self.admin.post(self.cluster.url(index, f"/api/v1/nodes/{name}/heartbeat"),
                                                 json={"cpuPercent": 1.0, "memoryUsed": GI}, timeout=2)
                    except OSError:
                        continue
                    if answer.status_code == 200:
                        break

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def beating(cluster: MasterCluster) -> Iterator[Heartbeats]:
    for name in NODES:
        add_node(cluster, name, cpu=64000, memory=256 * GI)
    with Heartbeats(cluster) as beats, FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1],
                                                   ca_file=cluster.ca_file):
        yield beats


def pods_of(cluster: MasterCluster, app: str) -> list[dict[str, Any]]:
    return get(cluster, f"{NS}/pods?labelSelector=app={app}")["items"]


def taints(cluster: MasterCluster, node: str) -> list[str]:
    return [t["key"] for t in get(cluster, f"/api/v1/nodes/{node}")["spec"].get("taints") or []]


def test_a_lost_nodes_pods_are_marked_moved_and_it_returns_tainted(beating: Heartbeats) -> None:
    cluster = beating.cluster
    create(cluster, deployment("heal", 3))
    rolled_out(cluster, "heal")
    made = pods_of(cluster, "heal")
    assert all({"key": "node.berth.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 1} in p["spec"]["tolerations"] for p in made)  # the admission's default
    lost = made[0]["spec"]["nodeName"]
    on_lost = {p["metadata"]["name"] for p in made if p["spec"]["nodeName"] == lost}
    create(cluster, {"kind": "Pod", "metadata": {"name": "lone", "labels": {"app": "lone"}}, "spec": {
        "nodeName": lost, "containers": [{"name": "main", "image": "localhost/busybox:lab"}]}})  # a bare pod
    wait_until(lambda: [p for p in pods_of(cluster, "lone") if (p.get("status") or {}).get("phase")
                        == "Running"], 20, what="the bare pod running")
    watcher = berth_process(cluster, "get", "events", "-w", "--request-timeout", "60", stdout=subprocess.PIPE,
                            text=True)

    def phases() -> dict[str, str]:
        return {p["metadata"]["name"]: (p.get("status") or {}).get("phase", "")
                for p in pods_of(cluster, "heal") if p["metadata"]["name"] in on_lost}

    with sampling(phases, 0.1) as seen:
        beating.alive.discard(lost)
        wait_until(lambda: "node.berth.io/unreachable" in taints(cluster, lost), 20,
                   what="the lost node tainted")
        described = berth(cluster, "describe", "node", lost).stdout
        assert "node.berth.io/unreachable:NoExecute" in described, described
        def elsewhere() -> list[dict[str, Any]]:
            return [p for p in pods_of(cluster, "heal") if p["spec"].get("nodeName") not in (None, lost)
                    and (p.get("status") or {}).get("phase") == "Running"]

        moved = wait_until(lambda: elsewhere() if len(elsewhere()) == 3 else None, 30,
                           what="three replicas running on the other nodes")
    assert len(moved) == 3
    assert any(phase == "Unknown" for sample in seen for phase in sample.values()), seen[-5:]
    events = get(cluster, f"{NS}/events")["items"]
    assert any(e["reason"] == "TaintManagerEviction" and e["involvedObject"]["name"] in on_lost
               for e in events)
    wait_until(lambda: not [p for p in pods_of(cluster, "heal") if p["metadata"]["name"] in on_lost], 30,
               what="the lost node's pods gone from the API")
    wait_until(lambda: not pods_of(cluster, "lone"), 30, what="the bare pod deleted, as Kubernetes does")
    told = [e for e in get(cluster, f"{NS}/events")["items"] if e["involvedObject"]["name"] == "lone"]
    assert any(e["reason"] == "TaintManagerEviction" for e in told), told
    watcher.terminate()  # each row is written as it comes: what the watch printed is all in the pipe
    printed, _ = watcher.communicate(timeout=20)
    assert any("TaintManagerEviction" in line and "lone" in line for line in printed.splitlines()), printed
    beating.alive.add(lost)  # it comes back: Ready, but returning (no runtime here takes the taint off)
    wait_until(lambda: taints(cluster, lost) == ["node.berth.io/returning"], 20, what="returning")
    scaled = cluster.session().patch(cluster.url(0, f"{NS}/deployments/heal/scale"), timeout=10,
                                     json={"spec": {"replicas": 6}},
                                     headers={"Content-Type": "application/merge-patch+json"})
    assert scaled.status_code == 200
    rolled_out(cluster, "heal")
    assert all(p["spec"]["nodeName"] != lost for p in pods_of(cluster, "heal"))  # no new work there yet
