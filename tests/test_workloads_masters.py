"""ReplicaSets and Deployments on real masters, with a stand-in for the hosts (berth/lab/fake_kubelet.py).

Three masters run the scheduler and the workload controllers; the fake kubelet gives bound pods a
Ready status and removes deleted ones, so these tests see the controllers' own behaviour at full
speed. The lab tests (test_workloads_lab.py) do the same with real containers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from berth.lab.fake_kubelet import FakeKubelet
from tests.conftest import TEST_ROOT
from tests.harness import GI, TOKENS, WORKLOADS, MasterCluster, add_node, sampling, wait_until

SETTINGS = {"controllers": ["node-lifecycle", "scheduler", *WORKLOADS], "node_grace_seconds": 3600}
CLUSTER_SETTINGS = SETTINGS
NS = "/api/v1/namespaces/default"
REVISION = "deployment.berth.io/revision"
IMAGE = "localhost/busybox:lab"


def deployment(name: str, replicas: int, image: str = "localhost/busybox:lab", surge: int | str = 1,
               unavailable: int | str = 0, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image,
                                                           "command": ["sleep", "3600"]}]}},
                     **spec}}


@pytest.fixture(scope="module")
def hosts(cluster: MasterCluster) -> Iterator[MasterCluster]:
    for index in range(3):
        add_node(cluster, f"n{index}", cpu=64000, memory=256 * GI)
    with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file,
                     never_ready=lambda image: "missing" in image):
        yield cluster


class Pods:
    """What the API shows of a Deployment's pods: active, ready, all of them."""

    def __init__(self, cluster: MasterCluster, app: str, at: int = 0) -> None:
        self.cluster, self.app, self.at = cluster, app, at
        self.admin = cluster.session()

    def listed(self) -> list[dict[str, Any]]:
        path = f"{NS}/pods?labelSelector=app={self.app}"
        answer = self.admin.get(self.cluster.url(self.at, path), timeout=10)
        return answer.json()["items"]

    def active(self) -> list[dict[str, Any]]:
        return [p for p in self.listed() if not p["metadata"].get("deletionTimestamp")]

    @staticmethod
    def ready(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in (p.get("status") or {}).get("conditions") or [])]


def get(cluster: MasterCluster, path: str, at: int = 0) -> dict[str, Any]:
    answer = cluster.session().get(cluster.url(at, path), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def create(cluster: MasterCluster, body: dict[str, Any]) -> dict[str, Any]:
    answer = cluster.session().post(cluster.url(0, f"{NS}/{body['kind'].lower()}s"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def patch(cluster: MasterCluster, path: str, body: Any) -> dict[str, Any]:
    answer = cluster.session().patch(cluster.url(0, path), json=body, timeout=10,
                                     headers={"Content-Type": "application/merge-patch+json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def rolled_out(cluster: MasterCluster, name: str, timeout: float = 60, at: int = 0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        d = get(cluster, f"{NS}/deployments/{name}", at)
        status, want = d.get("status") or {}, d["spec"]["replicas"]
        complete = any(c["type"] == "Progressing" and c["reason"] == "NewReplicaSetAvailable"
                       for c in status.get("conditions") or [])
        fresh = status.get("observedGeneration") == d["metadata"]["generation"]
        counts = (status.get("updatedReplicas"), status.get("availableReplicas"), status.get("replicas"))
        return d if complete and fresh and counts == (want, want, want) else None

    return wait_until(done, timeout, interval=0.1, what=f"deployment {name} rolled out")


def replicasets(cluster: MasterCluster, app: str, at: int = 0) -> list[dict[str, Any]]:
    return get(cluster, f"{NS}/replicasets?labelSelector=app={app}", at)["items"]


def test_a_deployment_makes_its_replicaset_and_pods_and_keeps_them(hosts: MasterCluster) -> None:
    create(hosts, deployment("keep", 3))
    done = rolled_out(hosts, "keep")
    assert done["metadata"]["annotations"]["deployment.berth.io/revision"] == "1"
    [rs] = replicasets(hosts, "keep")
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"keep-{hash_}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]
    pods = Pods(hosts, "keep")
    listed = pods.active()
    assert len(listed) == 3
    for pod in listed:
        assert pod["metadata"]["name"].startswith(f"keep-{hash_}-") and len(pod["metadata"]["name"]) == \
            len(f"keep-{hash_}-") + 5
        [ref] = pod["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
            ("ReplicaSet", rs["metadata"]["name"], rs["metadata"]["uid"], True)
    gone = listed[0]["metadata"]["name"]
    assert hosts.session().delete(hosts.url(1, f"{NS}/pods/{gone}"), timeout=10).status_code == 200
    wait_until(lambda: len(pods.ready(pods.active())) == 3
               and gone not in {p["metadata"]["name"] for p in pods.listed()}, 30, what="a replacement")
    rs = get(hosts, f"{NS}/replicasets/{rs['metadata']['name']}")
    assert rs["status"]["observedGeneration"] == rs["metadata"]["generation"]
    events = get(hosts, f"{NS}/events")["items"]
    assert any(e["reason"] == "SuccessfulCreate" and e["involvedObject"]["name"] == rs["metadata"]["name"]
               for e in events)
    assert any(e["reason"] == "ScalingReplicaSet" and e["involvedObject"]["name"] == "keep" for e in events)


def test_scale_subresource_scales_up_and_down(hosts: MasterCluster) -> None:
    create(hosts, deployment("scaled", 2))
    rolled_out(hosts, "scaled")
    scale = get(hosts, f"{NS}/deployments/scaled/scale")
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "app=scaled"}
    patch(hosts, f"{NS}/deployments/scaled/scale", {"spec": {"replicas": 6}})
    pods = Pods(hosts, "scaled")
    rolled_out(hosts, "scaled")
    assert len(pods.active()) == 6
    stale = {**scale, "spec": {"replicas": 1}}
    answer = hosts.session().put(hosts.url(0, f"{NS}/deployments/scaled/scale"), json=stale, timeout=10)
    assert answer.status_code == 409, answer.text  # read at an older resourceVersion
    answer = hosts.session().put(hosts.url(2, f"{NS}/deployments/scaled/scale"), timeout=10,
                                 json={"spec": {"replicas": -1}})
    assert answer.status_code == 400 and answer.json()["field"] == "spec.replicas"
    viewer = hosts.session("viewer").patch(hosts.url(0, f"{NS}/deployments/scaled/scale"), timeout=10,
                                           json={"spec": {"replicas": 0}},
                                           headers={"Content-Type": "application/merge-patch+json"})
    assert viewer.status_code == 403
    del stale["metadata"]["resourceVersion"]
    answer = hosts.session().put(hosts.url(0, f"{NS}/deployments/scaled/scale"), json=stale, timeout=10)
    assert answer.status_code == 200 and answer.json()["spec"]["replicas"] == 1
    wait_until(lambda: len(pods.active()) == 1, 30, what="scaled down to 1")
    rs_name = replicasets(hosts, "scaled")[0]["metadata"]["name"]
    assert get(hosts, f"{NS}/replicasets/{rs_name}/scale")["spec"]["replicas"] == 1
    assert hosts.session().get(hosts.url(0, f"{NS}/pods/x/scale"), timeout=10).status_code == 404


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "most", "least"), [
    (4, 1, 0, 5, 4), (4, 0, 1, 4, 3), (5, "40%", "20%", 7, 4)])
def test_a_rolling_update_keeps_its_bounds_and_undo_restores(hosts: MasterCluster, replicas: int,
                                                             surge: int | str, unavailable: int | str,
                                                             most: int, least: int) -> None:
    name = f"roll-{replicas}-{most}-{least}"
    create(hosts, deployment(name, replicas, surge=surge, unavailable=unavailable))
    rolled_out(hosts, name)
    pods = Pods(hosts, name)
    template = get(hosts, f"{NS}/deployments/{name}")["spec"]["template"]
    def counts() -> tuple[int, int]:
        active = pods.active()
        return len(active), len(pods.ready(active))

    with sampling(counts, 0.05) as samples:
        patch(hosts, f"{NS}/deployments/{name}", {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": "localhost/busybox:lab", "command": ["sleep", "3601"]}]}}}})
        done = rolled_out(hosts, name)
    assert samples, "no sample taken"
    assert max(active for active, _ in samples) <= most
    assert min(ready for _, ready in samples) >= least
    assert done["metadata"]["annotations"]["deployment.berth.io/revision"] == "2"
    sets = {rs["metadata"]["annotations"][REVISION]: rs for rs in replicasets(hosts, name)}
    assert sorted(sets) == ["1", "2"] and sets["1"]["spec"]["replicas"] == 0
    assert all(p["spec"]["containers"][0]["command"] == ["sleep", "3601"] for p in pods.active())
    # undo, as `berth rollout undo` writes it: revision 1's template, less its hash label
    old = sets["1"]["spec"]["template"]
    old["metadata"]["labels"].pop("pod-template-hash")
    assert old == template
    patch(hosts, f"{NS}/deployments/{name}", {"spec": {"template": old}})
    done = rolled_out(hosts, name)
    assert done["metadata"]["annotations"]["deployment.berth.io/revision"] == "3"
    sets = {rs["metadata"]["name"]: rs for rs in replicasets(hosts, name)}
    assert len(sets) == 2  # the first ReplicaSet came back, as revision 3
    assert all(p["spec"]["containers"][0]["command"] == ["sleep", "3600"] for p in pods.active())


def test_a_rollout_to_a_missing_image_stalls_and_says_so(hosts: MasterCluster) -> None:
    create(hosts, deployment("stall", 3, progressDeadlineSeconds=3))
    rolled_out(hosts, "stall")
    pods = Pods(hosts, "stall")
    patch(hosts, f"{NS}/deployments/stall", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "localhost/missing:nope", "command": ["sleep", "3600"]}]}}}})

    def exceeded() -> dict[str, Any] | None:
        d = get(hosts, f"{NS}/deployments/stall")
        progressing = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"]
        return d if progressing and progressing[0]["reason"] == "ProgressDeadlineExceeded" else None

    stalled = wait_until(exceeded, 30, what="ProgressDeadlineExceeded")
    assert stalled["status"]["availableReplicas"] == 3 and stalled["status"]["updatedReplicas"] == 1
    active = pods.active()
    assert len(active) == 4 and len(pods.ready(active)) == 3  # one surge pod that cannot start


def test_deleting_cascades_in_the_background_or_orphans(hosts: MasterCluster) -> None:
    create(hosts, deployment("cascade", 2))
    create(hosts, deployment("orphan", 2))
    rolled_out(hosts, "cascade")
    rolled_out(hosts, "orphan")
    admin = hosts.session()
    answer = admin.delete(hosts.url(0, f"{NS}/deployments/orphan?propagationPolicy=Orphan"), timeout=10)
    assert answer.status_code == 200, answer.text
    assert admin.delete(hosts.url(0, f"{NS}/deployments/cascade"), timeout=10).status_code == 200
    wait_until(lambda: not Pods(hosts, "cascade").listed() and not replicasets(hosts, "cascade"), 30,
               what="the cascade's ReplicaSet and pods gone")
    [rs] = replicasets(hosts, "orphan")
    assert "ownerReferences" not in rs["metadata"]
    assert len(Pods(hosts, "orphan").active()) == 2  # still owned by their ReplicaSet, which stays
    path = f"{NS}/replicasets/{rs['metadata']['name']}"
    answer = admin.delete(hosts.url(0, f"{path}?propagationPolicy=Foreground"), timeout=10)
    assert answer.status_code == 400 and answer.json()["field"] == "propagationPolicy"
    assert admin.delete(hosts.url(0, path), timeout=10).status_code == 200
    wait_until(lambda: not Pods(hosts, "orphan").listed(), 30, what="the ReplicaSet's pods collected")


def test_a_replicaset_adopts_orphans_and_releases_strays(hosts: MasterCluster) -> None:
    from tests.harness import pod
    create(hosts, pod("stray-1", labels={"app": "adopt"}))
    rs = {"apiVersion": "berth/v1", "kind": "ReplicaSet", "metadata": {"name": "adopt"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "adopt"}},
                   "template": {"metadata": {"labels": {"app": "adopt"}},
                                "spec": {"containers": [{"name": "main", "image": IMAGE}]}}}}
    made = create(hosts, rs)
    pods = Pods(hosts, "adopt")
    wait_until(lambda: len(pods.ready(pods.active())) == 2, 30, what="two pods")
    adopted = get(hosts, f"{NS}/pods/stray-1")
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == made["metadata"]["uid"]
    patch(hosts, f"{NS}/pods/stray-1", {"metadata": {"labels": {"app": "elsewhere"}}})
    wait_until(lambda: len(pods.ready(pods.active())) == 2, 30, what="a pod in place of the released one")
    assert "ownerReferences" not in get(hosts, f"{NS}/pods/stray-1")["metadata"]
    answer = hosts.session().patch(hosts.url(0, f"{NS}/replicasets/adopt"), timeout=10,
                                   json={"spec": {"selector": {"matchLabels": {"app": "other"}}}},
                                   headers={"Content-Type": "application/merge-patch+json"})
    assert answer.status_code in (400, 422) and answer.json()["field"].startswith("spec")


def test_a_new_leader_mid_rollout_finishes_it_once() -> None:
    cluster = MasterCluster(TEST_ROOT / "workloads-failover", size=3, extra_settings=SETTINGS)
    cluster.start_all()
    try:
        cluster.wait_ready()
        for index in range(2):
            add_node(cluster, f"f{index}", cpu=64000, memory=256 * GI)
        with FakeKubelet([m.api_url for m in cluster.masters], TOKENS["admin"][1], ca_file=cluster.ca_file,
                         period=0.3):
            create(cluster, deployment("failover", 8, surge=2, unavailable=1))
            rolled_out(cluster, "failover")
            patch(cluster, f"{NS}/deployments/failover", {"spec": {"template": {"metadata": {
                "annotations": {"berth.io/restartedAt": "now"}}}}})
            leader = cluster.leader_index()
            wait_until(lambda: sum(rs["spec"]["replicas"] for rs in replicasets(cluster, "failover")) > 8, 20,
                       what="the rollout under way")
            cluster.kill(leader)
            survivor = next(i for i in range(3) if i != leader)
            cluster.wait_ready([survivor])
            done = rolled_out(cluster, "failover", timeout=90, at=survivor)
            sets = replicasets(cluster, "failover", at=survivor)
            assert len(sets) == 2, [rs["metadata"]["name"] for rs in sets]
            assert done["metadata"]["annotations"]["deployment.berth.io/revision"] == "2"
            pods = Pods(cluster, "failover", at=survivor)
            wait_until(lambda: len(pods.listed()) == 8, 30, what="exactly 8 pods")
            assert len({p["metadata"]["name"] for p in pods.listed()}) == 8
    finally:
        print(cluster.logs())
        cluster.close()
