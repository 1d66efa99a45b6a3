"""Disruption budgets, evictions and the rebalancer's plan, pure (no master): tables of cases.

The budget's maths is Kubernetes' disruption controller's (master/workloads/disruption.py); the
eviction's verdict its eviction subresource's; the plan the descheduler's RemoveDuplicates and
LowNodeUtilization over the scheduler's own filters (master/scheduler/rebalance.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from master.errors import ApiError
from master.scheduler.rebalance import Plan, RebalanceConfig, plan_rebalance
from master.workloads.disruption import (
    DELETION_TIMEOUT,
    AlreadyGoing,
    Evict,
    Refuse,
    Scale,
    budget_status,
    eviction_verdict,
    expected_pods,
    scaled,
)

NOW = 1_800_000_000.0
STAMP = "2027-01-15T08:00:00.000000Z"  # NOW as the store writes times
EARLIER = "2027-01-15T07:59:30.000000Z"  # 30 s before
LONG_AGO = "2027-01-15T07:50:00.000000Z"  # 10 minutes before
GI = 1 << 30


def test_the_stamps_are_what_the_tests_take_them_for() -> None:
    from master.workloads.replicas import moment
    assert moment(STAMP) == NOW and NOW - moment(EARLIER) == 30 and NOW - moment(LONG_AGO) > DELETION_TIMEOUT


def pod(name: str, *, ready: bool = True, phase: str = "Running", node: str | None = "n1",
        deleting: bool = False, owner: str | None = "rs-web", labels: dict[str, str] | None = None,
        cpu: str | None = None, memory: str | None = None, namespace: str = "default",
        rv: int = 5) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                            "labels": labels if labels is not None else {"app": "web"}, "resourceVersion": rv,
                            "creationTimestamp": EARLIER}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "berth/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = EARLIER
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox",
                                            "resources": {"requests": requests}}]}
    if node:
        spec["nodeName"] = node
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": EARLIER}]
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "conditions": conditions}}


def budget(name: str = "web", *, least: int | str | None = None, most: int | str | None = None,
           status: dict[str, Any] | None = None, generation: int = 1, app: str = "web") -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": app}}}
    if least is not None:
        spec["minAvailable"] = least
    if most is not None:
        spec["maxUnavailable"] = most
    return {"apiVersion": "berth/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": generation,
                         "resourceVersion": 9},
            "spec": spec, "status": {"observedGeneration": 1, **(status or {})}}


# --- the budget's status -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "total", "expected"), [
    (2, 10, 2), ("50%", 3, 2), ("50%", 4, 2), ("34%", 3, 2), ("100%", 7, 7), ("0%", 5, 0), ("1%", 1, 1)])
def test_percentages_round_up(value: int | str, total: int, expected: int) -> None:
    assert scaled(value, total) == expected


def test_expected_pods_counts_each_controller_once_and_a_bare_pod_as_one() -> None:
    pods = [pod("a"), pod("b"), pod("c", owner=None), pod("d", owner="rs-other")]
    scales = {"uid-a": Scale("uid-deploy", 5), "uid-b": Scale("uid-deploy", 5), "uid-c": None,
              "uid-d": Scale("uid-rs-other", 2)}
    assert expected_pods(pods, scales) == 5 + 1 + 2


WEB = {f"uid-{n}": Scale("uid-deploy", 3) for n in ("a", "b", "c", "d", "e")}


@pytest.mark.parametrize(("case", "spec", "pods", "scales", "expected"), [
    # (currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed)
    ("min 2 of 3 ready", {"least": 2}, [pod("a"), pod("b"), pod("c")], WEB, (3, 2, 3, 1)),
    ("min 2, one not ready", {"least": 2}, [pod("a"), pod("b"), pod("c", ready=False)], WEB, (2, 2, 3, 0)),
    ("min 2, one terminating", {"least": 2}, [pod("a"), pod("b"), pod("c", deleting=True)], WEB,
     (2, 2, 3, 0)),
    ("min 3 of 2: none, never negative", {"least": 3}, [pod("a"), pod("b")], WEB, (2, 3, 2, 0)),
    ("min 50% of scale 3 rounds up to 2", {"least": "50%"}, [pod("a"), pod("b"), pod("c")], WEB,
     (3, 2, 3, 1)),
    ("min 50% counts the scale, not the pods", {"least": "50%"}, [pod("a")], WEB, (1, 2, 3, 0)),
    ("max 1 of scale 3", {"most": 1}, [pod("a"), pod("b"), pod("c")], WEB, (3, 2, 3, 1)),
    ("max 1 while one is missing", {"most": 1}, [pod("a"), pod("b")], WEB, (2, 2, 3, 0)),
    ("max 34% of 3 rounds up to 2", {"most": "34%"}, [pod("a"), pod("b"), pod("c")], WEB, (3, 1, 3, 2)),
    ("max 100%: all may go", {"most": "100%"}, [pod("a"), pod("b")], WEB, (2, 0, 3, 2)),
    ("max 0: none may go", {"most": 0}, [pod("a"), pod("b"), pod("c")], WEB, (3, 3, 3, 0)),
    ("bare pods count one each", {"most": 1}, [pod("a", owner=None), pod("b", owner=None)],
     {"uid-a": None, "uid-b": None}, (2, 1, 2, 1)),
    ("no pods: nothing allowed", {"least": 0}, [], {}, (0, 0, 0, 0)),
])
def test_the_budget_counts_as_kubernetes(case: str, spec: dict[str, Any], pods: list[dict[str, Any]],
                                         scales: dict[str, Scale | None],
                                         expected: tuple[int, int, int, int]) -> None:
    status = budget_status(budget(**spec), pods, scales, NOW, STAMP)
    counted = (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"],
               status["disruptionsAllowed"])
    assert counted == expected, case
    [allowed] = status["conditions"]
    assert (allowed["type"], allowed["status"], allowed["reason"]) == (
        ("DisruptionAllowed", "True", "SufficientPods") if expected[3] else
        ("DisruptionAllowed", "False", "InsufficientPods"))
    assert status["observedGeneration"] == 1


@pytest.mark.parametrize(("case", "recorded", "pods", "kept", "healthy"), [
    ("a recent eviction whose pod is still here holds it out", {"a": EARLIER}, [pod("a"), pod("b")],
     {"a": EARLIER}, 1),
    ("an eviction older than the timeout is dropped", {"a": LONG_AGO}, [pod("a"), pod("b")], {}, 2),
    ("an eviction whose pod is terminating is done", {"a": EARLIER}, [pod("a", deleting=True), pod("b")],
     {}, 1),
    ("an eviction whose pod is gone is done", {"a": EARLIER}, [pod("b")], {}, 1),
    ("an unreadable time is dropped", {"a": "yesterday"}, [pod("a"), pod("b")], {}, 2),
])
def test_recorded_evictions_expire(case: str, recorded: dict[str, str], pods: list[dict[str, Any]],
                                   kept: dict[str, str], healthy: int) -> None:
    status = budget_status(budget(most=1, status={"disruptedPods": recorded}), pods,
                           {p["metadata"]["uid"]: Scale("uid-deploy", 2) for p in pods}, NOW, STAMP)
    assert status.get("disruptedPods", {}) == kept, case
    assert status["currentHealthy"] == healthy, case


def test_the_condition_keeps_its_time_while_its_verdict_holds() -> None:
    before = {"conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                              "lastTransitionTime": LONG_AGO}]}
    three = [pod("a"), pod("b"), pod("c")]
    same = budget_status(budget(least=2, status=before), three, WEB, NOW, STAMP)
    assert same["conditions"][0]["lastTransitionTime"] == LONG_AGO
    turned = budget_status(budget(least=3, status=before), three, WEB, NOW, STAMP)
    assert turned["conditions"][0]["lastTransitionTime"] == STAMP


# --- one eviction ------------------------------------------------------------------------------

ALLOWS_ONE = {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}
ALLOWS_NONE = {"disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 3}


def refusal(verdict: Any) -> ApiError:
    assert isinstance(verdict, Refuse), verdict
    return verdict.error


def test_an_eviction_the_budget_allows_charges_it_and_records_the_pod() -> None:
    verdict = eviction_verdict(pod("a"), [budget(least=2, status=ALLOWS_ONE)], STAMP)
    assert isinstance(verdict, Evict) and not verdict.pinned
    assert verdict.budget is not None and verdict.budget["metadata"]["name"] == "web"
    assert verdict.status is not None
    assert verdict.status["disruptionsAllowed"] == 0 and verdict.status["disruptedPods"] == {"a": STAMP}
    assert verdict.status["conditions"][0]["reason"] == "InsufficientPods"


def test_an_eviction_the_budget_refuses_is_a_429_with_kubectl_s_words() -> None:
    error = refusal(eviction_verdict(pod("a"), [budget(least=2, status=ALLOWS_NONE)], STAMP))
    assert (error.status, error.reason) == (429, "TooManyRequests")
    assert error.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert error.details[0]["error"] == "The disruption budget web needs 2 healthy pods and has 2 currently"


@pytest.mark.parametrize(("case", "target", "budgets", "expected"), [
    ("no budget", pod("a"), [], Evict()),
    ("another app's budget", pod("a"), [budget(least=2, status=ALLOWS_NONE, app="db")], Evict()),
    ("terminating already", pod("a", deleting=True), [budget(least=2, status=ALLOWS_NONE)], AlreadyGoing()),
    ("finished", pod("a", phase="Succeeded"), [budget(least=2, status=ALLOWS_NONE)], Evict()),
    ("failed", pod("a", phase="Failed"), [budget(least=2, status=ALLOWS_NONE)], Evict()),
    ("not running yet: pinned", pod("a", phase="Pending"), [budget(least=2, status=ALLOWS_NONE)],
     Evict(pinned=True)),
    ("unready while the budget holds: free, pinned", pod("a", ready=False),
     [budget(least=2, status=ALLOWS_NONE)], Evict(pinned=True)),
])
def test_evictions_that_do_not_charge_a_budget(case: str, target: dict[str, Any],
                                               budgets: list[dict[str, Any]], expected: Any) -> None:
    assert eviction_verdict(target, budgets, STAMP) == expected, case


@pytest.mark.parametrize(("case", "target", "budgets", "status", "reason"), [
    ("two budgets over one pod", pod("a"), [budget("one", least=1, status=ALLOWS_ONE),
                                            budget("two", most=1, status=ALLOWS_ONE)],
     422, "MultipleDisruptionBudgets"),
    ("unready while the budget is short: charged, and refused", pod("a", ready=False),
     [budget(least=2, status={**ALLOWS_NONE, "currentHealthy": 1})], 429, "TooManyRequests"),
    ("a budget its controller has not counted since it changed", pod("a"),
     [budget(least=2, status=ALLOWS_ONE, generation=2)], 429, "TooManyRequests"),
    ("too many evictions not yet confirmed", pod("a"),
     [budget(least=2, status={**ALLOWS_ONE, "disruptedPods": {f"p{i}": STAMP for i in range(2000)}})],
     403, "Forbidden"),
])
def test_evictions_refused(case: str, target: dict[str, Any], budgets: list[dict[str, Any]], status: int,
                           reason: str) -> None:
    error = refusal(eviction_verdict(target, budgets, STAMP))
    assert (error.status, error.reason) == (status, reason), case


# --- the rebalancer's plan ---------------------------------------------------------------------

def node(name: str, *, cpu: int = 4000, memory: int = 8 * GI, ready: bool = True, cordoned: bool = False,
         taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name, "labels": {}},
            "spec": {"address": "10.0.0.1", "unschedulable": cordoned, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "allocatable": {"cpu": cpu, "memory": memory}}}


def spread(counts: dict[str, int], owner: str | None = "rs-web", app: str = "web",
           **kwargs: Any) -> list[dict[str, Any]]:
    """`counts[node]` pods of one owner on each node."""
    return [pod(f"{app}-{node_name}-{i}", node=node_name, owner=owner, labels={"app": app}, **kwargs)
            for node_name, count in counts.items() for i in range(count)]


def moves(plan: Plan) -> list[tuple[str, str]]:
    return [(m.pod, m.node) for m in plan.moves]


def sources(plan: Plan) -> dict[str, int]:
    counted: dict[str, int] = {}
    for move in plan.moves:
        counted[move.node] = counted.get(move.node, 0) + 1
    return counted


def plan(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], budgets: list[dict[str, Any]] | None = None,
         **config: int) -> Plan:
    return plan_rebalance(nodes, pods, budgets or [], RebalanceConfig(**config), STAMP)


TWO = [node("n1"), node("n2")]
THREE = [*TWO, node("n3")]


@pytest.mark.parametrize(("case", "nodes", "counts", "moved_from"), [
    ("two of three on one node, a node with none", THREE, {"n1": 2, "n2": 1}, {"n1": 1}),
    ("all on one node", THREE, {"n1": 3}, {"n1": 2}),
    ("three and three, a new node", THREE, {"n1": 3, "n2": 3}, {"n1": 1, "n2": 1}),
    ("balanced already", THREE, {"n1": 1, "n2": 1, "n3": 1}, {}),
    ("four on three: 2,1,1 is the best there is", THREE, {"n1": 2, "n2": 1, "n3": 1}, {}),
    ("two and two, a node with none: one moves", THREE, {"n1": 2, "n2": 2}, {"n2": 1}),
    ("the empty node is cordoned", [*TWO, node("n3", cordoned=True)], {"n1": 2, "n2": 1}, {}),
    ("the empty node is not ready", [*TWO, node("n3", ready=False)], {"n1": 2, "n2": 1}, {}),
    ("the empty node has a taint they do not tolerate",
     [*TWO, node("n3", taints=[{"key": "gpu", "effect": "NoSchedule"}])], {"n1": 2, "n2": 1}, {}),
    ("the empty node is too small for them", [node("n1"), node("n2"), node("n3", cpu=100)],
     {"n1": 2, "n2": 1}, {}),
    ("one node only", [node("n1")], {"n1": 3}, {}),
])
def test_duplicates_move_to_nodes_with_fewer(case: str, nodes: list[dict[str, Any]], counts: dict[str, int],
                                             moved_from: dict[str, int]) -> None:
    assert sources(plan(nodes, spread(counts, cpu="500m"))) == moved_from, case


def test_bare_pods_never_move() -> None:
    assert plan(THREE, spread({"n1": 3}, owner=None)).moves == ()


def test_each_owner_is_balanced_on_its_own() -> None:
    pods = [*spread({"n1": 2}), *spread({"n1": 2}, owner="rs-db", app="db")]
    chosen = plan(THREE, pods)
    assert sorted(m.pod.split("-")[0] for m in chosen.moves) == ["db", "web"]
    assert all("on this node, 0 on n" in m.reason for m in chosen.moves)


def test_a_round_holds_at_most_max_evictions() -> None:
    pods = [p for app in ("a", "b", "c", "d") for p in spread({"n1": 2}, owner=f"rs-{app}", app=app)]
    assert len(plan(THREE, pods, max_evictions=2).moves) == 2
    assert len(plan(THREE, pods, max_evictions=5).moves) == 4


@pytest.mark.parametrize(("case", "budgets", "count"), [
    ("a budget allowing one", [budget(most=1, status={**ALLOWS_ONE})], 1),
    ("a budget allowing none", [budget(least=3, status={**ALLOWS_NONE})], 0),
    ("a budget allowing three", [budget(most=3, status={**ALLOWS_ONE, "disruptionsAllowed": 3})], 2),
    ("two budgets over the pods", [budget("one", most=1, status=ALLOWS_ONE),
                                   budget("two", most=1, status=ALLOWS_ONE)], 0),
    ("a budget not yet counted", [budget(most=1, status=ALLOWS_ONE, generation=2)], 0),
])
def test_the_plan_spends_the_budgets_as_the_evictions_would(case: str, budgets: list[dict[str, Any]],
                                                            count: int) -> None:
    nodes = [*THREE, node("n4")]
    assert len(plan(nodes, spread({"n1": 3, "n2": 3}), budgets).moves) == count, case


def test_an_unready_pod_goes_first_and_free_while_the_budget_holds() -> None:
    pods = [*spread({"n1": 2}), pod("web-sick", node="n1", ready=False)]
    [move] = plan([node("n1"), node("n2")], pods, [budget(least=2, status=ALLOWS_NONE)]).moves
    assert move.pod == "web-sick"


def test_no_plan_while_a_pod_waits_for_the_scheduler() -> None:
    pods = [*spread({"n1": 3}), pod("web-new", node=None, phase="Pending")]
    waiting = plan(THREE, pods)
    assert waiting.moves == () and waiting.waiting == "1 pod(s) not scheduled yet"
    judged = pod("web-stuck", node=None, phase="Pending")
    judged["status"]["conditions"].append({"type": "PodScheduled", "status": "False",
                                           "reason": "Unschedulable"})
    assert len(plan(THREE, [*spread({"n1": 3}), judged]).moves) == 2  # one that fits nowhere holds nothing up


def test_terminating_pods_count_as_gone() -> None:
    pods = [*spread({"n1": 1}), pod("web-going", node="n1", deleting=True)]
    assert plan(THREE, pods).moves == ()


@pytest.mark.parametrize(("case", "cpus", "threshold", "moved_from"), [
    # each pod: 1 CPU of a 4-CPU node (25 points), one owner per pod so no duplicates
    ("a crowded node and an idle one", {"n1": 3, "n2": 1, "n3": 0}, 20, {"n1": 1}),
    ("crowded, but not by more than the threshold", {"n1": 3, "n2": 1, "n3": 0}, 40, {}),
    ("two crowded nodes, one idle: each gives up what brings it under",
     {"n1": 4, "n2": 4, "n3": 0}, 20, {"n1": 1, "n2": 1}),
    ("the idle node takes no more than brings it to the average", {"n1": 4, "n2": 0, "n3": 0}, 20,
     {"n1": 2}),
    ("even", {"n1": 2, "n2": 2, "n3": 2}, 20, {}),
    ("crowded, but no node idle by as much", {"n1": 4, "n2": 2, "n3": 2}, 30, {}),
])
def test_low_node_utilization_moves_from_crowded_to_idle(case: str, cpus: dict[str, int], threshold: int,
                                                         moved_from: dict[str, int]) -> None:
    pods = [pod(f"p-{name}-{i}", node=name, owner=f"rs-{name}-{i}", cpu="1", memory="100Mi")
            for name, count in cpus.items() for i in range(count)]
    chosen = plan(THREE, pods, threshold_percent=threshold)
    assert {k: v for k, v in sources(chosen).items() if v} == {k: v for k, v in moved_from.items() if v}, case
    assert all("cpu requests" in m.reason for m in chosen.moves)


def test_low_node_utilization_respects_budgets_too() -> None:
    pods = [pod(f"p-{i}", node="n1", owner=f"rs-{i}", cpu="1", memory="100Mi", labels={"app": "web"})
            for i in range(3)]
    pods.append(pod("q", node="n2", owner="rs-q", cpu="1", memory="100Mi", labels={"app": "q"}))
    assert len(plan(THREE, pods).moves) == 1
    assert plan(THREE, pods, [budget(least=3, status=ALLOWS_NONE)]).moves == ()


# --- berth drain's choices ---------------------------------------------------------------------

def test_drain_refuses_pods_without_a_controller_unless_forced() -> None:
    from berth.cli.drain import select_pods
    pods = [pod("web-1"), pod("bare", owner=None), pod("done", owner=None, phase="Succeeded"),
            pod("other", owner=None, namespace="team")]
    refused = select_pods(pods, force=False)
    assert refused.evict == [] and refused.error == ("cannot delete Pods that declare no controller (use "
                                                     "--force to override): default/bare, team/other")
    forced = select_pods(pods, force=True)
    assert forced.evict == pods and forced.error is None
    assert forced.warning == "deleting Pods that declare no controller: default/bare, team/other"
    assert select_pods([pod("web-1"), pod("done", owner=None, phase="Failed")], force=False).warning is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (3, "3s"), (120, "2m0s"), (90, "1m30s"),
                                               (3600, "1h0m0s"), (3725, "1h2m5s")])
def test_drain_says_durations_as_kubectl(seconds: float, text: str) -> None:
    from berth.cli.drain import go_duration
    assert go_duration(seconds) == text


def test_drain_waits_for_the_pods_it_evicted_by_uid() -> None:
    from berth.cli.drain import gone, unable
    asked = {"uid-a": pod("a"), "uid-b": pod("b")}
    again = pod("a")
    again["metadata"]["uid"] = "uid-a2"  # made again under the same name: another pod
    assert [p["metadata"]["name"] for p in gone(asked, [again, pod("b")])] == ["a"]
    assert unable("h1", "boom", ["h1", "h2"]).splitlines() == [
        'error: unable to drain node "h1" due to error: boom, continuing command...',
        "There are pending nodes to be drained:", " h1", " h2", "boom"]


def test_nodes_the_pods_would_avoid_take_none_and_packing_turns_utilization_off() -> None:
    soft = node("n3", taints=[{"key": "spare", "effect": "PreferNoSchedule"}])
    assert plan([*TWO, soft], spread({"n1": 2, "n2": 1})).moves == ()
    pods = [pod(f"p-{i}", node="n1", owner=f"rs-{i}", cpu="1", memory="100Mi") for i in range(3)]
    assert len(plan(THREE, pods).moves) == 2  # 75% of n1's CPU, none elsewhere: two go
    packing = plan_rebalance(THREE, pods, [], RebalanceConfig(low_utilization=False), STAMP)
    assert packing.moves == ()
