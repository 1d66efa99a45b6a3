"""The workload controllers' pure decisions: rollout maths, surplus order, claims, a rollout's steps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from master.workloads.names import HASH_LABEL, MAX_NAME, child_name, random_suffix, template_hash
from master.workloads.owners import claim, orphaned, reference_to
from master.workloads.replicas import deletion_rank, plan_replicaset, pod_from_template, surplus
from master.workloads.rollout import (
    DESIRED,
    REVISION,
    CreateReplicaSet,
    DeleteReplicaSet,
    SetRevision,
    Sized,
    UpdateReplicaSet,
    World,
    fenceposts,
    new_replicas,
    old_scale_down,
    pending_object,
    plan_deployment,
    proportional,
)

# --- fenceposts: Kubernetes rounds surge up and unavailable down, and never lets both be 0 ----------

@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 3, (1, 0)),
    ("25%", "25%", 1, (1, 0)),
    ("25%", "25%", 0, (0, 1)),  # both 0: one may be unavailable, or nothing would ever move
    (0, 0, 5, (0, 1)),
    (1, 0, 3, (1, 0)),
    (0, "30%", 10, (0, 3)),
    ("100%", "0%", 3, (3, 0)),
    (2, "50%", 5, (2, 2)),
])
def test_fenceposts(surge: int | str, unavailable: int | str, desired: int,
                    expected: tuple[int, int]) -> None:
    assert fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(("desired", "surge", "all_replicas", "new", "expected"), [
    (3, 1, 3, 0, 1),  # room for one more than desired
    (3, 1, 4, 1, 1),  # full: wait for the old ones to go
    (6, 10, 2, 2, 6),  # lots of room: straight to desired, never past it
    (1, 1, 5, 5, 5),  # already past (scaled down meanwhile): never shrunk here
    (10, 3, 10, 0, 3),
    (10, 3, 8, 3, 8),  # 13 allowed, 8 held: five more
])
def test_new_replicas(desired: int, surge: int, all_replicas: int, new: int, expected: int) -> None:
    assert new_replicas(desired, surge, all_replicas, new) == expected


@pytest.mark.parametrize(("old", "new", "desired", "unavailable", "expected"), [
    ([Sized("a", 10, 10)], None, 10, 0, {}),  # nothing may become unavailable, nothing new yet
    ([Sized("a", 10, 10)], None, 10, 2, {"a": 8}),
    ([Sized("a", 10, 8)], None, 10, 2, {"a": 8}),  # the two unhealthy ones go first
    ([Sized("a", 10, 10)], Sized("n", 3, 3), 10, 0, {"a": 7}),
    ([Sized("a", 10, 10)], Sized("n", 3, 0), 10, 0, {}),  # the new pods are not available yet
    ([Sized("a", 7, 10)], Sized("n", 3, 3), 10, 0, {}),  # a status lagging its spec takes no more
    ([Sized("a", 2, 2, created=1), Sized("b", 3, 3, created=2)], None, 5, 1, {"a": 1}),  # oldest first
    ([Sized("a", 2, 0, created=1), Sized("b", 3, 3, created=2)], Sized("n", 2, 2), 5, 1, {"a": 0, "b": 2}),
    ([Sized("a", 0, 0)], Sized("n", 3, 3), 3, 1, {}),
])
def test_old_scale_down(old: list[Sized], new: Sized | None, desired: int, unavailable: int,
                        expected: dict[str, int]) -> None:
    assert old_scale_down(old, new, desired, unavailable) == expected


@pytest.mark.parametrize(("sizes", "desired", "surge", "expected"), [
    ({"old": 2, "new": 3}, 10, 0, {"old": 4, "new": 6}),
    ({"old": 6, "new": 4}, 5, 0, {"old": 3, "new": 2}),
    ({"old": 1, "new": 1}, 5, 1, {"old": 3, "new": 3}),
    ({"old": 3, "new": 1}, 0, 1, {"old": 0, "new": 0}),  # to 0: everything goes
    ({"old": 2, "new": 2}, 3, 1, {}),  # already desired + surge
])
def test_proportional(sizes: dict[str, int], desired: int, surge: int, expected: dict[str, int]) -> None:
    active = [Sized(name, size, created=index) for index, (name, size) in enumerate(sizes.items())]
    changes = proportional(active, "new", desired, surge)
    assert changes == expected
    after = {**sizes, **changes}
    assert sum(after.values()) == (desired + surge if desired else 0)
    assert all(value >= 0 for value in after.values())


# --- names ---------------------------------------------------------------------------------

def test_names_are_labels_and_hashes_stable() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    reordered = {"spec": template["spec"], "metadata": template["metadata"]}
    assert template_hash(template) == template_hash(reordered)
    assert template_hash(template) != template_hash(template, collision_count=1)
    assert template_hash(template) != template_hash({**template, "spec": {"containers": []}})
    long = child_name("x" * 70 + "-", random_suffix(random.Random(1)))
    assert len(long) == MAX_NAME and long[-6] == "-" and "--" not in long
    assert child_name("web", "abcde") == "web-abcde"


# --- a ReplicaSet's pods ------------------------------------------------------------------------

def _pod(name: str, *, node: str | None = "h1", phase: str = "Running", ready_at: str | None = None,
         created: str = "2026-01-01T00:00:00Z", restarts: int = 0, labels: dict | None = None,
         owner: dict | None = None, deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": 1,
                  "labels": {"app": "web"} if labels is None else labels, "creationTimestamp": created}
    if owner is not None:
        meta["ownerReferences"] = [reference_to(owner)]
    if deleting:
        meta["deletionTimestamp"] = created
    status: dict = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready_at is not None:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
    spec = {"containers": [{"name": "c", "image": "i"}], **({"nodeName": node} if node else {})}
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _rs(replicas: int, min_ready: int = 0) -> dict:
    return {"kind": "ReplicaSet", "metadata": {"name": "web-x", "namespace": "default", "uid": "rs-uid",
                                               "generation": 2, "resourceVersion": 5},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def test_surplus_goes_in_kubernetes_order() -> None:
    pods = [
        _pod("ready-old", ready_at="2026-01-01T00:01:00Z", created="2026-01-01T00:00:00Z"),
        _pod("ready-new", ready_at="2026-01-01T00:05:00Z", created="2026-01-01T00:00:00Z"),
        _pod("restarted", ready_at="2026-01-01T00:01:00Z", restarts=3),
        _pod("not-ready-older", created="2026-01-01T00:00:00Z"),
        _pod("not-ready-newer", created="2026-01-01T00:02:00Z"),
        _pod("pending", phase="Pending"),
        _pod("unscheduled", node=None, phase="Pending"),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_rank)]
    assert order == ["unscheduled", "pending", "not-ready-newer", "not-ready-older", "ready-new",
                     "restarted", "ready-old"]
    assert [p["metadata"]["name"] for p in surplus(pods, 2)] == ["unscheduled", "pending"]


def test_replicaset_plan_creates_adopts_releases_and_counts() -> None:
    rs = _rs(3, min_ready=30)
    now = 1767225900.0  # 2026-01-01T00:05:00Z
    pods = [
        _pod("mine-ready", ready_at="2026-01-01T00:00:00Z", owner=rs),  # ready 5 min: available
        _pod("mine-just-ready", ready_at="2026-01-01T00:04:50Z", owner=rs),  # ready, not yet available
        _pod("orphan", owner=None),  # matches: adopted
        _pod("strays", labels={"app": "other"}, owner=rs),  # no longer matches: released
        _pod("someone-elses", owner={"kind": "ReplicaSet", "metadata": {"name": "o", "uid": "other"}}),
        _pod("going", owner=rs, deleting=True),
    ]
    plan = plan_replicaset(rs, pods, now)
    assert [p["metadata"]["name"] for p in plan.claim.adopt] == ["orphan"]
    assert plan.claim.adopt[0]["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
    assert [p["metadata"]["name"] for p in plan.claim.release] == ["strays"]
    assert "ownerReferences" not in plan.claim.release[0]["metadata"]
    assert plan.create == 0 and plan.delete == []  # three active: mine-ready, mine-just-ready, orphan
    assert plan.status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2,
                           "availableReplicas": 1, "observedGeneration": 2}
    assert plan_replicaset(_rs(5), pods, now).create == 2
    fewer = plan_replicaset(_rs(1), pods, now)
    assert [p["metadata"]["name"] for p in fewer.delete] == ["orphan", "mine-just-ready"]


def test_pod_from_template_names_its_owner() -> None:
    pod = pod_from_template(_rs(1), "bcdfg")
    assert pod["metadata"]["name"] == "web-x-bcdfg"
    assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "berth/v1", "kind": "ReplicaSet",
                                                   "name": "web-x", "uid": "rs-uid", "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert pod["metadata"]["labels"] == {"app": "web"}


def test_claims_leave_other_controllers_alone_and_orphans_are_found() -> None:
    owner = {"kind": "ReplicaSet", "metadata": {"name": "a", "uid": "u1", "namespace": "default"}}
    other = _pod("b", owner={"kind": "ReplicaSet", "metadata": {"name": "z", "uid": "u2"}})
    assert claim(owner, [other], {"matchLabels": {"app": "web"}}).owned == []
    mine = _pod("c", owner=owner)
    assert orphaned(mine, lambda _obj, ref: ref["uid"] == "u1") is None
    verdict = orphaned(mine, lambda _obj, _ref: False)
    assert verdict is not None and verdict.delete
    two = {**mine, "metadata": {**mine["metadata"], "ownerReferences": [
        *mine["metadata"]["ownerReferences"],
        {"kind": "Thing", "name": "t", "uid": "u3", "controller": False}]}}
    partial = orphaned(two, lambda _obj, ref: ref["uid"] == "u3")
    assert partial is not None and not partial.delete
    assert [r["uid"] for r in partial.kept["metadata"]["ownerReferences"]] == ["u3"]


# --- a rollout, step by step, against a simulated ReplicaSet controller -------------------------------

def _deployment(replicas: int, image: str, surge: int | str = 1, unavailable: int | str = 0,
                strategy: str = "RollingUpdate", generation: int = 1, **spec: object) -> dict:
    return {"kind": "Deployment", "apiVersion": "berth/v1",
            "metadata": {"name": "web", "namespace": "default", "uid": "dep-uid", "generation": generation,
                         "resourceVersion": 1, "annotations": {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     "strategy": {"type": strategy,
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "minReadySeconds": 0, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     **spec}}


@dataclass
class Sim:
    """ReplicaSets with their pods: each pod made becomes available after `delay` ticks (never
    when its image is "broken"); a deleted pod terminates for one tick."""

    deployment: dict
    delay: int = 1
    replicasets: dict[str, dict] = field(default_factory=dict)
    pods: dict[str, list[int]] = field(default_factory=dict)  # rs -> ages of its active pods
    terminating: int = 0
    tick: int = 0
    min_available: int = 10**9
    max_pods: int = 0

    def available(self, rs: str) -> int:
        broken = self.replicasets[rs]["spec"]["template"]["spec"]["containers"][0]["image"] == "broken"
        return 0 if broken else sum(1 for age in self.pods[rs] if age >= self.delay)

    def step(self) -> list:
        self.tick += 1
        world = World(list(self.replicasets.values()), dict(self.replicasets),
                      sum(len(self.pods[n]) for n in self.pods if n != self._new()), 1000.0 + self.tick,
                      datetime.fromtimestamp(1000.0 + self.tick, UTC).isoformat())
        plan = plan_deployment(self.deployment, world)
        for action in plan.actions:
            if isinstance(action, CreateReplicaSet):
                made = datetime.fromtimestamp(1000.0 + self.tick, UTC).isoformat()
                meta = {**action.replicaset["metadata"], "uid": f"u{self.tick}", "creationTimestamp": made,
                        "resourceVersion": 1}
                rs = {**action.replicaset, "metadata": meta}
                self.replicasets[rs["metadata"]["name"]] = rs
                self.pods[rs["metadata"]["name"]] = []
            elif isinstance(action, UpdateReplicaSet):
                self.replicasets[action.replicaset["metadata"]["name"]] = pending_object(action)
            elif isinstance(action, DeleteReplicaSet):
                del self.replicasets[action.replicaset["metadata"]["name"]]
                del self.pods[action.replicaset["metadata"]["name"]]
            elif isinstance(action, SetRevision):
                meta = self.deployment["metadata"]
                meta["annotations"] = {**meta["annotations"], REVISION: str(action.revision)}
        self.deployment = {**self.deployment, "status": plan.status}
        self.terminating = 0
        for name, rs in self.replicasets.items():  # the ReplicaSet controller, then the kubelet
            ages, wanted = self.pods[name], rs["spec"]["replicas"]
            if len(ages) > wanted:
                ages.sort()  # the youngest (not available) first, as deletion_rank orders them
                self.terminating += len(ages) - wanted
                del ages[:len(ages) - wanted]
            ages.extend([0] * (wanted - len(ages)))
            self.pods[name] = [age + 1 for age in ages]
            rs["status"] = {"replicas": len(self.pods[name]), "availableReplicas": self.available(name),
                            "readyReplicas": self.available(name)}
        self.max_pods = max(self.max_pods, sum(len(p) for p in self.pods.values()))
        self.min_available = min(self.min_available, sum(self.available(n) for n in self.pods))
        return plan.actions

    def _new(self) -> str | None:
        from master.workloads.rollout import find_new
        new = find_new(self.deployment, list(self.replicasets.values()))
        return new["metadata"]["name"] if new else None

    def settle(self, ticks: int = 60) -> None:
        for _ in range(ticks):
            self.step()

    def sizes(self) -> dict[str, int]:
        return {n: rs["spec"]["replicas"] for n, rs in self.replicasets.items()}

    def condition(self, kind: str) -> dict:
        return next(c for c in self.deployment["status"]["conditions"] if c["type"] == kind)


def _rolled(replicas: int, surge: int | str, unavailable: int | str, strategy: str = "RollingUpdate") -> Sim:
    sim = Sim(_deployment(replicas, "v1", surge, unavailable, strategy))
    sim.settle()
    assert sim.sizes() == {next(iter(sim.replicasets)): replicas}
    assert sim.condition("Progressing")["reason"] == "NewReplicaSetAvailable"
    sim.min_available, sim.max_pods = 10**9, 0
    sim.deployment = {**_deployment(replicas, "v2", surge, unavailable, strategy, generation=2),
                      "status": sim.deployment["status"]}
    sim.deployment["metadata"]["annotations"] = {REVISION: "1"}
    return sim


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [
    (3, 1, 0), (3, 0, 1), (10, "25%", "25%"), (6, 2, 2), (5, "100%", 0), (1, 1, 0), (4, 0, "50%"),
])
def test_a_rolling_update_keeps_its_bounds(replicas: int, surge: int | str, unavailable: int | str) -> None:
    sim = _rolled(replicas, surge, unavailable)
    max_surge, max_unavailable = fenceposts(surge, unavailable, replicas)
    sim.settle()
    assert sim.min_available >= replicas - max_unavailable
    assert sim.max_pods <= replicas + max_surge
    names = sorted(sim.replicasets, key=lambda n: sim.replicasets[n]["metadata"]["annotations"][REVISION])
    assert [sim.replicasets[n]["spec"]["replicas"] for n in names] == [0, replicas]
    assert sim.deployment["metadata"]["annotations"][REVISION] == "2"
    status = sim.deployment["status"]
    assert (status["updatedReplicas"], status["availableReplicas"], status["unavailableReplicas"]) == \
        (replicas, replicas, 0)
    assert sim.condition("Progressing")["reason"] == "NewReplicaSetAvailable"
    assert sim.condition("Available")["status"] == "True"


def test_recreate_stops_every_old_pod_before_the_new_start() -> None:
    sim = _rolled(3, 0, 0, strategy="Recreate")
    seen_both = False
    for _ in range(30):
        sim.step()
        counts = {n: len(p) for n, p in sim.pods.items()}
        seen_both |= all(counts.values()) and len(counts) == 2
    assert not seen_both
    assert sorted(sim.sizes().values()) == [0, 3]
    assert sim.min_available == 0


def test_a_rollout_to_an_image_that_cannot_start_stalls_and_times_out() -> None:
    sim = _rolled(3, 1, 0)
    sim.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "broken"
    sim.deployment["spec"]["progressDeadlineSeconds"] = 10
    sim.settle(40)
    old = next(n for n, rs in sim.replicasets.items() if rs["metadata"]["annotations"][REVISION] == "1")
    assert sim.sizes()[old] == 3 and sim.available(old) == 3  # the old pods still serve
    assert sim.max_pods <= 4
    progressing = sim.condition("Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_scaling_mid_rollout_is_proportional_and_history_is_limited() -> None:
    sim = _rolled(10, 3, 2)
    sim.delay = 100  # the new pods never become available: the rollout holds
    sim.settle(5)
    old, new = sorted(sim.replicasets, key=lambda n: sim.replicasets[n]["metadata"]["annotations"][REVISION])
    assert sim.sizes() == {old: 8, new: 5}
    sim.deployment["spec"]["replicas"] = 20
    sim.step()
    assert sim.sizes() == {old: 14, new: 9}  # 20 + 3 in proportion to 8 and 5, the rest to the newest
    assert all(rs["metadata"]["annotations"][DESIRED] == "20" for rs in sim.replicasets.values()
               if rs["spec"]["replicas"])
    sim.delay = 1
    for image in ("v3", "v4", "v5"):
        sim.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
        sim.settle(40)
    assert len(sim.replicasets) == 5
    sim.deployment["spec"]["revisionHistoryLimit"] = 1
    sim.settle(3)
    assert sorted(int(rs["metadata"]["annotations"][REVISION]) for rs in sim.replicasets.values()) == [4, 5]


def test_undo_brings_an_old_replicaset_back_as_the_newest_revision() -> None:
    sim = _rolled(2, 1, 0)
    sim.settle()
    first = next(n for n, rs in sim.replicasets.items() if rs["metadata"]["annotations"][REVISION] == "1")
    sim.deployment["spec"]["template"] = sim.replicasets[first]["spec"]["template"]  # what undo writes
    sim.deployment["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    sim.settle()
    assert sim.replicasets[first]["metadata"]["annotations"][REVISION] == "3"
    assert sim.sizes()[first] == 2 and len(sim.replicasets) == 2
    assert sim.deployment["metadata"]["annotations"][REVISION] == "3"


def test_paused_makes_no_new_replicaset_but_scales() -> None:
    sim = _rolled(2, 1, 0)
    sim.deployment["spec"]["paused"] = True
    sim.settle(5)
    assert len(sim.replicasets) == 1
    assert sim.condition("Progressing")["reason"] == "DeploymentPaused"
    sim.deployment["spec"]["replicas"] = 4
    sim.step()
    assert list(sim.sizes().values()) == [4]
    sim.deployment["spec"]["paused"] = False
    sim.step()
    assert sim.condition("Progressing")["reason"] in ("DeploymentResumed", "NewReplicaSetCreated")
    sim.settle()
    assert sorted(sim.sizes().values()) == [0, 4]


def test_a_clashing_name_raises_collision_count() -> None:
    deployment = _deployment(1, "v1")
    taken = f"web-{template_hash(deployment['spec']['template'])}"
    stranger = {"kind": "ReplicaSet", "metadata": {"name": taken}}
    plan = plan_deployment(deployment, World([], {stranger["metadata"]["name"]: stranger}, 0, 0.0, "t"))
    assert plan.actions == [] and plan.status["collisionCount"] == 1
    deployment["status"] = plan.status
    plan = plan_deployment(deployment, World([], {stranger["metadata"]["name"]: stranger}, 0, 0.0, "t"))
    created = plan.actions[0]
    assert isinstance(created, CreateReplicaSet)
    assert created.replicaset["metadata"]["name"] != stranger["metadata"]["name"]
    digest = created.replicaset["spec"]["selector"]["matchLabels"][HASH_LABEL]
    assert created.replicaset["metadata"]["name"] == f"web-{digest}"


# --- cases a review found, each once wrong ------------------------------------------------------

def _newest(sim: Sim) -> str:
    return max(sim.replicasets, key=lambda n: int(sim.replicasets[n]["metadata"]["annotations"][REVISION]))


def test_a_new_replicaset_above_desired_is_scaled_back() -> None:
    sim = Sim(_deployment(3, "v1", 1, 0))
    sim.settle()
    [name] = sim.replicasets
    sim.replicasets[name]["spec"]["replicas"] = 10  # `berth scale rs/...` behind the Deployment's back
    sim.settle(10)
    assert sim.sizes() == {name: 3}
    sim = _rolled(2, 2, "25%")
    sim.delay = 100  # mid-rollout, the new pods not available yet
    sim.settle(1)
    sim.deployment["spec"]["replicas"] = 1
    sim.delay = 1
    sim.settle(40)
    assert sim.sizes()[_newest(sim)] == 1 and sim.deployment["status"]["replicas"] == 1


def test_a_paused_deployment_scales_up_from_zero() -> None:
    sim = Sim(_deployment(0, "v1", 1, 0))
    sim.settle(5)
    sim.deployment["spec"]["paused"] = True
    sim.deployment["spec"]["replicas"] = 3
    sim.settle(5)
    assert list(sim.sizes().values()) == [3]


def test_scaling_a_complete_deployment_is_no_rollout_to_time_out() -> None:
    sim = Sim(_deployment(3, "v1", 1, 0, progressDeadlineSeconds=10))
    sim.settle()
    sim.delay = 10**6  # the added pods never become available
    sim.deployment["spec"]["replicas"] = 5
    sim.settle(30)
    assert sim.condition("Progressing")["reason"] == "NewReplicaSetAvailable"


def test_pausing_keeps_a_timed_out_rollout_timed_out() -> None:
    sim = _rolled(3, 1, 0)
    sim.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "broken"
    sim.deployment["spec"]["progressDeadlineSeconds"] = 10
    sim.settle(40)
    assert sim.condition("Progressing")["reason"] == "ProgressDeadlineExceeded"
    sim.deployment["spec"]["paused"] = True
    sim.step()
    assert sim.condition("Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_history_is_cleaned_only_once_complete() -> None:
    sim = _rolled(3, 1, 0)
    sim.settle()
    sim.deployment["spec"]["revisionHistoryLimit"] = 0
    sim.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "broken"
    sim.settle(10)  # stalled: the revision-1 ReplicaSet (at 0) stays while the rollout is not complete
    assert len(sim.replicasets) == 3
    sim.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "v4"
    sim.settle(20)
    assert len(sim.replicasets) == 1


def test_proportional_always_sums_to_the_target() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        active = [Sized(f"r{i}", rng.randint(1, 30), created=i) for i in range(rng.randint(1, 4))]
        desired, surge = rng.randint(0, 40), rng.randint(0, 10)
        changes = proportional(active, active[-1].name, desired, surge)
        after = [changes.get(rs.name, rs.replicas) for rs in active]
        assert sum(after) == (desired + surge if desired else 0) and min(after) >= 0


def test_a_reference_without_uid_is_never_taken_for_gone() -> None:
    spread = {**_pod("s"), "metadata": {**_pod("s")["metadata"],
                                        "ownerReferences": [{"kind": "Deployment", "name": "spread"}]}}
    assert orphaned(spread, lambda _obj, _ref: False) is None
