"""The pure state machine: CAS, generations, atomic batches, the event window."""

from __future__ import annotations

import json
import pickle

import pytest

from master.store.commands import (
    Barrier,
    Batch,
    Bind,
    Create,
    Delete,
    MarkDeleted,
    Put,
    Replace,
    UpdateStatus,
)
from master.store.state import ClusterState
from master.store.window import EventWindow, WindowExpired
from tests.harness import pod


def obj(name: str, **labels: str) -> dict:
    document = pod(name, labels=labels)
    document["metadata"]["annotations"] = {}
    return document


def test_create_assigns_metadata_from_the_command() -> None:
    state = ClusterState()
    outcome, events = state.apply(Create(obj("a"), "uid-1", "2026-01-01T00:00:00Z"))
    meta = outcome.objects[0]["metadata"]
    assert (meta["uid"], meta["resourceVersion"], meta["generation"]) == ("uid-1", 1, 1)
    assert meta["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert [e.type for e in events] == ["ADDED"]


def test_apply_is_deterministic() -> None:
    commands = [Create(obj("a"), "u1", "t"), Put(obj("b"), "u2", "t"),
                Replace(obj("a", app="x"), 1), Delete("Pod", "default", "b")]
    first, second = ClusterState(), ClusterState()
    for command in commands:
        first.apply(command)
        second.apply(command)
    assert pickle.dumps(first.objects) == pickle.dumps(second.objects)
    assert first.revision == second.revision == 4


def test_stale_resource_version_conflicts() -> None:
    state = ClusterState()
    state.apply(Create(obj("a"), "u", "t"))
    state.apply(Replace(obj("a", v="1"), 1))
    outcome, events = state.apply(Replace(obj("a", v="2"), 1))
    assert outcome.error is not None and outcome.error.status == 409
    assert events == [] and state.revision == 2


def test_generation_counts_spec_changes_only() -> None:
    state = ClusterState()
    state.apply(Create(obj("a"), "u", "t"))
    state.apply(Replace(obj("a", app="web")))  # labels only
    assert state.get("Pod", "default", "a")["metadata"]["generation"] == 1
    changed = obj("a", app="web")
    changed["spec"]["containers"][0]["image"] = "localhost/busybox:other"  # a pod's one changeable field
    state.apply(Replace(changed))
    state.apply(UpdateStatus("Pod", "default", "a", {"phase": "Running"}))
    stored = state.get("Pod", "default", "a")
    assert stored["metadata"]["generation"] == 2
    assert stored["status"] == {"phase": "Running"}
    state.apply(Replace(changed))  # no change at all: no new revision
    assert state.revision == 4


def test_batch_is_all_or_nothing() -> None:
    state = ClusterState()
    state.apply(Create(obj("taken"), "u", "t"))
    outcome, events = state.apply(Batch((Put(obj("new"), "u2", "t"), Create(obj("taken"), "u3", "t"))))
    assert outcome.error is not None and outcome.error.reason == "AlreadyExists"
    assert events == [] and state.get("Pod", "default", "new") is None and state.revision == 1
    outcome, events = state.apply(Batch((Put(obj("new"), "u2", "t"), Put(obj("taken"), "u3", "t"))))
    # `taken` was created, never applied: the first apply remembers its configuration, as kubectl's does
    assert outcome.actions == ["created", "configured"] and len(events) == 2
    outcome, events = state.apply(Batch((Put(obj("new"), "u2", "t"), Put(obj("taken"), "u3", "t"))))
    assert outcome.actions == ["unchanged", "unchanged"] and events == []


def test_barrier_changes_nothing() -> None:
    state = ClusterState()
    assert state.apply(Barrier())[1] == [] and state.revision == 0


def test_delete_missing_is_not_found() -> None:
    outcome, _ = ClusterState().apply(Delete("Pod", "default", "nope"))
    assert outcome.error is not None and outcome.error.status == 404


def test_window_resumes_without_gap_and_expires() -> None:
    state, window = ClusterState(), EventWindow(size=3)
    for i in range(5):
        window.extend(state.apply(Create(obj(f"p{i}"), f"u{i}", "t"))[1])
    assert [e.revision for e in window.since(3)] == [4, 5]
    assert [e.revision for e in window.since(2)] == [3, 4, 5]
    with pytest.raises(WindowExpired):
        window.since(1)


def test_a_pod_is_bound_once_and_only_the_pod_the_scheduler_saw() -> None:
    state = ClusterState()
    state.apply(Create(obj("a"), "uid-a", "t"))
    outcome, events = state.apply(Bind("default", "a", "uid-a", "h1", {"phase": "Pending"}))
    assert outcome.error is None and outcome.objects[0]["spec"]["nodeName"] == "h1"
    assert outcome.objects[0]["status"] == {"phase": "Pending"} and [e.type for e in events] == ["MODIFIED"]
    again, _ = state.apply(Bind("default", "a", "uid-a", "h2", {}))  # a second leader, too late
    assert again.error is not None and again.error.status == 409
    assert "already bound to node h1" in again.error.message
    state.apply(Delete("Pod", "default", "a"))
    state.apply(Create(obj("a"), "uid-a2", "t"))  # same name, another pod
    stale, _ = state.apply(Bind("default", "a", "uid-a", "h1", {}))
    assert stale.error is not None and stale.error.status == 409
    assert state.get("Pod", "default", "a")["spec"].get("nodeName") is None


def test_a_graceful_delete_marks_first_and_updates_keep_the_mark() -> None:
    state = ClusterState()
    state.apply(Create(obj("a"), "uid-a", "t"))
    marked, events = state.apply(MarkDeleted("Pod", "default", "a", "t1", 30))
    meta = marked.objects[0]["metadata"]
    assert (meta["deletionTimestamp"], meta["deletionGracePeriodSeconds"]) == ("t1", 30)
    assert [e.type for e in events] == ["MODIFIED"]
    again, events = state.apply(MarkDeleted("Pod", "default", "a", "t2", 0))
    assert again.objects[0]["metadata"]["deletionTimestamp"] == "t1" and events == []
    updated, _ = state.apply(Replace(obj("a", app="x")))
    assert updated.objects[0]["metadata"]["deletionTimestamp"] == "t1"


def test_a_pinned_mark_needs_the_resource_version_and_an_old_one_unpickles_unpinned() -> None:
    state = ClusterState()
    made, _ = state.apply(Create(obj("a"), "uid-a", "t"))
    version = made.objects[0]["metadata"]["resourceVersion"]
    state.apply(UpdateStatus("Pod", "default", "a", {"phase": "Running"}))
    stale, events = state.apply(MarkDeleted("Pod", "default", "a", "t1", 30, version))
    assert stale.error is not None and stale.error.status == 409 and events == []
    current = state.get("Pod", "default", "a")["metadata"]["resourceVersion"]
    pinned, _ = state.apply(MarkDeleted("Pod", "default", "a", "t1", 30, current))
    assert pinned.objects[0]["metadata"]["deletionTimestamp"] == "t1"
    older = MarkDeleted("Pod", "default", "a", "t1", 30)
    del older.__dict__["expected_rv"]  # as journaled before the field was
    assert "expected_rv" not in pickle.dumps(older).decode("latin-1")
    assert pickle.loads(pickle.dumps(older)).expected_rv is None


def test_the_window_holds_a_bounded_number_of_bytes() -> None:
    """Each event keeps a version of its object: big objects updated often must not pile up."""
    state, window = ClusterState(), EventWindow(size=1000, max_bytes=50_000)
    for version in range(20):
        meta = {"name": "big", "namespace": "default"}
        config = {"kind": "ConfigMap", "apiVersion": "berth/v1", "metadata": meta,
                  "data": {"blob": str(version) * 10_000}}
        _, events = state.apply(Put(config, "u", "t"))
        window.extend(events)
    assert window.bytes <= 50_000 and window.floor > 0
    assert [e.revision for e in window.since(window.floor)] == list(range(window.floor + 1, 21))
    with pytest.raises(WindowExpired):
        window.since(0)


def test_indexes_follow_every_change_and_a_failed_batch() -> None:
    state = ClusterState()

    def names(**select: object) -> set[str]:
        return {o["metadata"]["name"] for o in state.select("Pod", **select)}  # type: ignore[arg-type]

    owned = pod("a", labels={"app": "web", "tier": "fe"})
    owned["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": "rs-1"}]
    state.apply(Create(owned, "u-a", "t"))
    state.apply(Create(pod("b", labels={"app": "web"}), "u-b", "t"))
    state.apply(Create(pod("c", namespace="other", labels={"app": "db"}), "u-c", "t"))
    state.apply(Bind("default", "b", "u-b", "h1", {}))
    assert names(labels={"app": "web"}) == {"a", "b"} and names(labels={"app": "web", "tier": "fe"}) == {"a"}
    assert names(node="h1") == {"b"} and names(owner="rs-1") == {"a"}
    assert names(namespace="other") == {"c"} and names(namespace="default", labels={"app": "db"}) == set()
    assert names() == {"a", "b", "c"} and names(labels={"app": "nothing"}) == set()
    relabelled = pod("a", labels={"app": "api"})
    state.apply(Replace(relabelled))
    assert names(labels={"app": "web"}) == {"b"} and names(owner="rs-1") == set()
    # a batch that fails half-way leaves the indexes as they were
    outcome, _ = state.apply(Batch((Delete("Pod", "default", "b"), Delete("Pod", "default", "nope"))))
    assert outcome.error is not None and names(node="h1") == {"b"}
    state.apply(Delete("Pod", "default", "b"))
    assert names(node="h1") == set() and names(labels={"app": "web"}) == set()
    # a snapshot holds no index: it is rebuilt when loaded
    loaded = pickle.loads(pickle.dumps(state))
    assert "indexes" not in state.__getstate__()
    assert {o["metadata"]["name"] for o in loaded.select("Pod", labels={"app": "api"})} == {"a"}


def test_a_pods_spec_is_fixed_but_its_image_and_added_tolerations() -> None:
    """Kubernetes' rule: a changed command or host would be stored but not true (422)."""
    state = ClusterState()
    state.apply(Create(obj("a"), "u", "t"))
    for path, change in (("spec.containers[0].command",
                          lambda s: s["containers"][0].update(command=["true"])),
                         ("spec.nodeName", lambda s: s.update(nodeName="h3")),
                         ("spec.restartPolicy", lambda s: s.update(restartPolicy="Never"))):
        changed = obj("a")
        change(changed["spec"])
        outcome, events = state.apply(Replace(changed))
        assert outcome.error is not None and (outcome.error.status, outcome.error.field) == (422, path), path
        assert events == []
    added = obj("a")
    added["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    assert state.apply(Replace(added))[0].error is None  # a toleration added: allowed
    outcome, _ = state.apply(Replace(obj("a")))  # and taken away again: refused
    assert outcome.error is not None and outcome.error.field == "spec.tolerations"
    bound = obj("b")
    state.apply(Create(bound, "u2", "t"))
    state.apply(Bind("default", "b", "u2", "h1", {}))  # binding is how nodeName is set
    assert state.get("Pod", "default", "b")["spec"]["nodeName"] == "h1"


def test_reapplying_an_unchanged_manifest_changes_nothing() -> None:
    """The bug: a second apply cleared spec.nodeName, and the pod was scheduled afresh."""
    state = ClusterState()
    state.apply(Put(obj("a", app="web"), "u", "t"))
    state.apply(Bind("default", "a", "u", "h1", {}))
    state.apply(UpdateStatus("Pod", "default", "a", {"phase": "Running"}))
    revision = state.revision
    again, events = state.apply(Put(obj("a", app="web"), "u2", "t2"))
    assert again.actions == ["unchanged"] and events == [] and state.revision == revision
    stored = state.get("Pod", "default", "a")
    assert stored["spec"]["nodeName"] == "h1" and stored["metadata"]["generation"] == 1
    relabelled, _ = state.apply(Put(obj("a", app="web", tier="front"), "u3", "t3"))
    assert relabelled.actions == ["configured"]
    assert state.get("Pod", "default", "a")["spec"]["nodeName"] == "h1"  # still where it runs
    state.apply(Put(obj("a", tier="front"), "u4", "t4"))  # a label the last apply set, dropped
    assert state.get("Pod", "default", "a")["metadata"]["labels"] == {"tier": "front"}
    moved = obj("a", tier="front")
    moved["spec"]["nodeName"] = "h2"
    outcome, _ = state.apply(Put(moved, "u5", "t5"))  # asking for another host: refused, not moved
    assert outcome.error is not None and outcome.error.field == "spec.nodeName"


def test_apply_merges_three_ways() -> None:
    from master.objects.apply import three_way

    last = {"a": 1, "b": {"x": 1, "y": 2}, "gone": True}
    live = {"a": 1, "b": {"x": 1, "y": 2, "system": 3}, "gone": True, "nodeName": "h1"}
    new = {"a": 2, "b": {"x": 1}, "list": [1]}
    assert three_way(last, live, new) == {"a": 2, "b": {"x": 1, "system": 3}, "nodeName": "h1", "list": [1]}
    assert three_way({}, live, {"a": 1}) == live  # never applied: what the apply does not name stays


def test_a_secrets_remembered_apply_holds_its_keys_not_its_values() -> None:
    """Annotations reach every reader; Secret values only those allowed (auth.py hides `data`)."""
    secret = {"apiVersion": "berth/v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
              "type": "Opaque", "data": {"a": "c2VjcmV0", "b": "b3RoZXI="}}
    state = ClusterState()
    state.apply(Put(secret, "u", "t"))
    stored = state.get("Secret", "default", "s")
    assert "c2VjcmV0" not in json.dumps(stored["metadata"])
    state.apply(Put({**secret, "data": {"a": "bmV3"}}, "u2", "t2"))  # b dropped by the manifest
    assert state.get("Secret", "default", "s")["data"] == {"a": "bmV3"}


def test_a_dry_run_says_what_would_happen_and_keeps_nothing() -> None:
    state = ClusterState()
    state.apply(Put(obj("a", app="web"), "u", "t"))
    before = pickle.dumps(state.objects), state.revision, state.select("Pod", labels={"app": "web"})
    outcome, events = state.apply(Batch((Put(obj("b", app="web"), "u2", "t"), Delete("Pod", "default", "a"))),
                                  dry_run=True)
    assert outcome.actions == ["created", "deleted"] and events == []
    assert (pickle.dumps(state.objects), state.revision, state.select("Pod", labels={"app": "web"})) == before


def test_an_init_containers_image_may_change_as_in_kubernetes_and_nothing_else_of_it() -> None:
    state = ClusterState()
    first = obj("a")
    first["spec"]["initContainers"] = [{"name": "setup", "image": "busybox:1"}]
    state.apply(Create(first, "u", "t"))
    newer = json.loads(json.dumps(first))
    newer["spec"]["initContainers"][0]["image"] = "busybox:2"
    assert state.apply(Replace(newer))[0].error is None
    for path, change in (("spec.initContainers[0].command",
                          lambda s: s["initContainers"][0].update(command=["true"])),
                         ("spec.initContainers", lambda s: s.pop("initContainers"))):
        changed = json.loads(json.dumps(newer))
        change(changed["spec"])
        outcome, _ = state.apply(Replace(changed))
        assert outcome.error is not None and (outcome.error.status, outcome.error.field) == (422, path), path


def test_release_dependents_drops_only_that_owner_in_the_same_command() -> None:
    from master.store.commands import Batch, Create, Delete, ReleaseDependents
    state = ClusterState()
    owner = {"apiVersion": "berth/v1", "kind": "ReplicaSet",
             "metadata": {"name": "rs", "namespace": "default"}, "spec": {}}
    state.apply(Create(owner, "rs-uid", "t"))
    other = {"kind": "Thing", "name": "t", "uid": "other-uid", "controller": False}
    for name, refs in (("a", [{"kind": "ReplicaSet", "name": "rs", "uid": "rs-uid"}]),
                       ("b", [{"kind": "ReplicaSet", "name": "rs", "uid": "rs-uid"}, other]),
                       ("c", [other])):
        pod = {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                                    "ownerReferences": refs}, "spec": {}}
        state.apply(Create(pod, f"uid-{name}", "t"))
    outcome, events = state.apply(Batch((ReleaseDependents("rs-uid"), Delete("ReplicaSet", "default", "rs"))))
    assert outcome.error is None
    assert [e.obj["metadata"]["name"] for e in events] == ["a", "b", "rs"]  # sorted: every master alike
    assert "ownerReferences" not in state.get("Pod", "default", "a")["metadata"]
    assert state.get("Pod", "default", "b")["metadata"]["ownerReferences"] == [other]
    assert state.get("Pod", "default", "c")["metadata"]["ownerReferences"] == [other]
    assert state.get("ReplicaSet", "default", "rs") is None
