"""Storage's pure decisions (no server): node affinity, Kubernetes' binder rules, provisioning plans,
what a pod's claims ask of a node, and the volumes controller's round."""

from __future__ import annotations

from typing import Any

import pytest

from berth.objects import Obj
from master.objects.storage_kinds import DEFAULT_CLASS_ANNOTATION
from master.storage.needs import (
    AFFINITY_CONFLICT,
    NO_VOLUME_TO_BIND,
    UNBOUND_IMMEDIATE,
    node_problem,
    static_volumes,
    volume_needs,
)
from master.storage.provision import NotProvisionable, provision_plan, reclaim_plan, volume_path
from master.storage.sync import (
    NO_CLASS,
    WAITING,
    Bind,
    Pending,
    Provision,
    SetPhase,
    Tell,
    consumers,
    plan_storage,
    wants_pods,
)
from master.storage.volumes import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_NODE,
    NodeRef,
    StorageState,
    claim_class,
    matching_volume,
    node_affinity_admits,
    pod_claims,
)

HOSTNAME = "kubernetes.io/hostname"


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]}}


def on(node: str) -> dict[str, Any]:
    return affinity([{"key": HOSTNAME, "operator": "In", "values": [node]}])


def pv(name: str, size: str = "10Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = None,
       claim: tuple[str, str | None] | None = None, phase: str | None = "Available", node: str | None = None,
       annotations: dict[str, str] | None = None, deleted: bool = False, policy: str = "Retain",
       **spec: Any) -> Obj:
    body: Obj = {"capacity": {"storage": size}, "accessModes": list(modes),
                 "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/srv/{name}"}, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    if claim is not None:
        body["claimRef"] = {"namespace": "default", "name": claim[0],
                            **({"uid": claim[1]} if claim[1] else {})}
    if node is not None:
        body["nodeAffinity"] = on(node)
    meta: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": 7, "annotations": annotations or {},
                 "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleted:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    return {"kind": "PersistentVolume", "metadata": meta, "spec": body,
            **({"status": {"phase": phase}} if phase else {})}


def pvc(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = None,
        volume: str | None = None, phase: str | None = "Pending", annotations: dict[str, str] | None = None,
        deleted: bool = False, created: str = "2026-01-01T00:00:00Z") -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                 "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume is not None:
        spec["volumeName"] = volume
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": 3,
                 "annotations": annotations or {}, "creationTimestamp": created}
    if deleted:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    return {"kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec,
            **({"status": {"phase": phase}} if phase else {})}


def sc(name: str, provisioner: str = "berth.io/shared", mode: str = "Immediate", default: bool = False,
       created: str = "2026-01-01T00:00:00Z", **parameters: str) -> Obj:
    if provisioner == "berth.io/shared" and not parameters:
        parameters = {"server": "store", "path": "/srv/volumes"}
    return {"kind": "StorageClass", "provisioner": provisioner, "parameters": parameters,
            "reclaimPolicy": "Delete", "volumeBindingMode": mode,
            "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created,
                         "annotations": {DEFAULT_CLASS_ANNOTATION: "true"} if default else {}}}


def pod(name: str, *claims: str, node: str | None = None, phase: str | None = None) -> Obj:
    obj: Obj = {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}],
                         "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                     for i, c in enumerate(claims)] + [{"name": "tmp", "emptyDir": {}}]}}
    if node:
        obj["spec"]["nodeName"] = node
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def node(name: str, **labels: str) -> Obj:
    return {"kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"address": f"10.0.0.{len(name)}"}}


# --- node affinity ------------------------------------------------------------------------------

@pytest.mark.parametrize(("node_affinity", "labels", "admitted"), [
    (None, {}, True),  # no affinity: every node
    (on("h1"), {}, True),  # kubernetes.io/hostname is the node's name when it has no such label
    (on("h2"), {}, False),
    (on("h2"), {HOSTNAME: "h2"}, True),  # a label of that key, when there is one, is what counts
    (affinity([{"key": "zone", "operator": "In", "values": ["a", "b"]}]), {"zone": "b"}, True),
    (affinity([{"key": "zone", "operator": "In", "values": ["a"]}]), {}, False),
    (affinity([{"key": "zone", "operator": "NotIn", "values": ["a"]}]), {}, True),  # absent: not in
    (affinity([{"key": "zone", "operator": "NotIn", "values": ["a"]}]), {"zone": "a"}, False),
    (affinity([{"key": "ssd", "operator": "Exists"}]), {"ssd": ""}, True),
    (affinity([{"key": "ssd", "operator": "Exists"}]), {}, False),
    (affinity([{"key": "ssd", "operator": "DoesNotExist"}]), {}, True),
    (affinity([{"key": HOSTNAME, "operator": "DoesNotExist"}]), {}, False),  # every node has a name
    # expressions of a term ANDed, terms ORed
    (affinity([{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "ssd", "operator": "Exists"}]),
     {"zone": "a"}, False),
    (affinity([{"key": "zone", "operator": "In", "values": ["a"]}], [{"key": "ssd", "operator": "Exists"}]),
     {"ssd": "1"}, True),
    (affinity([{"key": "zone", "operator": "Gt", "values": ["1"]}]), {"zone": "2"}, False),  # not an operator
    ({"required": {"nodeSelectorTerms": []}}, {}, False),  # unreadable: no node
    ({"required": "garbage"}, {}, False),
])
def test_node_affinity(node_affinity: Any, labels: dict[str, str], admitted: bool) -> None:
    volume = pv("v", **({"nodeAffinity": node_affinity} if node_affinity is not None else {}))
    assert node_affinity_admits(volume, NodeRef("h1", labels)) is admitted


# --- the binder's rules ---------------------------------------------------------------------------

SMALL, LARGE = pv("small", "2Gi"), pv("large", "20Gi")


@pytest.mark.parametrize(("claim", "volumes", "kwargs", "expected"), [
    (pvc("c"), [LARGE, SMALL], {}, "small"),  # the smallest that is large enough
    (pvc("c", "5Gi"), [LARGE, SMALL], {}, "large"),
    (pvc("c", "50Gi"), [LARGE, SMALL], {}, None),
    (pvc("c", "2Gi"), [SMALL], {}, "small"),  # exactly the request
    (pvc("c", cls="fast"), [SMALL, pv("fast-one", cls="fast")], {}, "fast-one"),  # its class only
    (pvc("c"), [pv("fast-one", cls="fast")], {}, None),
    (pvc("c"), [pv("fast-one", cls="fast")], {"class_name": "fast"}, "fast-one"),  # class after defaulting
    (pvc("c", modes=("ReadWriteMany",)), [SMALL, pv("shared", modes=("ReadWriteOnce", "ReadWriteMany"))], {},
     "shared"),  # the claim's modes, a subset of the volume's
    (pvc("c", modes=("ReadWriteOnce", "ReadOnlyMany")), [SMALL], {}, None),
    (pvc("c"), [pv("two", "2Gi", modes=("ReadWriteOnce", "ReadWriteMany")), pv("one", "2Gi")], {}, "one"),
    (pvc("c"), [pv("bound", "1Gi", claim=("other", "uid-other"), phase="Bound"), LARGE], {}, "large"),
    (pvc("c"), [pv("reserved", "1Gi", claim=("other", None)), LARGE], {}, "large"),  # kept for another claim
    (pvc("c"), [pv("released", "1Gi", phase="Released"), LARGE], {}, "large"),
    (pvc("c"), [pv("going", "1Gi", deleted=True), LARGE], {}, "large"),
    (pvc("c"), [pv("new", "1Gi", phase=None)], {}, "new"),  # no phase written yet: Available
    # pre-bound to this claim (by name, or by uid) wins over a smaller one, and its class is not asked
    (pvc("c"), [pv("mine", "30Gi", cls="other", claim=("c", None)), SMALL], {}, "mine"),
    (pvc("c"), [pv("mine", "30Gi", claim=("c", "uid-c"), phase="Bound"), SMALL], {}, "mine"),
    (pvc("c"), [pv("not-mine", "30Gi", claim=("c", "uid-older"), phase="Released"), SMALL], {}, "small"),
    (pvc("c"), [pv("mine", "1Mi", claim=("c", None)), SMALL], {}, "small"),  # pre-bound but too small
    (pvc("c", volume="large"), [LARGE, SMALL], {}, "large"),  # the volume asked for only
    (pvc("c", volume="gone"), [LARGE, SMALL], {}, None),
    (pvc("c"), [LARGE, SMALL], {"taken": {"small"}}, "large"),  # given to another claim this round
    # waiting for the first consumer: only a volume pre-bound to it while no node is chosen, then those
    # whose node affinity admits the node
    (pvc("c"), [SMALL], {"delayed": True}, None),
    (pvc("c"), [pv("mine", claim=("c", None))], {"delayed": True}, "mine"),
    (pvc("c"), [pv("on-h1", "5Gi", node="h1"), pv("on-h2", "2Gi", node="h2")],
     {"delayed": True, "node": NodeRef("h1")}, "on-h1"),
    (pvc("c"), [pv("on-h2", node="h2")], {"delayed": True, "node": NodeRef("h1")}, None),
    (pvc("c"), [pv("anywhere")], {"delayed": True, "node": NodeRef("h1")}, "anywhere"),
])
def test_matching_volume(claim: Obj, volumes: list[Obj], kwargs: dict[str, Any],
                         expected: str | None) -> None:
    found = matching_volume(claim, volumes, **kwargs)
    assert (found["metadata"]["name"] if found else None) == expected


@pytest.mark.parametrize(("claim", "classes", "expected"), [
    (pvc("c", cls="fast"), [sc("slow", default=True)], "fast"),
    (pvc("c", cls=""), [sc("slow", default=True)], ""),  # "": no class, as Kubernetes
    (pvc("c"), [sc("slow", default=True), sc("fast")], "slow"),
    (pvc("c"), [sc("fast")], ""),
    (pvc("c"), [sc("old", default=True, created="2026-01-01T00:00:00Z"),
                sc("new", default=True, created="2026-02-01T00:00:00Z")], "new"),  # the newest default
])
def test_claim_class_after_defaulting(claim: Obj, classes: list[Obj], expected: str) -> None:
    assert claim_class(claim, classes) == expected


def test_pod_claims_reads_only_claim_volumes_once() -> None:
    assert pod_claims(pod("p", "a", "b", "a")) == ["a", "b"]
    assert pod_claims({"metadata": {}, "spec": {"volumes": "garbage"}}) == []
    numbered = {"metadata": {}, "spec": {"volumes": [{"persistentVolumeClaim": {"claimName": 3}}]}}
    assert pod_claims(numbered) == []


# --- provisioning plans ------------------------------------------------------------------------------

def test_a_local_plan_makes_a_directory_under_the_class_path_on_the_consumers_node() -> None:
    klass = sc("local", "berth.io/local", "WaitForFirstConsumer", path="/data/vols/")
    plan = provision_plan(klass, pvc("c", "3Gi", modes=("ReadWriteOnce",)), "h2")
    volume = plan.volume
    assert plan.node == "h2"
    assert plan.make == ["mkdir", "-p", "-m", "0777", "--", "/data/vols/pvc-uid-c"]
    assert volume["metadata"]["name"] == "pvc-uid-c"
    assert volume["metadata"]["annotations"] == {PROVISIONED_BY: "berth.io/local", STORAGE_NODE: "h2"}
    assert volume["spec"] == {
        "capacity": {"storage": "3Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local", "volumeMode": "Filesystem",
        "claimRef": {"namespace": "default", "name": "c", "uid": "uid-c"},
        "local": {"path": "/data/vols/pvc-uid-c"}, "nodeAffinity": on("h2")}
    assert volume["status"] == {"phase": "Bound"}
    default_path = provision_plan(sc("l", "berth.io/local", "WaitForFirstConsumer"), pvc("c"), "h1")
    assert default_path.make[-1] == "/var/lib/berth/volumes/pvc-uid-c"


@pytest.mark.parametrize(("protocol", "source"), [
    ({}, {"sshfs": {"server": "store", "path": "/srv/volumes/pvc-uid-c"}}),
    ({"protocol": "nfs"}, {"nfs": {"server": "10.0.0.9", "path": "/srv/volumes/pvc-uid-c"}}),
])
def test_a_shared_plan_makes_a_directory_on_the_storage_node(protocol: dict[str, str], source: Obj) -> None:
    klass = sc("shared", server="store", path="/srv/volumes", **protocol)
    plan = provision_plan(klass, pvc("c"), None, "10.0.0.9")
    assert plan.node == "store" and plan.make[-1] == "/srv/volumes/pvc-uid-c"
    assert {k: v for k, v in plan.volume["spec"].items() if k in ("sshfs", "nfs", "nodeAffinity")} == source
    assert plan.volume["metadata"]["annotations"][STORAGE_NODE] == "store"


@pytest.mark.parametrize(("klass", "claim", "node", "why"), [
    (sc("l", "berth.io/local", "WaitForFirstConsumer"), pvc("c"), None, "none is scheduled yet"),
    (sc("s", server="store", path="/", protocol="sshfs"), pvc("c"), None, "directory of their own"),
    (sc("s", server="store", path="/srv/../etc"), pvc("c"), None, "'..' component"),
    (sc("s", server="store", path="/srv", bogus="x"), pvc("c"), None, "unknown parameter 'bogus'"),
    (sc("s", server="store", path="/srv", protocol="nfs"), pvc("c"), None, "no address"),
    (sc("x", provisioner="example.com/other"), pvc("c"), "h1", "not one of Berth's"),
    (sc("l", "berth.io/local", "WaitForFirstConsumer"),
     {**pvc("c"), "metadata": {**pvc("c")["metadata"], "uid": "../../etc"}}, "h1", "makes no volume name"),
])
def test_no_plan_for_what_cannot_be_made_safely(klass: Obj, claim: Obj, node: str | None, why: str) -> None:
    with pytest.raises(NotProvisionable, match=why.replace("(", r"\(")):
        provision_plan(klass, claim, node)


@pytest.mark.parametrize(("base", "name"), [("/srv", "../etc"), ("/srv", "pvc-a/b"), ("srv", "pvc-a"),
                                            ("/", "pvc-a"), ("/srv", "etc")])
def test_a_volume_path_stays_one_level_under_its_base(base: str, name: str) -> None:
    with pytest.raises(NotProvisionable):
        volume_path(base, name)


def test_reclaim_plans_only_what_berth_made_at_its_own_path() -> None:
    klass = sc("l", "berth.io/local", "WaitForFirstConsumer", path="/data")
    made = provision_plan(klass, pvc("c"), "h2").volume
    plan = reclaim_plan(made)
    assert (plan.node, plan.remove) == ("h2", ["rm", "-rf", "--one-file-system", "--", "/data/pvc-uid-c"])
    by_hand = pv("by-hand", policy="Delete")
    with pytest.raises(NotProvisionable, match="by hand"):
        reclaim_plan(by_hand)
    moved = {**made, "spec": {**made["spec"], "local": {"path": "/etc"}}}
    with pytest.raises(NotProvisionable):
        reclaim_plan(moved)
    renamed = {**made, "metadata": {**made["metadata"], "name": "pvc-other"}}
    with pytest.raises(NotProvisionable):
        reclaim_plan(renamed)


# --- what a pod's claims ask of a node -----------------------------------------------------------------

WAIT = sc("wait", "berth.io/local", "WaitForFirstConsumer")
NOW_CLASS = sc("now")


def needs(*claims: str, objects: list[Obj]) -> Any:
    state = StorageState.of([o for o in objects if o["kind"] == "PersistentVolumeClaim"],
                            [o for o in objects if o["kind"] == "PersistentVolume"],
                            [o for o in objects if o["kind"] == "StorageClass"])
    return volume_needs("default", list(claims), state)


@pytest.mark.parametrize(("claims", "objects", "problem"), [
    (["x"], [], 'persistentvolumeclaim "x" not found'),
    (["x"], [pvc("x", deleted=True)], 'persistentvolumeclaim "x" is being deleted'),
    (["x"], [pvc("x", cls="now"), NOW_CLASS], UNBOUND_IMMEDIATE),
    (["x"], [pvc("x", cls="")], UNBOUND_IMMEDIATE),
    (["x"], [pvc("x", cls="missing")], UNBOUND_IMMEDIATE),
    (["x"], [pvc("x", volume="v", phase="Bound")], 'bound to persistentvolume "v", which is gone'),
    (["ok", "x"], [pvc("ok", cls="wait"), WAIT], 'persistentvolumeclaim "x" not found'),
    (["x"], [pvc("x", volume="v", phase="Bound"), pv("v", claim=("x", "uid-x"), phase="Bound")], None),
    (["x"], [pvc("x", cls="wait"), WAIT], None),
])
def test_what_keeps_a_pod_off_every_node(claims: list[str], objects: list[Obj], problem: str | None) -> None:
    found = needs(*claims, objects=objects).problem
    assert (found is None and problem is None) or (problem is not None and problem in str(found))


def test_a_bound_claims_volume_must_admit_the_node() -> None:
    bound = needs("x", objects=[pvc("x", volume="v", phase="Bound"),
                                pv("v", claim=("x", "uid-x"), node="h2")])
    assert node_problem(bound, NodeRef("h1")) == AFFINITY_CONFLICT
    assert node_problem(bound, NodeRef("h2")) is None


def test_a_waiting_claim_needs_a_volume_or_a_provisioner_on_the_node() -> None:
    objects = [pvc("x", cls="wait"), WAIT, pv("on-h2", cls="wait", node="h2"), pv("big", "1Ti", node="h3")]
    provisioned = needs("x", objects=objects)
    assert [node_problem(provisioned, NodeRef(n)) for n in ("h1", "h2")] == [None, None]  # local: anywhere
    assert [static_volumes(provisioned, NodeRef(n)) for n in ("h1", "h2", "h3")] == [0, 1, 0]
    garbage_class = {**WAIT, "provisioner": "example.com/none"}  # stored before validation: no provisioner
    static_only = needs("x", objects=[pvc("x", cls="wait"), garbage_class,
                                      pv("on-h2", cls="wait", node="h2")])
    assert node_problem(static_only, NodeRef("h1")) == NO_VOLUME_TO_BIND
    assert node_problem(static_only, NodeRef("h2")) is None


# --- the volumes controller's round ----------------------------------------------------------------------

def plan(*objects: Obj, nodes: tuple[str, ...] = ("h1", "h2"), pods: tuple[Obj, ...] = ()) -> list[Any]:
    state = StorageState.of([o for o in objects if o["kind"] == "PersistentVolumeClaim"],
                            [o for o in objects if o["kind"] == "PersistentVolume"],
                            [o for o in objects if o["kind"] == "StorageClass"])
    return plan_storage(state, {n: node(n) for n in nodes}, pods)


def steps(actions: list[Any]) -> list[tuple[Any, ...]]:
    """Each step as (type, object name, detail) for tables."""
    shown: list[tuple[Any, ...]] = []
    for a in actions:
        if isinstance(a, Bind):
            shown.append(("Bind", a.claim["metadata"]["name"], a.volume["metadata"]["name"], a.class_name))
        elif isinstance(a, Provision):
            shown.append(("Provision", a.claim["metadata"]["name"], a.klass["metadata"]["name"], a.node))
        elif isinstance(a, Pending):
            shown.append(("Pending", a.claim["metadata"]["name"], a.class_name, a.set_phase))
        elif isinstance(a, SetPhase):
            shown.append(("SetPhase", a.obj["metadata"]["name"], a.phase))
        elif isinstance(a, Tell):
            shown.append(("Tell", a.obj["metadata"]["name"], a.reason, a.message))
        else:
            shown.append((type(a).__name__, (getattr(a, "volume", None) or a.obj)["metadata"]["name"]))
    return shown


@pytest.mark.parametrize(("objects", "pods", "expected"), [
    # Immediate: bound to the matching volume (its other steps wait for the next round)
    ([sc("fast"), pvc("c", cls="fast"), pv("v", cls="fast")], (), [("Bind", "c", "v", None)]),
    # the default class is written in with the binding
    ([sc("fast", default=True), pvc("c"), pv("v", cls="fast")], (), [("Bind", "c", "v", "fast")]),
    # no match, a class: provisioned by it
    ([sc("fast"), pvc("c", cls="fast")], (), [("Provision", "c", "fast", None)]),
    # no match, no class: waits, told as Kubernetes tells it
    ([pvc("c", cls="")], (), [("Tell", "c", "FailedBinding", NO_CLASS)]),
    ([pvc("c", phase=None)], (), [("Pending", "c", None, True), ("Tell", "c", "FailedBinding", NO_CLASS)]),
    ([pvc("c", cls="gone")], (),
     [("Tell", "c", "ProvisioningFailed", 'storageclass.storage.k8s.io "gone" not found')]),
    # waits for its first consumer ...
    ([WAIT, pvc("c", cls="wait"), pv("v", cls="wait")], (), [("Tell", "c", "WaitForFirstConsumer", WAITING)]),
    # ... a pod scheduled to h2 uses it: bound to a volume h2 reaches, or provisioned on h2
    ([WAIT, pvc("c", cls="wait"), pv("v1", cls="wait", node="h1"), pv("v2", cls="wait", node="h2")],
     (pod("p", "c", node="h2"),), [("Bind", "c", "v2", None)]),
    ([WAIT, pvc("c", cls="wait"), pv("v1", cls="wait", node="h1")], (pod("p", "c", node="h2"),),
     [("Provision", "c", "wait", "h2")]),
    # ... or the scheduler chose h2 for it
    ([WAIT, pvc("c", cls="wait", annotations={SELECTED_NODE: "h2"})], (), [("Provision", "c", "wait", "h2")]),
    ([WAIT, pvc("c", cls="wait", annotations={SELECTED_NODE: "h9"})], (),
     [("Tell", "c", "ProvisioningFailed", 'node "h9" chosen for this claim\'s first pod is gone')]),
    # a finished pod, or one not scheduled, is no consumer
    ([WAIT, pvc("c", cls="wait")], (pod("p", "c", node="h2", phase="Succeeded"), pod("q", "c")),
     [("Tell", "c", "WaitForFirstConsumer", WAITING)]),
    # a volume asked for by name
    ([pvc("c", cls="", volume="v", phase="Pending"), pv("v")], (), [("Bind", "c", "v", None)]),
    ([pvc("c", cls="", volume="v")], (),
     [("Tell", "c", "FailedBinding", 'volume "v" requested by this claim was not found')]),
    ([pvc("c", cls="", volume="v"), pv("v", "1Mi")], (),
     [("Tell", "c", "FailedBinding", 'Cannot bind to requested volume "v": requested PV is too small')]),
    ([pvc("c", cls="", volume="v"), pv("v", claim=("d", "uid-d"), phase="Bound")], (),
     [("Tell", "c", "FailedBinding", 'volume "v" already bound to a different claim.'),
      ("SetPhase", "v", "Released")]),  # (d is gone)
    # two claims, one volume: the older claim gets it, the other is provisioned
    ([sc("fast"), pvc("young", cls="fast", created="2026-01-03T00:00:00Z"),
      pvc("old", cls="fast", created="2026-01-02T00:00:00Z"), pv("v", cls="fast")], (),
     [("Bind", "old", "v", None), ("Provision", "young", "fast", None)]),
    # bound claims stay bound; a volume whose claim is bound sets its phase
    ([pvc("c", volume="v", phase="Bound"), pv("v", claim=("c", "uid-c"), phase="Available")], (),
     [("SetPhase", "v", "Bound")]),
    ([pvc("c", volume="v", phase="Bound")], (),
     [("SetPhase", "c", "Lost"), ("Tell", "c", "ClaimLost",
                                  "Bound claim has lost its PersistentVolume. Data on the volume is lost!")]),
    ([pvc("c", volume="v", phase="Bound"), pv("v", claim=("d", "uid-d"), phase="Bound")], (),
     [("SetPhase", "c", "Lost"),
      ("Tell", "c", "ClaimMisbound",
       "Two claims are bound to the same volume, this one is bound incorrectly"),
      ("SetPhase", "v", "Released")]),
    # volumes: Available when free, Released once their claim is gone, then per policy
    ([pv("v", phase=None)], (), [("SetPhase", "v", "Available")]),
    ([pv("v", claim=("c", None), phase=None)], (), [("SetPhase", "v", "Available")]),  # reserved, free
    ([pv("v", claim=("gone", "uid-gone"), phase="Bound")], (), [("SetPhase", "v", "Released")]),
    ([pv("v", claim=("gone", "uid-gone"), phase="Released")], (), []),  # Retain: kept
    ([pv("v", claim=("gone", "uid-gone"), phase="Released", policy="Delete",
         annotations={PROVISIONED_BY: "berth.io/local"})], (), [("Reclaim", "v")]),
    ([pv("v", claim=("gone", "uid-gone"), phase="Failed", policy="Delete",
         annotations={PROVISIONED_BY: "berth.io/local"})], (), [("Reclaim", "v")]),  # tried again
    ([pv("v", claim=("gone", "uid-gone"), phase="Released", policy="Delete")], (),
     [("SetPhase", "v", "Failed"),
      ("Tell", "v", "VolumeFailedDelete", "no provisioner of Berth made this volume, so none deletes it: "
                                          "delete its data and the PersistentVolume by hand")]),
    # a volume the binder bound to a claim that is now bound to another: free again
    ([pvc("c", volume="w", phase="Bound"), pv("w", claim=("c", "uid-c"), phase="Bound"),
      pv("v", claim=("c", "uid-c"), phase="Bound", annotations={BOUND_BY_CONTROLLER: "yes"})], (),
     [("Unbind", "v")]),
    # protection: a claim being deleted goes once no scheduled, unfinished pod uses it
    ([pvc("c", volume="v", phase="Bound", deleted=True), pv("v", claim=("c", "uid-c"), phase="Bound")],
     (pod("p", "c", node="h1"),), []),
    ([pvc("c", volume="v", phase="Bound", deleted=True), pv("v", claim=("c", "uid-c"), phase="Bound")],
     (pod("p", "c", node="h1", phase="Failed"), pod("q", "c")), [("Remove", "c")]),
    # a volume being deleted goes once not Bound
    ([pv("v", claim=("c", "uid-c"), phase="Bound", deleted=True), pvc("c", volume="v", phase="Bound")], (),
     []),
    ([pv("v", phase="Available", deleted=True)], (), [("Remove", "v")]),
    ([pv("v", claim=("gone", "uid-gone"), phase="Released", deleted=True)], (), [("Remove", "v")]),
])
def test_a_round_of_the_volumes_controller(objects: list[Obj], pods: tuple[Obj, ...],
                                          expected: list[tuple[Any, ...]]) -> None:
    assert steps(plan(*objects, pods=pods)) == expected


def test_the_default_class_is_written_into_a_waiting_claim() -> None:
    assert steps(plan(sc("wait", "berth.io/local", "WaitForFirstConsumer", default=True), pvc("c"))) == [
        ("Pending", "c", "wait", False), ("Tell", "c", "WaitForFirstConsumer", WAITING)]


def test_pods_are_read_only_when_a_claim_needs_them() -> None:
    state = StorageState.of([pvc("c", cls="now")], [], [NOW_CLASS, WAIT])
    assert not wants_pods(state.claims.values(), state)
    for claim in (pvc("c", deleted=True), pvc("c", cls="wait")):
        assert wants_pods([claim], StorageState.of([claim], [], [WAIT]))
    chosen = pvc("c", cls="wait", annotations={SELECTED_NODE: "h1"})
    assert not wants_pods([chosen], StorageState.of([chosen], [], [WAIT]))
    assert consumers([pod("p", "a", "b", node="h1"), pod("q", "a")]) == {("default", "a"): ["h1"],
                                                                       ("default", "b"): ["h1"]}


def test_a_bound_claim_marks_its_binding() -> None:
    """bind-completed tells a bound claim from one asking for a volume by name, whatever its phase says."""
    claim = pvc("c", volume="v", phase="Pending", annotations={BIND_COMPLETED: "yes"})
    assert steps(plan(claim, pv("v", claim=("c", "uid-c"), phase="Bound"))) == [("SetPhase", "c", "Bound")]
    assert [type(a) for a in plan(pvc("c", phase="Bound"))] == [SetPhase, Tell]  # lost its reference
