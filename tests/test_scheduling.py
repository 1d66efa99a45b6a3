"""The leader's scheduler with real masters: bindings, reasons per node, events, no double binding."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.harness import GI, MasterCluster, add_node, berth, pod, wait_until

PODS = "/api/v1/namespaces/default/pods"
# nodes here have no agent: Ready is written by the test, and must not expire
NO_GRACE_EXPIRY = {"node_grace_seconds": 3600, "controllers": ["node-lifecycle", "scheduler"]}


def sized_pod(name: str, cpu: str = "100m", memory: str = "64Mi", **spec: Any) -> dict:
    obj = pod(name)
    obj["spec"]["containers"][0]["resources"]["requests"] = {"cpu": cpu, "memory": memory}
    obj["spec"].update(spec)
    return obj


def create(cluster: MasterCluster, obj: dict, index: int = 0) -> None:
    answer = cluster.session().post(cluster.url(index, PODS), json=obj, timeout=10)
    assert answer.status_code == 201, answer.text


def get_pod(cluster: MasterCluster, name: str, index: int = 0) -> dict:
    return cluster.session().get(cluster.url(index, f"{PODS}/{name}"), timeout=10).json()


def node_of(cluster: MasterCluster, name: str) -> str | None:
    return get_pod(cluster, name)["spec"].get("nodeName")


@pytest.mark.parametrize("own_cluster", [NO_GRACE_EXPIRY], indirect=True)
def test_pods_are_placed_by_requests_selectors_and_taints(own_cluster: MasterCluster) -> None:
    cluster = own_cluster
    add_node(cluster, "h1", cpu=1000, memory=GI)
    add_node(cluster, "h2", cpu=2000, memory=4 * GI, labels={"disk": "ssd"})
    add_node(cluster, "h3", cpu=2000, memory=GI,
             taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    create(cluster, sized_pod("fits", memory="2Gi"))
    create(cluster, sized_pod("huge", memory="8Gi"))
    create(cluster, sized_pod("ssd", nodeSelector={"disk": "ssd"}))
    create(cluster, sized_pod("db", nodeSelector={"dedicated": "db"},
                              tolerations=[{"key": "dedicated", "operator": "Exists"}]))
    wait_until(lambda: node_of(cluster, "fits") and node_of(cluster, "ssd"), 30, what="pods bound")
    assert node_of(cluster, "fits") == "h2" and node_of(cluster, "ssd") == "h2"

    expected = "0/3 nodes fit: 2 Insufficient memory, 1 node(s) had taint dedicated=db:NoSchedule"

    def reason(name: str) -> str | None:
        conditions = (get_pod(cluster, name).get("status") or {}).get("conditions") or []
        return next((c["message"] for c in conditions if c["type"] == "PodScheduled"), None)

    wait_until(lambda: reason("huge") == expected, 30, what="huge's reason")
    assert node_of(cluster, "huge") is None
    # no node has the label dedicated=db: the toleration alone does not place it
    wait_until(lambda: reason("db") is not None and "node selector" in reason("db"), 30, what="db's reason")
    described = berth(cluster, "describe", "pod", "huge")
    assert described.returncode == 0, described.stderr
    assert "FailedScheduling" in described.stdout and expected in " ".join(described.stdout.split())
    assert "Scheduled" in berth(cluster, "describe", "pod", "fits").stdout

    # room appears (a new node): the waiting pod is placed without being touched
    add_node(cluster, "h4", cpu=4000, memory=16 * GI)
    wait_until(lambda: node_of(cluster, "huge") == "h4", 30, what="huge placed on the new node")


@pytest.mark.parametrize("own_cluster", [NO_GRACE_EXPIRY], indirect=True)
def test_twenty_pods_spread_and_a_new_leader_binds_each_pod_once(own_cluster: MasterCluster) -> None:
    cluster = own_cluster
    for name in ("h1", "h2", "h3"):
        add_node(cluster, name, cpu=4000, memory=8 * GI)
    for i in range(20):
        create(cluster, sized_pod(f"web-{i}"), index=i % 3)

    def placements() -> Counter | None:
        items = cluster.session().get(cluster.url(0, PODS), timeout=10).json()["items"]
        nodes = [p["spec"].get("nodeName") for p in items]
        return Counter(nodes) if all(nodes) and len(nodes) == 20 else None

    counts = wait_until(placements, 30, what="20 pods bound")
    assert sorted(counts.values()) == [6, 7, 7], counts

    before = {f"web-{i}": get_pod(cluster, f"web-{i}")["spec"]["nodeName"] for i in range(20)}
    leader = cluster.leader_index()
    cluster.kill(leader)
    survivor = (leader + 1) % 3
    for i in range(20, 26):
        wait_until(lambda i=i: cluster.session().post(
            cluster.url(survivor, PODS), json=sized_pod(f"web-{i}"),
            timeout=10).status_code == 201, 30, what=f"web-{i} created")
    wait_until(lambda: all(get_pod(cluster, f"web-{i}", survivor)["spec"].get("nodeName")
                           for i in range(20, 26)), 30, what="pods bound by the new leader")
    assert {name: get_pod(cluster, name, survivor)["spec"]["nodeName"] for name in before} == before
    events = cluster.session().get(cluster.url(survivor, "/api/v1/namespaces/default/events"), timeout=10)
    scheduled = Counter({e["involvedObject"]["name"]: e["count"] for e in events.json()["items"]
                         if e["reason"] == "Scheduled"})
    assert scheduled == Counter({f"web-{i}": 1 for i in range(26)})  # each pod bound once, by one leader


EVICTING = {**NO_GRACE_EXPIRY, "controllers": ["node-lifecycle", "taint-eviction"]}


@pytest.mark.parametrize("own_cluster", [EVICTING], indirect=True)
def test_a_no_execute_taint_evicts_the_pods_that_do_not_tolerate_it(own_cluster: MasterCluster) -> None:
    cluster = own_cluster
    add_node(cluster, "h1", cpu=2000, memory=4 * GI)
    maintenance = {"key": "maint", "operator": "Exists", "effect": "NoExecute"}
    for name, tolerations in (("plain", []), ("forever", [maintenance]),
                              ("brief", [{**maintenance, "tolerationSeconds": 2}])):
        create(cluster, sized_pod(name, nodeName="h1", tolerations=tolerations))
    session = cluster.session()
    node = session.get(cluster.url(0, "/api/v1/nodes/h1"), timeout=10).json()
    node["spec"]["taints"] = [{"key": "maint", "effect": "NoExecute"}]
    tainted_before = datetime.now(UTC)
    assert session.put(cluster.url(0, "/api/v1/nodes/h1"), json=node, timeout=10).status_code == 200

    def marked(name: str) -> bool:
        return bool(get_pod(cluster, name)["metadata"].get("deletionTimestamp"))

    wait_until(lambda: marked("plain"), 30, interval=0.2, what="plain evicted at once")
    wait_until(lambda: marked("brief"), 30, interval=0.2, what="brief evicted after its tolerationSeconds")
    brief_at = datetime.fromisoformat(get_pod(cluster, "brief")["metadata"]["deletionTimestamp"])
    assert brief_at >= tainted_before + timedelta(seconds=2)  # not before its tolerationSeconds
    assert not marked("forever")
    assert get_pod(cluster, "plain")["metadata"]["deletionGracePeriodSeconds"] == 30
    described = " ".join(berth(cluster, "describe", "pod", "plain").stdout.split())
    assert "TaintManagerEviction" in described and "Marking for deletion Pod default/plain" in described
