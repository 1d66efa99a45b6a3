"""The pure scheduler: filters, scores and the reasons a pod fits nowhere."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from master.liveness import READY, SILENT, with_ready
from master.scheduler import Scheduler, SchedulerConfig, build_snapshot, pod_info
from master.scheduler.schedule import feasible_to_find
from master.scheduler.snapshot import DEFAULT_MEMORY, PodInfos

GI = 2**30


def node(name: str, cpu: int = 2000, memory: int = 4 * GI, ready: bool = True, **spec: Any) -> dict:
    labels = spec.pop("labels", {})
    return {"kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"address": "10.0.0.1", **spec},
            "status": {**with_ready({}, READY if ready else SILENT, "t"),
                       "allocatable": {"cpu": cpu, "memory": memory}}}


def pod(name: str, cpu: str | None = "100m", memory: str | None = "64Mi", node_name: str | None = None,
        owner: str | None = None, ports: list[dict] | None = None, phase: str | None = None,
        **spec: Any) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": 1}
    if owner:
        meta["ownerReferences"] = [{"kind": "Deployment", "name": owner, "controller": True}]
    obj = {"kind": "Pod", "metadata": meta,
           "spec": {"containers": [{"name": "c", "image": "busybox", "ports": ports or [],
                                    "resources": {"requests": requests}}], **spec}}
    if node_name:
        obj["spec"]["nodeName"] = node_name
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def run(nodes: list[dict], pending: list[dict], bound: list[dict] | None = None,
        config: SchedulerConfig | None = None) -> tuple[dict[str, str], dict[str, str]]:
    snapshot = build_snapshot(nodes, bound or [])
    result = Scheduler(config).schedule(snapshot, [pod_info(p) for p in pending])
    return ({p.name: n for p, n in result.bindings}, {p.name: why for p, why in result.unschedulable})


def test_a_pod_lands_where_its_requests_fit() -> None:
    nodes = [node("h1", memory=GI), node("h2", memory=8 * GI), node("h3", memory=GI)]
    bound = [pod("big", memory="900Mi", node_name="h1"), pod("other", memory="900Mi", node_name="h3")]
    placed, failed = run(nodes, [pod("p", memory="512Mi")], bound)
    assert placed == {"p": "h2"} and failed == {}


def test_a_pod_too_big_for_every_node_gets_the_reasons_per_node() -> None:
    nodes = [node("h1", memory=GI), node("h2", memory=GI),
             node("h3", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])]
    placed, failed = run(nodes, [pod("huge", memory="2Gi")])
    assert placed == {}
    assert failed == {
        "huge": "0/3 nodes fit: 2 Insufficient memory, 1 node(s) had taint dedicated=db:NoSchedule"}
    _, failed = run([node("h1", cpu=500, memory=GI)], [pod("both", cpu="1", memory="2Gi")])
    assert failed == {"both": "0/1 nodes fit: 1 Insufficient cpu, 1 Insufficient memory"}
    assert run([], [pod("p")])[1] == {"p": "0/0 nodes fit: no nodes"}


def test_requests_count_against_allocatable_including_this_rounds_placements() -> None:
    placed, failed = run([node("h1", cpu=1000)], [pod(f"p{i}", cpu="400m") for i in range(3)])
    assert placed == {"p0": "h1", "p1": "h1"} and failed == {"p2": "0/1 nodes fit: 1 Insufficient cpu"}
    # finished pods hold nothing; a limit without a request is the request
    bound = [pod("done", cpu="900m", node_name="h1", phase="Succeeded")]
    assert run([node("h1", cpu=1000)], [pod("p", cpu="900m")], bound)[0] == {"p": "h1"}
    # a resource the pod does not request is not checked, even on an overcommitted node
    over = [pod("over", cpu="3", node_name="h1")]
    assert run([node("h1", cpu=1000)], [pod("mem-only", cpu=None)], over)[0] == {"mem-only": "h1"}
    limited = pod("lim", cpu=None)
    limited["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    assert pod_info(limited).cpu == 2000


def test_node_selector_taints_and_tolerations() -> None:
    db_taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    nodes = [node("h1", labels={"disk": "ssd"}), node("h2", labels={"disk": "hdd"}),
             node("h3", labels={"disk": "ssd"}, taints=[db_taint])]
    placed, _ = run(nodes, [pod("ssd", nodeSelector={"disk": "ssd"})])
    assert placed == {"ssd": "h1"}
    _, failed = run(nodes, [pod("nvme", nodeSelector={"disk": "nvme"})])
    assert failed == {"nvme": "0/3 nodes fit: 3 node(s) didn't match Pod's node selector"}
    db_only = {"disk": "ssd"}
    for toleration in ({"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"},
                       {"key": "dedicated", "operator": "Exists"}, {"operator": "Exists"}):
        busy = [pod("fill", cpu="2", node_name="h1")]  # h1 is full: only the tainted ssd node is left
        placed, failed = run(nodes, [pod("db", nodeSelector=db_only, tolerations=[toleration])], busy)
        assert placed == {"db": "h3"}, (toleration, failed)
    for wrong in ({"key": "dedicated", "value": "web", "effect": "NoSchedule"},
                  {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}):
        busy = [pod("fill", cpu="2", node_name="h1")]
        _, failed = run(nodes, [pod("db", nodeSelector=db_only, tolerations=[wrong])], busy)
        assert "1 node(s) had taint dedicated=db:NoSchedule" in failed["db"]
    no_execute = [node("h1", taints=[{"key": "gone", "effect": "NoExecute"}])]
    assert run(no_execute, [pod("p")])[1] == {"p": "0/1 nodes fit: 1 node(s) had taint gone:NoExecute"}
    soft = [node("h1", taints=[{"key": "maybe", "effect": "PreferNoSchedule"}])]
    assert run(soft, [pod("p")])[0] == {"p": "h1"}  # a preference, never a refusal
    # ... that steers: an emptier but softly tainted node loses to a fuller untainted one,
    # unless the pod tolerates the taint
    busy = [pod("fill", cpu="1", node_name="h2")]
    steered = [node("h1", taints=[{"key": "maybe", "effect": "PreferNoSchedule"}]), node("h2")]
    assert run(steered, [pod("p")], busy)[0] == {"p": "h2"}
    tolerant = pod("t", tolerations=[{"key": "maybe", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert run(steered, [tolerant], busy)[0] == {"t": "h1"}


def test_not_ready_unschedulable_and_host_ports() -> None:
    nodes = [node("h1", ready=False), node("h2", unschedulable=True), node("h3")]
    web = [{"containerPort": 80, "hostPort": 8080}]
    placed, failed = run(nodes, [pod("a", ports=web), pod("b", ports=web)])
    assert placed == {"a": "h3"}
    assert failed == {"b": "0/3 nodes fit: 1 node(s) didn't have free ports for the requested pod ports, "
                           "1 node(s) were not ready, 1 node(s) were unschedulable"}
    udp = [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]
    assert run(nodes, [pod("a", ports=web), pod("c", ports=udp)])[0] == {"a": "h3", "c": "h3"}


def test_twenty_pods_spread_over_three_hosts_and_binpack_fills_one() -> None:
    nodes = [node(f"h{i}") for i in (1, 2, 3)]
    placed, _ = run(nodes, [pod(f"p{i}") for i in range(20)])
    assert sorted(Counter(placed.values()).values()) == [6, 7, 7]
    placed, _ = run(nodes, [pod(f"p{i}") for i in range(5)], config=SchedulerConfig("MostAllocated"))
    assert set(placed.values()) == {"h1"}
    with pytest.raises(ValueError, match="resource_score"):
        SchedulerConfig("Random")


def test_pods_without_requests_spread_as_if_they_requested_kubernetes_defaults() -> None:
    """The bug: eight pods without requests all went to the least-requested node. Scoring counts
    100m and 200Mi for a container without requests (fitting still counts nothing)."""
    nodes = [node("h1"), node("h2"), node("h3", cpu=4000, memory=8 * GI)]
    placed, _ = run(nodes, [pod(f"p{i}", cpu=None, memory=None) for i in range(8)])
    assert sorted(Counter(placed.values()).values()) == [2, 2, 4]  # h3, twice the size, takes twice as many
    info = pod_info(pod("bare", cpu=None, memory=None))
    assert (info.cpu, info.memory, info.score_cpu, info.score_memory) == (0, 0, 100, 200 << 20)
    tiny = node("tiny", cpu=50, memory=64 << 20)  # smaller than the defaults: still fits a bare pod
    assert run([tiny], [pod("bare", cpu=None, memory=None)])[0] == {"bare": "tiny"}


def test_replicas_of_one_owner_spread_even_onto_a_smaller_node() -> None:
    nodes = [node("big", cpu=16000, memory=64 * GI), node("small", cpu=2000, memory=4 * GI)]
    placed, _ = run(nodes, [pod(f"web-{i}", owner="web") for i in range(4)])
    assert Counter(placed.values()) == {"big": 2, "small": 2}
    placed, _ = run(nodes, [pod(f"solo-{i}") for i in range(4)])  # no owner: the emptier node wins
    assert set(placed.values()) == {"big"}


def test_large_clusters_are_sampled_like_kubernetes_and_every_node_gets_a_turn() -> None:
    assert [feasible_to_find(n) for n in (3, 99, 100, 1000, 5000)] == [3, 99, 100, 420, 500]
    nodes = [node(f"n{i:04d}", cpu=100_000, memory=1000 * GI) for i in range(1000)]
    placed, failed = run(nodes, [pod(f"p{i}") for i in range(1000)])
    assert not failed and len(set(placed.values())) > 900


def test_eviction_delays_follow_kubernetes_taint_manager() -> None:
    from master.controllers.taint_eviction import eviction_delay, no_execute_taints
    from master.objects.kinds import Taint

    maint, gpu = Taint(key="maint", effect="NoExecute"), Taint(key="gpu", value="yes", effect="NoExecute")
    node = {"spec": {"taints": [{"key": "maint", "effect": "NoExecute"},
                                {"key": "soft", "effect": "NoSchedule"}]}}
    assert no_execute_taints(node) == [maint]  # NoSchedule taints never evict
    assert eviction_delay([], []) is None
    assert eviction_delay([], [maint]) == 0
    everything = {"operator": "Exists"}
    assert eviction_delay([everything], [maint, gpu]) is None
    assert eviction_delay([{"key": "maint", "operator": "Exists", "tolerationSeconds": 30}], [maint]) == 30
    assert eviction_delay([{"key": "maint", "operator": "Exists"}], [maint, gpu]) == 0  # gpu untolerated
    both = [{"key": "maint", "operator": "Exists", "tolerationSeconds": 30},
            {"key": "gpu", "value": "yes", "tolerationSeconds": 5}]
    assert eviction_delay(both, [maint, gpu]) == 5  # the least of those that matched
    assert eviction_delay([{"key": "maint", "operator": "Exists", "effect": "NoSchedule"}], [maint]) == 0


@pytest.mark.parametrize(("init", "app", "default", "effective"), [
    ([], [100, 200], 0, 300),                 # no init containers: the sum
    ([500], [100, 200], 0, 500),              # one init container larger than the app's sum
    ([100, 250], [100, 200], 0, 300),         # the largest init container, smaller than the sum
    ([None], [None, 50], 0, 50),              # requesting none counts nothing to fit
    ([None], [None, 50], 100, 150),           # ... and Kubernetes' default to score
    ([None, None], [], 100, 100),             # (max, not sum, of the init containers)
])
def test_the_effective_request_is_the_larger_of_the_largest_init_container_and_the_app_sum(
        init: list, app: list, default: int, effective: int) -> None:
    from master.scheduler.snapshot import effective_request

    assert effective_request(init, app, default) == effective


def test_init_container_requests_count_for_fit_as_kubernetes_counts_them() -> None:
    heavy = pod("heavy", cpu="100m", memory="64Mi")
    heavy["spec"]["initContainers"] = [
        {"name": "big", "image": "busybox", "resources": {"requests": {"cpu": "1500m", "memory": "32Mi"}}},
        {"name": "port", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}]}]
    info = pod_info(heavy)
    assert (info.cpu, info.memory) == (1500, 64 << 20)  # max(1500, 100) and max(32Mi, 64Mi)
    assert (info.score_cpu, info.score_memory) == (1500, DEFAULT_MEMORY)  # no request: 200Mi to score
    assert info.host_ports == frozenset()  # an init container's ports are published nowhere
    placed, failed = run([node("h1", cpu=1000), node("h2", cpu=2000)], [heavy])
    assert placed == {"heavy": "h2"}
    placed, failed = run([node("h1", cpu=1000)], [heavy])
    assert placed == {} and "Insufficient cpu" in failed["heavy"]


@pytest.mark.parametrize(("nodes", "percentage", "scored"), [
    (3, 0, 3), (99, 10, 99),                  # below 100 nodes: every node, whatever the percentage
    (100, 0, 100), (1000, 0, 420), (5000, 0, 500), (6000, 0, 300), (20000, 0, 1000),  # adaptive, 5% at least
    (1000, 50, 500), (1000, 5, 100),          # a set percentage, never below 100 nodes
    (1000, 100, 1000), (5000, 100, 5000),     # 100: every node
])
def test_percentage_of_nodes_to_score_is_kubernetes_num_feasible_nodes_to_find(
        nodes: int, percentage: int, scored: int) -> None:
    assert feasible_to_find(nodes, percentage) == scored


@pytest.mark.parametrize("percentage", [-1, 101, True, 50.5, "50"])
def test_percentage_of_nodes_to_score_is_a_whole_number_from_0_to_100(percentage: Any) -> None:
    from master.config import MasterConfig

    with pytest.raises(ValueError, match="percentage_of_nodes_to_score"):
        SchedulerConfig(percentage_of_nodes_to_score=percentage)
    with pytest.raises(ValueError, match="percentage_of_nodes_to_score"):
        MasterConfig(name="m1", raft_address="127.0.0.1:7201", api_address="127.0.0.1:7101",
                     data_dir="/tmp/unused", tokens_file="/tmp/unused", insecure_raft_without_password=True,
                     percentage_of_nodes_to_score=percentage)


def test_only_the_sampled_feasible_nodes_are_scored_unless_the_percentage_is_100() -> None:
    """200 alike nodes and a far larger last one: by default the first 100 feasible nodes from
    where the search starts are scored and the first of those wins; at 100% the large one does."""
    nodes = [node(f"n{i:03d}") for i in range(199)] + [node("n199", cpu=100_000, memory=100 * GI)]
    assert run(nodes, [pod("p")])[0] == {"p": "n000"}
    assert run(nodes, [pod("p")], config=SchedulerConfig(percentage_of_nodes_to_score=50))[0] == {"p": "n000"}
    every = SchedulerConfig(percentage_of_nodes_to_score=100)
    assert run(nodes, [pod("p")], config=every)[0] == {"p": "n199"}


def test_what_a_round_remembers_between_pods_answers_as_asking_every_node_afresh() -> None:
    """The round's memo (feasible nodes, resource scores, owners' counts), kept current from the
    journal of placements and removals, decides each pod as one built for that pod alone."""
    import random

    rng = random.Random(5)
    db_taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    soft = {"key": "soft", "effect": "PreferNoSchedule"}
    nodes = [node(f"n{i:03d}", cpu=rng.choice([500, 1000, 2000]), memory=rng.choice([1, 2]) * GI,
                  ready=i % 17 != 0, unschedulable=i % 23 == 0, labels={"disk": "ssd" if i % 2 else "hdd"},
                  taints=[db_taint] if i % 10 == 0 else [soft] if i % 7 == 0 else [])
             for i in range(150)]
    pending = [pod(f"p{i}", cpu=f"{rng.choice([100, 250, 500])}m", memory=f"{rng.choice([64, 256])}Mi",
                   owner=f"app{i % 7}" if i % 5 else None,
                   ports=[{"containerPort": 80, "hostPort": 8000 + i % 3}] if i % 11 == 0 else None,
                   nodeSelector={"disk": "ssd"} if i % 3 == 0 else {},
                   tolerations=[{"key": "dedicated", "operator": "Exists"}] if i % 4 == 0 else [])
               for i in range(600)]
    infos = [pod_info(p) for p in pending]
    decided = []
    for fresh in (False, True):
        snapshot, scheduler = build_snapshot(nodes, []), Scheduler()
        placed: list = []
        for i, info in enumerate(infos):
            if fresh:
                scheduler._memo = None  # nothing remembered: every filter and score asked of every node
            found, why = scheduler.place(snapshot, info)
            if found is not None:
                found.assume(info)
                placed.append((found, info))
            if i % 50 == 49:  # some leave again, as the rebalancer's plan moves them
                for gone, left in placed[-3:]:
                    gone.forget(left)
            placed_on = found.name if found is not None else why
            if fresh:
                assert placed_on == decided[i], (i, info)
            else:
                decided.append(placed_on)
    assert len(set(decided)) > 100 and any(d.startswith("0/150 nodes fit") for d in decided)


def test_bound_pods_are_read_once_per_resource_version_and_forgotten_when_gone() -> None:
    infos = PodInfos()
    nodes = [node("n1", 4000, 8 * GI)]
    first = pod("a", "500m", "1Gi", node_name="n1")
    assert build_snapshot(nodes, [first], infos=infos).by_name["n1"].requested_cpu == 500
    kept = infos.of(first)
    assert infos.of(first) is kept  # the same resourceVersion: not read again
    changed = pod("a", "1", "1Gi", node_name="n1")
    changed["metadata"]["resourceVersion"] = 2
    assert build_snapshot(nodes, [changed], infos=infos).by_name["n1"].requested_cpu == 1000
    build_snapshot(nodes, [], infos=infos)
    build_snapshot(nodes, [], infos=infos)
    assert infos.of(changed) is not infos.of(first)
    assert infos.of(first).cpu == 500  # gone for a round, then read afresh
