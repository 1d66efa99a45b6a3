"""Evictions, disruption budgets, cordon, drain and a rebalance on demand, on real masters with a
stand-in for the hosts (berth/lab/fake_kubelet.py): bound pods become Ready, deleted ones go.

Three masters run the scheduler, the workload controllers and the disruption controller (the
rebalancer stays off here: `berth rebalance` asks for its round; test_rebalance_masters.py runs it
by itself). Each test leaves the nodes schedulable and deletes what it made.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from berth.lab.fake_kubelet import FakeKubelet
from tests.harness import (
    GI,
    TOKENS,
    WORKLOADS,
    MasterCluster,
    add_node,
    berth,
    control_characters,
    pod,
    sampling,
    wait_until,
)
from tests.test_workloads_masters import Pods, create, deployment, get, patch, rolled_out

CLUSTER_SETTINGS = {"controllers": ["node-lifecycle", "scheduler", *WORKLOADS, "disruption"],
                    "node_grace_seconds": 3600}
NS = "/api/v1/namespaces/default"
NODES = ("n0", "n1", "n2")
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for name in NODES:
        add_node(cluster, name, cpu=64000, memory=256 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file):
        yield cluster


def budget(name: str, app: str, **bound: int | str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": app}}, **bound}}


def make_budget(cluster: MasterCluster, body: dict[str, Any]) -> dict[str, Any]:
    answer = cluster.session().post(cluster.url(0, f"{NS}/poddisruptionbudgets"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def counted(cluster: MasterCluster, name: str, allowed: int, healthy: int) -> dict[str, Any]:
    """The budget once its controller has counted its latest spec: `allowed` disruptions of `healthy`."""
    def done() -> dict[str, Any] | None:
        pdb = get(cluster, f"{NS}/poddisruptionbudgets/{name}")
        status = pdb.get("status") or {}
        fresh = status.get("observedGeneration") == pdb["metadata"]["generation"]
        ok = (status.get("disruptionsAllowed"), status.get("currentHealthy")) == (allowed, healthy)
        return pdb if fresh and ok else None

    return wait_until(done, 30, interval=0.1, what=f"budget {name} allowing {allowed} of {healthy}")


def evict(cluster: MasterCluster, name: str, role: str = "admin", at: int = 0,
          body: dict[str, Any] | None = None) -> requests.Response:
    eviction = body or {"apiVersion": "berth/v1", "kind": "Eviction",
                        "metadata": {"name": name, "namespace": "default"}}
    path = f"{NS}/pods/{name}/eviction"
    return cluster.session(role).post(cluster.url(at, path), json=eviction, timeout=10)


def ready_count(pods: Pods) -> int:
    return len(pods.ready(pods.active()))


def on_node(cluster: MasterCluster, node: str) -> list[dict[str, Any]]:
    return get(cluster, f"/api/v1/pods?fieldSelector=spec.nodeName={node}")["items"]


def delete_all(cluster: MasterCluster, app: str, *paths: str) -> None:
    for path in paths:
        cluster.session().delete(cluster.url(0, f"{NS}/{path}"), timeout=10)
    wait_until(lambda: not Pods(cluster, app).listed(), 30, what=f"the pods of {app} gone")


def cli(cluster: MasterCluster, *args: str) -> Any:
    done = berth(cluster, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def test_an_eviction_is_allowed_or_refused_by_the_budget(hosts: MasterCluster) -> None:
    create(hosts, deployment("evict", 2))
    rolled_out(hosts, "evict")
    make_budget(hosts, budget("evict", "evict", minAvailable=2))
    counted(hosts, "evict", allowed=0, healthy=2)
    first, second = (p["metadata"]["name"] for p in Pods(hosts, "evict").active())

    refused = evict(hosts, first)
    assert refused.status_code == 429, refused.text
    assert refused.json()["reason"] == "TooManyRequests" and refused.json()["error"] == TOO_MANY
    cause = refused.json()["details"][0]["error"]
    assert cause == "The disruption budget evict needs 2 healthy pods and has 2 currently"
    assert evict(hosts, first, role="operator").status_code == 429  # allowed to ask: refused by the budget
    for role in ("viewer", "agent"):
        assert evict(hosts, first, role=role).status_code == 403
    wrong = evict(hosts, first, body={"kind": "Eviction", "metadata": {"name": second}})
    assert wrong.status_code == 422 and wrong.json()["field"] == "metadata.name"  # against the path
    unknown = evict(hosts, first, body={"kind": "Eviction", "metadata": {"name": first},
                                        "deleteOptions": {"preconditions": {"uid": "x"}}})
    assert unknown.status_code == 400 and unknown.json()["field"] == "deleteOptions.preconditions"
    assert evict(hosts, "nobody").status_code == 404

    # two budgets over one pod: Kubernetes' 500, here a 422 that says so
    make_budget(hosts, budget("evict-too", "evict", maxUnavailable=1))
    twice = evict(hosts, first)
    assert twice.status_code == 422, twice.text
    assert "more than one PodDisruptionBudget" in twice.json()["error"]
    hosts.session().delete(hosts.url(0, f"{NS}/poddisruptionbudgets/evict-too"), timeout=10)

    # one allowed disruption: taken by the eviction, in the same write as the pod's deletion
    patch(hosts, f"{NS}/poddisruptionbudgets/evict", {"spec": {"minAvailable": None, "maxUnavailable": 1}})
    before = counted(hosts, "evict", allowed=1, healthy=2)
    since = int(before["metadata"]["resourceVersion"])
    allowed = evict(hosts, first, at=1)
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["status"] == "Success" and allowed.json()["details"]["disruptionBudget"] == "evict"
    changes = hosts.session().get(hosts.url(0, f"/api/v1/watch?kind=PodDisruptionBudget&since={since}"
                                            "&timeoutSeconds=1"), timeout=10).text.splitlines()
    charged = next(json.loads(line)["object"]["status"] for line in changes if '"MODIFIED"' in line)
    assert charged["disruptionsAllowed"] == 0 and set(charged["disruptedPods"]) == {first}
    wait_until(lambda: ready_count(Pods(hosts, "evict")) == 2 and first not in
               {p["metadata"]["name"] for p in Pods(hosts, "evict").listed()}, 30, what="a replacement")
    counted(hosts, "evict", allowed=1, healthy=2)
    delete_all(hosts, "evict", "deployments/evict", "poddisruptionbudgets/evict")


def test_an_allowance_is_spent_by_one_eviction(hosts: MasterCluster) -> None:
    """Bare pods (nothing makes them again): one allowed disruption, two evictions, one goes."""
    for name in ("solo-a", "solo-b"):
        create(hosts, pod(name, labels={"app": "solo"}))
    make_budget(hosts, budget("solo", "solo", minAvailable=1))
    counted(hosts, "solo", allowed=1, healthy=2)
    answers = [evict(hosts, name, at=index).status_code for index, name in enumerate(("solo-a", "solo-b"))]
    assert answers == [201, 429], answers
    counted(hosts, "solo", allowed=0, healthy=1)
    assert [p["metadata"]["name"] for p in Pods(hosts, "solo").active()] == ["solo-b"]
    delete_all(hosts, "solo", "pods/solo-b", "poddisruptionbudgets/solo")


def test_drain_keeps_the_budget_empties_the_node_and_uncordon_brings_it_back(hosts: MasterCluster) -> None:
    assert cli(hosts, "cordon", "n1", "n2").stdout.splitlines() == ["node/n1 cordoned", "node/n2 cordoned"]
    assert cli(hosts, "cordon", "n1").stdout.strip() == "node/n1 already cordoned"
    shown = {line.split()[0]: line.split()[1] for line in cli(hosts, "get", "nodes").stdout.splitlines()[1:]}
    assert shown["n1"] == "Ready,SchedulingDisabled" and shown["n0"] == "Ready"
    described = cli(hosts, "describe", "node", "n1").stdout
    assert "Unschedulable:        true" in described and "Non-terminated Pods:  (0 in total)" in described
    try:
        create(hosts, deployment("drained", 3))
        rolled_out(hosts, "drained")
        pods = Pods(hosts, "drained")
        assert {p["spec"]["nodeName"] for p in pods.active()} == {"n0"}
        assert cli(hosts, "uncordon", "n1", "n2").stdout.splitlines() == ["node/n1 uncordoned",
                                                                          "node/n2 uncordoned"]
        make_budget(hosts, budget("drained", "drained", minAvailable=2))
        counted(hosts, "drained", allowed=1, healthy=3)
        assert "ALLOWED DISRUPTIONS" in cli(hosts, "get", "pdb").stdout

        with sampling(lambda: ready_count(pods), 0.1) as ready:
            drained = berth(hosts, "drain", "n0", "--timeout", "60s", timeout=90)
        assert drained.returncode == 0, (drained.stdout, drained.stderr)
        assert ready and min(ready) >= 2, ready
        lines = drained.stdout.splitlines()
        assert lines[0] == "node/n0 cordoned" and lines[-1] == "node/n0 drained", lines
        assert sum(line.startswith("evicting pod default/drained-") for line in lines) == 3
        assert sum(line.startswith("pod/drained-") and line.endswith(" evicted") for line in lines) == 3
        assert TOO_MANY in drained.stderr  # the second eviction waited for a replacement to be Ready
        assert not control_characters(drained.stdout + drained.stderr)  # a pipe: no live line
        assert on_node(hosts, "n0") == []
        moved = pods.active()
        assert len(pods.ready(moved)) == 3 and {p["spec"]["nodeName"] for p in moved} <= {"n1", "n2"}

        # back in service: the rebalancer's plan would move one replica there, and moves it on demand
        assert cli(hosts, "uncordon", "n0").stdout.strip() == "node/n0 uncordoned"
        plan = cli(hosts, "rebalance", "--dry-run").stdout.splitlines()
        assert plan[0].split() == ["POD", "NODE", "REASON"] and len(plan) == 2, plan
        assert plan[1].startswith("default/drained-") and "pods of ReplicaSet/drained-" in plan[1]
        assert "0 on n0" in plan[1]
        assert berth(hosts, "rebalance", role="viewer").returncode == 1  # reading the plan is not evicting
        done = cli(hosts, "rebalance").stdout
        assert done.startswith("pod/drained-") and " evicted from n" in done, done
        wait_until(lambda: sorted(p["spec"].get("nodeName") or "" for p in pods.ready(pods.active()))
                   == ["n0", "n1", "n2"], 30, what="one replica on each node")
        assert cli(hosts, "rebalance", "--dry-run").stdout.strip() == "Nothing to rebalance."
        assert any(e["reason"] == "Rebalanced" for e in get(hosts, f"{NS}/events")["items"])
    finally:
        berth(hosts, "uncordon", *NODES)
        delete_all(hosts, "drained", "deployments/drained", "poddisruptionbudgets/drained")


def test_drain_needs_force_for_bare_pods_and_stops_at_its_timeout(hosts: MasterCluster) -> None:
    cli(hosts, "cordon", "n1", "n2")
    try:
        create(hosts, pod("lonely", labels={"app": "lonely"}))
        create(hosts, deployment("stuck", 2))
        rolled_out(hosts, "stuck")
        make_budget(hosts, budget("stuck", "stuck", minAvailable=2))
        counted(hosts, "stuck", allowed=0, healthy=2)
        wait_until(lambda: get(hosts, f"{NS}/pods/lonely")["spec"].get("nodeName") == "n0", 20,
                   what="the bare pod bound")
        cli(hosts, "uncordon", "n1", "n2")

        refused = berth(hosts, "drain", "n0")
        assert refused.returncode == 1 and refused.stdout.strip() == "node/n0 cordoned", refused
        said = ('error: unable to drain node "n0" due to error: cannot delete Pods that declare no '
                "controller (use --force to override): default/lonely, continuing command...")
        assert said in refused.stderr
        assert "There are pending nodes to be drained:\n n0\n" in refused.stderr
        assert get(hosts, f"{NS}/pods/lonely")["metadata"].get("deletionTimestamp") is None  # nothing evicted

        late = berth(hosts, "drain", "n0", "--force", "--timeout", "3s", "--grace-period", "0")
        assert late.returncode == 1, late
        assert "Warning: deleting Pods that declare no controller: default/lonely" in late.stderr
        assert "pod/lonely evicted" in late.stdout and "node/n0 drained" not in late.stdout
        assert "global timeout reached: 3s" in late.stderr and TOO_MANY in late.stderr
        assert not control_characters(late.stdout + late.stderr)
        assert hosts.session().get(hosts.url(0, f"{NS}/pods/lonely"), timeout=10).status_code == 404
        assert len(Pods(hosts, "stuck").active()) == 2  # the budget held them

        patch(hosts, f"{NS}/poddisruptionbudgets/stuck", {"spec": {"minAvailable": 1}})
        counted(hosts, "stuck", allowed=1, healthy=2)
        done = berth(hosts, "drain", "n0", "--timeout", "60s", timeout=90)
        assert done.returncode == 0 and done.stdout.splitlines()[-1] == "node/n0 drained", done
        assert on_node(hosts, "n0") == []
    finally:
        berth(hosts, "uncordon", *NODES)
        hosts.session().delete(hosts.url(0, f"{NS}/pods/lonely?gracePeriodSeconds=0"), timeout=10)
        delete_all(hosts, "stuck", "deployments/stuck", "poddisruptionbudgets/stuck")
