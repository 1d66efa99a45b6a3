"""Storage through the scheduler and the volumes controller, over a plain state (no server): the
VolumeBinding filter and score, the claim annotated in the pod's Bind, bindings, provisioning and
reclaiming with a fake host, and protection."""

from __future__ import annotations

from typing import Any

from berth.objects import Obj
from master.controllers.scheduling import SchedulingController
from master.controllers.volumes import VolumeController
from master.scheduler import Scheduler, build_snapshot, pod_info
from master.storage.volumes import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    PROVISIONED_BY,
    SELECTED_NODE,
    StorageState,
)
from master.store.commands import Delete, deletion
from tests.test_disruption import THREE, sources, spread
from tests.test_disruption import plan as rebalance
from tests.test_isolation import FakeStore
from tests.test_scheduler import node
from tests.test_storage import pod, pv, pvc, sc

NOW = "2026-11-30T00:00:00Z"
WAIT = sc("wait", "berth.io/local", "WaitForFirstConsumer", path="/data")


def stored(store: FakeStore, kind: str, name: str, namespace: str = "") -> Obj:
    found = store.get(kind, namespace, name)
    assert found is not None, f"{kind} {name} is gone"
    return found


def events(store: FakeStore) -> list[tuple[str, str, str, int]]:
    return sorted((e["involvedObject"]["name"], e["reason"], e["message"], e["count"])
                  for e in store.state.list("Event"))


def requested(name: str, *claims: str, node_name: str | None = None) -> Obj:
    """A pod as the API stores it, with claim volumes."""
    obj = pod(name, *claims, node=node_name)
    obj["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    obj["metadata"]["creationTimestamp"] = NOW
    return obj


# --- the scheduler ------------------------------------------------------------------------------

def place(nodes: list[Obj], pending: Obj, *storage: Obj,
          bound: list[Obj] | None = None) -> tuple[str | None, str]:
    state = StorageState.of([o for o in storage if o["kind"] == "PersistentVolumeClaim"],
                            [o for o in storage if o["kind"] == "PersistentVolume"],
                            [o for o in storage if o["kind"] == "StorageClass"])
    snapshot = build_snapshot(nodes, bound or [], storage=state)
    result = Scheduler().schedule(snapshot, [pod_info(pending, state)])
    if result.bindings:
        return result.bindings[0][1], ""
    return None, result.unschedulable[0][1]


def test_a_pod_waiting_for_its_claim_goes_where_a_volume_made_beforehand_is() -> None:
    """Every node could get a provisioned volume; the one with the admin's volume wins, even fuller."""
    busy = [requested(f"b{i}", node_name="h2") for i in range(5)]
    found = place([node("h1"), node("h2"), node("h3")], requested("p", "data"),
                  pvc("data", cls="wait"), WAIT, pv("local-h2", cls="wait", node="h2"), bound=busy)
    assert found == ("h2", "")


def test_a_bound_claims_volume_holds_its_pods_to_the_nodes_it_admits() -> None:
    objects = (pvc("data", volume="v", phase="Bound"),
               pv("v", claim=("data", "uid-data"), phase="Bound", node="h2"))
    assert place([node("h1"), node("h2")], requested("p", "data"), *objects) == ("h2", "")
    assert place([node("h1"), node("h3")], requested("p", "data"), *objects) == (
        None, "0/2 nodes fit: 2 node(s) had volume node affinity conflict")


def test_what_keeps_a_pod_off_every_node_is_said_once() -> None:
    nodes = [node("h1"), node("h2")]
    assert place(nodes, requested("p", "data")) == (
        None, '0/2 nodes fit: persistentvolumeclaim "data" not found')
    assert place(nodes, requested("p", "data"), pvc("data", deleted=True)) == (
        None, '0/2 nodes fit: persistentvolumeclaim "data" is being deleted')
    assert place(nodes, requested("p", "data"), pvc("data", cls="now"), sc("now")) == (
        None, "0/2 nodes fit: pod has unbound immediate PersistentVolumeClaims")


def test_the_scheduler_binds_the_pod_and_annotates_its_waiting_claim_in_one_batch() -> None:
    store = FakeStore(node("h1"), node("h2"), WAIT, pv("local-h2", cls="wait", node="h2"),
                      pvc("data", cls="wait"), requested("p", "data"))
    SchedulingController(store, lambda: NOW, lambda: "u").reconcile()  # type: ignore[arg-type]
    assert stored(store, "Pod", "p", "default")["spec"]["nodeName"] == "h2"
    claim = stored(store, "PersistentVolumeClaim", "data", "default")
    assert claim["metadata"]["annotations"][SELECTED_NODE] == "h2"


def test_a_pod_whose_claim_changed_since_the_round_read_it_is_not_bound() -> None:
    """The Bind carries each claim at the resourceVersion read: a claim marked meanwhile stops it."""
    store = FakeStore(node("h1"), pvc("data", volume="v", phase="Bound"),
                      pv("v", claim=("data", "uid-data"), phase="Bound"), requested("p", "data"))
    controller = SchedulingController(store, lambda: NOW, lambda: "u")  # type: ignore[arg-type]
    reads = store.read

    def read_then_delete(reader: Any) -> tuple[Any, int]:
        answer = reads(reader)
        claim = stored(store, "PersistentVolumeClaim", "data", "default")
        store.state.apply(deletion(claim, NOW))
        return answer

    store.read = read_then_delete  # type: ignore[method-assign]
    controller.reconcile()
    assert not stored(store, "Pod", "p", "default")["spec"].get("nodeName")
    store.read = reads  # type: ignore[method-assign]
    controller.reconcile()  # the next round sees the claim being deleted
    assert [e["message"] for e in store.state.list("Event") if e["reason"] == "FailedScheduling"] == [
        '0/1 nodes fit: persistentvolumeclaim "data" is being deleted']


# --- the volumes controller ----------------------------------------------------------------------

class FakeHosts:
    """`HostCommands` that records each command, failing while `failing` says why."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, list[str]]] = []
        self.failing: str | None = None

    def run(self, node_obj: Obj, argv: list[str]) -> str | None:
        self.ran.append((node_obj["metadata"]["name"], argv))
        return self.failing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def controller(store: FakeStore, hosts: FakeHosts | None) -> tuple[VolumeController, Clock]:
    clock = Clock()
    made = VolumeController(store, lambda: NOW,  # type: ignore[arg-type]
                            lambda: f"uid-{len(store.state.list('Event'))}", hosts, retry_seconds=10,
                            clock=clock)
    return made, clock


def test_an_immediate_claim_is_bound_to_the_matching_volume_in_one_batch() -> None:
    store = FakeStore(sc("fast"), pv("big", "20Gi", cls="fast"),
                      pv("fits", "2Gi", cls="fast", modes=("ReadWriteOnce", "ReadOnlyMany")),
                      pvc("data", "2Gi", cls="fast"))
    volumes, _ = controller(store, FakeHosts())
    volumes.reconcile()
    volume = stored(store, "PersistentVolume", "fits")
    claim = stored(store, "PersistentVolumeClaim", "data", "default")
    assert volume["spec"]["claimRef"] == {"namespace": "default", "name": "data", "uid": "uid-data"}
    assert volume["status"] == {"phase": "Bound"}
    assert volume["metadata"]["annotations"][BOUND_BY_CONTROLLER] == "yes"
    assert claim["spec"]["volumeName"] == "fits"
    assert claim["status"] == {"phase": "Bound", "capacity": {"storage": "2Gi"},
                               "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}
    assert claim["metadata"]["annotations"][BIND_COMPLETED] == "yes"
    volumes.reconcile()
    assert stored(store, "PersistentVolume", "big")["status"] == {"phase": "Available"}


def test_a_claim_with_no_match_and_no_class_waits_and_is_told_once() -> None:
    store = FakeStore(pv("fast-one", cls="fast"), pvc("data", cls="", phase=None))
    volumes, _ = controller(store, FakeHosts())
    volumes.reconcile()
    volumes.reconcile()
    assert stored(store, "PersistentVolumeClaim", "data", "default")["status"] == {"phase": "Pending"}
    assert events(store) == [("data", "FailedBinding", "no persistent volumes available for this claim "
                                                       "and no storage class is set", 1)]


def test_a_waiting_claim_is_provisioned_on_its_consumers_node_after_its_directory_is_made() -> None:
    store = FakeStore(node("h1"), node("h2"), WAIT,
                      pvc("data", cls="wait", annotations={SELECTED_NODE: "h2"}))
    hosts = FakeHosts()
    volumes, _ = controller(store, hosts)
    volumes.reconcile()
    assert hosts.ran == [("h2", ["mkdir", "-p", "-m", "0777", "--", "/data/pvc-uid-data"])]
    volume = stored(store, "PersistentVolume", "pvc-uid-data")
    assert volume["spec"]["local"] == {"path": "/data/pvc-uid-data"}
    assert volume["spec"]["claimRef"]["uid"] == "uid-data" and volume["status"] == {"phase": "Bound"}
    assert volume["metadata"]["annotations"][PROVISIONED_BY] == "berth.io/local"
    claim = stored(store, "PersistentVolumeClaim", "data", "default")
    assert (claim["spec"]["volumeName"], claim["status"]["phase"]) == ("pvc-uid-data", "Bound")
    assert [(e[1], e[2]) for e in events(store)] == [
        ("ProvisioningSucceeded",
         "Successfully provisioned volume pvc-uid-data using berth.io/local on node h2")]
    volumes.reconcile()
    assert len(hosts.ran) == 1  # bound: nothing more to make


def test_a_failed_provisioning_is_told_and_tried_again_later() -> None:
    store = FakeStore(node("store"), sc("shared"), pvc("data", cls="shared"))
    hosts = FakeHosts()
    hosts.failing = "mkdir: Permission denied"
    volumes, clock = controller(store, hosts)
    volumes.reconcile()
    volumes.reconcile()  # not yet: retry_seconds
    assert hosts.ran == [("store", ["mkdir", "-p", "-m", "0777", "--", "/srv/volumes/pvc-uid-data"])]
    assert [(e[1], e[2]) for e in events(store)] == [
        ("ProvisioningFailed",
         'Failed to provision volume with StorageClass "shared": mkdir: Permission denied')]
    assert store.get("PersistentVolume", "", "pvc-uid-data") is None
    hosts.failing, clock.now = None, clock.now + 11
    volumes.reconcile()
    assert len(hosts.ran) == 2
    assert stored(store, "PersistentVolume", "pvc-uid-data")["spec"]["sshfs"] == {
        "server": "store", "path": "/srv/volumes/pvc-uid-data"}


def test_without_an_ssh_key_provisioning_fails_by_saying_so() -> None:
    store = FakeStore(node("store"), sc("shared"), pvc("data", cls="shared"))
    volumes, _ = controller(store, None)
    volumes.reconcile()
    assert "no SSH key" in events(store)[0][2]


def test_a_claim_in_use_is_deleted_once_its_pods_are_gone_then_its_volume_is_reclaimed() -> None:
    store = FakeStore(node("h1"), node("h2"), WAIT,
                      pvc("data", cls="wait", annotations={SELECTED_NODE: "h2"}),
                      requested("p", "data", node_name="h2"))
    hosts = FakeHosts()
    volumes, _ = controller(store, hosts)
    volumes.reconcile()
    claim = stored(store, "PersistentVolumeClaim", "data", "default")
    store.state.apply(deletion(claim, NOW))  # what the API's DELETE does
    marked = stored(store, "PersistentVolumeClaim", "data", "default")
    assert marked["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert marked["metadata"]["deletionTimestamp"] == NOW
    volumes.reconcile()
    assert store.get("PersistentVolumeClaim", "default", "data") is not None  # p uses it
    store.state.apply(Delete("Pod", "default", "p"))
    volumes.reconcile()
    assert store.get("PersistentVolumeClaim", "default", "data") is None
    volumes.reconcile()
    assert stored(store, "PersistentVolume", "pvc-uid-data")["status"]["phase"] == "Released"
    volumes.reconcile()  # reclaim policy Delete, and Berth made it: its directory goes, then the volume
    assert hosts.ran[-1] == ("h2", ["rm", "-rf", "--one-file-system", "--", "/data/pvc-uid-data"])
    assert store.get("PersistentVolume", "", "pvc-uid-data") is None


def test_a_bound_volume_being_deleted_is_kept_until_its_claim_is_gone() -> None:
    store = FakeStore(pvc("data", volume="v", phase="Bound", annotations={BIND_COMPLETED: "yes"}),
                      pv("v", claim=("data", "uid-data"), phase="Bound"))
    volumes, _ = controller(store, FakeHosts())
    store.state.apply(deletion(stored(store, "PersistentVolume", "v"), NOW))
    marked = stored(store, "PersistentVolume", "v")
    assert marked["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    volumes.reconcile()
    assert store.get("PersistentVolume", "", "v") is not None
    store.state.apply(deletion(stored(store, "PersistentVolumeClaim", "data", "default"), NOW))
    for _ in range(3):  # the claim goes (no pod), the volume is Released, then removed (Retain: data kept)
        volumes.reconcile()
    assert store.get("PersistentVolume", "", "v") is None


def test_the_rebalancer_never_moves_pods_with_claims() -> None:
    assert sources(rebalance(THREE, spread({"n1": 3}, cpu="500m"))) == {"n1": 2}
    with_claims = spread({"n1": 3}, cpu="500m")
    for made in with_claims:
        made["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    assert rebalance(THREE, with_claims).moves == ()
