"""The rebalancer on its own (`rebalance: true`), on real masters with a stand-in for the hosts.

Two nodes hold a Deployment's six replicas, three each, under a budget that lets one go at a time;
a third node joins: the rebalancer moves replicas there until each node holds two, one eviction
at a time as the budget allows, never more than `rebalance_max_evictions` in a round, and the
budget's ready count never drops below what it asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from berth.lab.fake_kubelet import FakeKubelet
from tests.harness import GI, TOKENS, WORKLOADS, MasterCluster, add_node, sampling, wait_until
from tests.test_drain_masters import budget, counted, make_budget, ready_count
from tests.test_workloads_masters import Pods, create, deployment, get, rolled_out

MAX_EVICTIONS = 2
CLUSTER_SETTINGS = {"controllers": ["node-lifecycle", "scheduler", *WORKLOADS, "disruption"],
                    "node_grace_seconds": 3600, "rebalance": True, "rebalance_period_seconds": 1,
                    "rebalance_max_evictions": MAX_EVICTIONS}
NS = "/api/v1/namespaces/default"
ROUND = re.compile(r"rebalancer: (\d+) pod\(s\) evicted, (\d+) refused")


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for name in ("r0", "r1"):
        add_node(cluster, name, cpu=64000, memory=256 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file):
        yield cluster


def per_node(pods: Pods) -> list[int]:
    nodes: dict[str, int] = {}
    for pod in pods.ready(pods.active()):
        nodes[pod["spec"]["nodeName"]] = nodes.get(pod["spec"]["nodeName"], 0) + 1
    return sorted(nodes.values())


def rounds(cluster: MasterCluster) -> list[tuple[int, int]]:
    """(evicted, refused) of every round that evicted, from the masters' logs."""
    return [(int(evicted), int(refused)) for master in cluster.masters
            for evicted, refused in ROUND.findall(master.log_file.read_text(errors="replace"))]


def test_a_joining_node_gets_replicas_within_the_budget(hosts: MasterCluster) -> None:
    create(hosts, deployment("spread", 6))
    create(hosts, deployment("loose", 4))  # no budget: its moves fill rounds up to the limit
    rolled_out(hosts, "spread")
    rolled_out(hosts, "loose")
    pods, loose = Pods(hosts, "spread"), Pods(hosts, "loose")
    assert per_node(pods) == [3, 3] and per_node(loose) == [2, 2]
    make_budget(hosts, budget("spread", "spread", maxUnavailable=1))
    counted(hosts, "spread", allowed=1, healthy=6)
    plan = get(hosts, "/api/v1/rebalance")
    assert plan["items"] == [], plan  # balanced over the two nodes there are

    with sampling(lambda: ready_count(pods), 0.1) as ready:
        add_node(hosts, "r2", cpu=64000, memory=256 * GI)
        wait_until(lambda: per_node(pods) == [2, 2, 2] and len(pods.active()) == 6, 60, interval=0.2,
                   what="two replicas on each node")
        wait_until(lambda: per_node(loose) == [1, 1, 2] and len(loose.active()) == 4, 30, interval=0.2,
                   what="the loose deployment spread too")
    assert ready and min(ready) >= 5, ready  # maxUnavailable 1 of 6, all the way
    done = rounds(hosts)
    assert done and all(evicted <= MAX_EVICTIONS for evicted, _ in done), done
    assert sum(evicted for evicted, _ in done) == 2 + 1  # two of spread's, one of loose's: no more
    assert len([e for e in get(hosts, f"{NS}/events")["items"] if e["reason"] == "Rebalanced"]) == 3
    assert get(hosts, "/api/v1/rebalance")["items"] == []
