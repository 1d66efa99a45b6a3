"""Namespaces as objects, in the pure store and the namespace controller's decision."""

from __future__ import annotations

import pickle

from master.api.auth import Principal, _allowed
from master.controllers.namespaces import plan
from master.store.commands import Batch, Create, Delete, MarkDeleted, Put
from master.store.state import ClusterState
from tests.harness import pod

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"


def namespace(name: str) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}}


def configmap(name: str, ns: str) -> dict:
    return {"apiVersion": "berth/v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {}}


def names(state: ClusterState) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["phase"] for n in state.list("Namespace")}


def test_the_first_object_in_a_namespace_makes_it_in_the_same_command() -> None:
    first, second = ClusterState(), ClusterState()
    for state in (first, second):
        outcome, events = state.apply(Create(pod("web", "team-a"), "uid-1", T0))
        assert outcome.error is None and outcome.objects[0]["kind"] == "Pod"  # the answer is the pod
        assert [(e.type, e.kind, e.revision) for e in events] == [("ADDED", "Namespace", 1),
                                                                  ("ADDED", "Pod", 2)]
    made = first.get("Namespace", "", "team-a")
    assert made == second.get("Namespace", "", "team-a")  # same uid on every master
    assert made["status"] == {"phase": "Active"} and made["metadata"]["creationTimestamp"] == T0
    assert first.apply(Create(pod("db", "team-a"), "uid-2", T1))[1][0].kind == "Pod"  # made once
    # default exists from the start: its objects cost no namespace write
    assert [e.kind for e in first.apply(Create(pod("web"), "uid-3", T0))[1]] == ["Pod"]


def test_a_refused_batch_leaves_no_namespace_behind() -> None:
    state = ClusterState()
    state.apply(Create(pod("web"), "u0", T0))
    outcome, events = state.apply(Batch((Put(pod("a", "team-b"), "u1", T0), Create(pod("web"), "u2", T0))))
    assert outcome.error is not None and outcome.error.status == 409 and events == []
    assert state.get("Namespace", "", "team-b") is None and "team-b" not in names(state)
    outcome, events = state.apply(Create(pod("a", "team-c"), "u3", T0), dry_run=True)
    assert [o["kind"] for o in outcome.objects] == ["Pod"] and events == []
    assert state.get("Namespace", "", "team-c") is None and state.revision == 1


def test_default_is_implied_and_never_deleted() -> None:
    state = ClusterState()
    assert names(state) == {"default": "Active"}
    created = state.apply(Create(namespace("default"), "u", T0))[0].error
    assert created is not None and created.status == 409
    for command in (MarkDeleted("Namespace", "", "default", T0, 0), Delete("Namespace", "", "default")):
        error = state.apply(command)[0].error
        assert error is not None and error.status == 403 and "may not be deleted" in error.message
    assert state.revision == 0
    # an apply writes it, as a creation (a watcher never saw it before)
    outcome, events = state.apply(Put({**namespace("default"), "metadata": {"name": "default",
                                                                            "labels": {"a": "b"}}}, "u", T0))
    assert [e.type for e in events] == ["ADDED"] and outcome.objects[0]["metadata"]["uid"] == "u"


def test_a_terminating_namespace_refuses_new_objects_and_goes_only_once_empty() -> None:
    state = ClusterState()
    state.apply(Create(namespace("team"), "n", T0))
    state.apply(Create(pod("web", "team"), "p", T0))
    early = state.apply(Delete("Namespace", "", "team"))[0].error
    assert early is not None and early.status == 409 and "not terminating" in early.message
    outcome, _ = state.apply(MarkDeleted("Namespace", "", "team", T1, 0))
    marked = outcome.objects[0]
    assert marked["status"]["phase"] == "Terminating" and marked["metadata"]["deletionTimestamp"] == T1
    for command in (Create(pod("db", "team"), "q", T1), Put(configmap("c", "team"), "r", T1)):
        error = state.apply(command)[0].error
        assert error is not None and error.status == 403 and error.field == "metadata.namespace"
        assert ("unable to create new content in namespace team because it is being terminated"
                in error.message)
    updated = state.apply(Put({**pod("web", "team"), "metadata": {"name": "web", "namespace": "team",
                                                                  "labels": {"x": "1"}}}, "s", T1))[0]
    assert updated.error is None  # updates go on, as in Kubernetes
    held = state.apply(Delete("Namespace", "", "team"))[0].error
    assert held is not None and "still holds 1 object" in held.message
    state.apply(Delete("Pod", "team", "web"))
    assert state.apply(Delete("Namespace", "", "team"))[0].error is None
    assert "team" not in names(state)


def test_commands_journaled_before_namespaces_replay_as_they_were_applied() -> None:
    """An old Create unpickles without makes_namespace: no Namespace is written, revisions as then;
    the namespace is still listed (implied) and the first new object in it writes it."""
    old = Create(pod("web", "legacy"), "u1", T0)
    object.__delattr__(old, "makes_namespace")  # what a pickle made before the field existed holds
    replayed = pickle.loads(pickle.dumps(old))
    assert replayed.makes_namespace is False
    state = ClusterState()
    _, events = state.apply(replayed)
    assert [e.kind for e in events] == ["Pod"] and state.revision == 1
    restored = pickle.loads(pickle.dumps(state))  # a snapshot: the indexes are rebuilt
    for current in (state, restored):
        assert names(current) == {"default": "Active", "legacy": "Active"}
        assert current.get("Namespace", "", "legacy")["metadata"]["resourceVersion"] == 0
    _, events = restored.apply(Create(pod("db", "legacy"), "u2", T1))
    assert [(e.type, e.kind) for e in events] == [("ADDED", "Namespace"), ("ADDED", "Pod")]


def test_the_controller_deletes_a_batch_as_the_api_would_then_the_namespace() -> None:
    doomed = {"metadata": {"name": "team", "deletionTimestamp": T1}}
    bound = {**pod("bound", "team"), "spec": {**pod("x")["spec"], "nodeName": "h1",
                                                 "terminationGracePeriodSeconds": 7}}
    stopping = {**pod("stopping", "team"), "metadata": {"name": "stopping", "namespace": "team",
                                                        "deletionTimestamp": T0}}
    commands = plan(doomed, [bound, pod("free", "team"), stopping, configmap("c", "team")], T1, batch=2)
    assert commands == [MarkDeleted("Pod", "team", "bound", T1, 7), Delete("Pod", "team", "free")]
    assert plan(doomed, [stopping], T1) == []  # waits for the runtime to stop it
    assert plan(doomed, [], T1) == [Delete("Namespace", "", "team")]


def test_only_admins_write_namespaces_and_everyone_reads_them() -> None:
    def may(role: str, verb: str) -> bool:
        return _allowed(Principal("x", role), verb, "Namespace", "team", None, None)

    assert all(may("admin", verb) for verb in ("create", "update", "patch", "delete", "list"))
    assert not any(may("operator", verb) for verb in ("create", "update", "patch", "delete"))
    assert may("operator", "list") and may("viewer", "get") and not may("viewer", "delete")
    # an agent reads them (a network policy's namespaceSelector matches their labels), never writes
    assert may("agent", "list") and not any(may("agent", verb) for verb in ("create", "update", "delete"))
    assert _allowed(Principal("x", "operator"), "create", "Pod", None, None, None)
