"""The workload commands' rules without a master: rollout status lines, history, undo's choice and
patch, set image, the ReplicaSet columns and the workload describe pages; and, against the stand-in
master of test_cli_unit, what scale, undo and delete --cascade send and how they fail."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.cli.describe_workloads import describe_deployment, describe_replicaset, pod_template_lines
from berth.cli.output import render_objects
from berth.cli.rollouts import (
    CHANGE_CAUSE,
    HASH_LABEL,
    REVISION,
    history,
    image_words,
    merge_patch_to,
    rollout_status,
    undo,
    with_images,
)
from berth.errors import BerthError
from master.objects.merge_patch import merge_patch
from tests.test_cli_unit import FakeServer, _serve, run

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
NS = "/api/v1/namespaces/default"


def template(image: str = "nginx:1", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}, "annotations": dict(annotations)},
            "spec": {"containers": [{"name": "main", "image": image, "command": ["sleep", "1"]}]}}


def deployment(image: str = "nginx:1", replicas: int = 3, generation: int = 2, observed: int = 2,
               updated: int = 3, total: int = 3, available: int = 3, reason: str = "NewReplicaSetAvailable",
               revision: int = 2, paused: bool = False, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": generation,
                         "resourceVersion": 40, "creationTimestamp": "2026-11-26T14:00:00Z",
                         "annotations": {REVISION: str(revision), **annotations}},
            "spec": {"replicas": replicas, "paused": paused, "selector": {"matchLabels": {"app": "web"}},
                     "template": template(image), "minReadySeconds": 0,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                       "readyReplicas": available, "availableReplicas": available,
                       "unavailableReplicas": max(0, replicas - available),
                       "conditions": [{"type": "Available", "status": "True",
                                       "reason": "MinimumReplicasAvailable"},
                                      {"type": "Progressing", "status": "True", "reason": reason}]}}


def replicaset(revision: int, image: str, replicas: int = 0, owner: str = "d-uid", cause: str | None = None,
               digest: str | None = None) -> dict[str, Any]:
    digest = digest or f"h{revision}"
    annotations = {REVISION: str(revision), **({CHANGE_CAUSE: cause} if cause else {})}
    made = template(image)
    made["metadata"]["labels"][HASH_LABEL] = digest
    return {"apiVersion": "berth/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"web-{digest}", "namespace": "default", "uid": f"rs-{digest}",
                         "creationTimestamp": f"2026-11-26T14:0{revision}:00Z", "annotations": annotations,
                         "labels": {"app": "web", HASH_LABEL: digest},
                         "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": owner,
                                              "controller": True}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", HASH_LABEL: digest}},
                     "template": made},
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}}


# --- rollout status ----------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "line", "done"), [
    ({"generation": 3, "observed": 2}, "Waiting for deployment spec update to be observed...", False),
    ({"updated": 1, "total": 3, "available": 1},
     'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False),
    ({"updated": 3, "total": 4, "available": 3},
     'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...', False),
    ({"updated": 3, "total": 3, "available": 1},
     'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...', False),
    ({}, 'deployment "web" successfully rolled out', True),
    ({"replicas": 0, "updated": 0, "total": 0, "available": 0}, 'deployment "web" successfully rolled out',
     True),
])
def test_rollout_status_says_what_kubectl_says_at_each_stage(fields: dict[str, Any], line: str,
                                                             done: bool) -> None:
    assert rollout_status(deployment(**fields)) == (line, done)


def test_rollout_status_is_an_error_past_the_progress_deadline_once_observed() -> None:
    with pytest.raises(BerthError, match='deployment "web" exceeded its progress deadline'):
        rollout_status(deployment(updated=1, reason="ProgressDeadlineExceeded"))
    # a newer spec than the status that said so: the controller has not looked at it yet
    stale = deployment(generation=3, observed=2, reason="ProgressDeadlineExceeded")
    assert rollout_status(stale) == ("Waiting for deployment spec update to be observed...", False)


def test_rollout_status_of_a_revision_other_than_the_running_one_is_an_error() -> None:
    assert rollout_status(deployment(revision=2), revision=2)[1]
    with pytest.raises(BerthError, match=r"revision \(3\) is different from the running revision \(2\)"):
        rollout_status(deployment(revision=2), revision=3)


def test_a_new_deployment_without_status_waits_for_its_spec_to_be_observed() -> None:
    fresh = deployment(generation=1)
    del fresh["status"]
    assert rollout_status(fresh) == ("Waiting for deployment spec update to be observed...", False)


# --- history -----------------------------------------------------------------------------------

def test_history_is_the_controlled_replicasets_by_revision_with_their_change_causes() -> None:
    listed = [replicaset(3, "nginx:3", cause="third"), replicaset(1, "nginx:1"),
              replicaset(2, "nginx:2", owner="someone-else"), replicaset(0, "nginx:0"),
              replicaset(5, "nginx:5", cause="fifth")]
    assert history(deployment(), listed) == [(1, "<none>"), (3, "third"), (5, "fifth")]


def test_a_revision_the_deployment_does_not_keep_is_an_error_naming_those_it_keeps() -> None:
    with pytest.raises(BerthError, match=r'deployment "web" has no revision 4 \(revisions: 1, 2\)'):
        undo(deployment(), [replicaset(1, "nginx:0"), replicaset(2, "nginx:1")], to_revision=4)


# --- undo --------------------------------------------------------------------------------------

def test_undo_goes_to_the_revision_before_the_newest_and_drops_the_hash_label() -> None:
    current = deployment(image="nginx:3", revision=3)
    listed = [replicaset(1, "nginx:1", cause="one"), replicaset(2, "nginx:2", cause="two"),
              replicaset(3, "nginx:3", replicas=3)]
    plan = undo(current, listed)
    assert plan.revision == 2
    assert plan.patch is not None
    assert plan.patch["metadata"] == {"resourceVersion": 40, "annotations": {CHANGE_CAUSE: "two"}}
    result = merge_patch(current["spec"]["template"], plan.patch["spec"]["template"])
    assert result == template("nginx:2")  # no pod-template-hash label
    assert undo(current, listed, to_revision=1).revision == 1


def test_undo_removes_what_the_newer_template_added_and_a_change_cause_the_old_one_lacked() -> None:
    current = deployment(image="nginx:2", revision=2, **{CHANGE_CAUSE: "restart"})
    current["spec"]["template"]["metadata"]["annotations"] = {"berth.io/restartedAt": "now"}
    plan = undo(current, [replicaset(1, "nginx:1"), replicaset(2, "nginx:2", replicas=3)])
    assert plan.patch is not None
    assert plan.patch["metadata"]["annotations"] == {CHANGE_CAUSE: None}
    assert merge_patch(current["spec"]["template"], plan.patch["spec"]["template"]) == template("nginx:1")


def test_undo_to_the_template_it_has_is_skipped() -> None:
    listed = [replicaset(1, "nginx:1"), replicaset(2, "nginx:2", replicas=3)]
    assert undo(deployment(image="nginx:2"), listed, to_revision=2).patch is None
    # the deployment's template is revision 1's again, but the controller has not renumbered yet
    assert undo(deployment(image="nginx:1"), listed).patch is None


def test_undo_without_a_previous_revision_or_of_a_paused_deployment_is_an_error() -> None:
    with pytest.raises(BerthError, match="no previous revision"):
        undo(deployment(), [replicaset(1, "nginx:1", replicas=3)])
    with pytest.raises(BerthError, match="no previous revision"):
        undo(deployment(), [replicaset(1, "nginx:1", owner="other"), replicaset(2, "nginx:1")])
    with pytest.raises(BerthError, match="cannot roll back a paused deployment"):
        undo(deployment(paused=True), [replicaset(1, "nginx:1"), replicaset(2, "nginx:2")])


@pytest.mark.parametrize(("current", "target"), [
    ({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}, {"a": 1, "b": {"c": 4}, "e": [2], "f": {"g": 1}}),
    ({"a": {"b": 1}}, {"a": 5}),
    ({"a": 5}, {"a": {"b": 1}}),
    ({}, {"x": []}),
    ({"x": {"y": {}}}, {}),
])
def test_merge_patch_to_gives_a_patch_that_makes_the_target(current: dict[str, Any],
                                                            target: dict[str, Any]) -> None:
    before = copy.deepcopy(current)
    assert merge_patch(current, merge_patch_to(current, target)) == target
    assert current == before
    assert merge_patch_to(target, target) == {}


# --- set image ---------------------------------------------------------------------------------

def test_set_image_changes_named_containers_and_init_containers_or_all_with_a_star() -> None:
    spec = {"initContainers": [{"name": "setup", "image": "busybox:1"}],
            "containers": [{"name": "main", "image": "nginx:1"}, {"name": "side", "image": "envoy:1"}]}
    before = copy.deepcopy(spec)
    assert with_images(spec, image_words(["main=nginx:2"])) == {
        "containers": [{"name": "main", "image": "nginx:2"}, {"name": "side", "image": "envoy:1"}]}
    assert with_images(spec, image_words(["setup=busybox:2"])) == {
        "initContainers": [{"name": "setup", "image": "busybox:2"}]}
    every = with_images(spec, image_words(["*=x:9", "side=envoy:2"]))
    assert [c["image"] for c in every["initContainers"] + every["containers"]] == ["x:9", "x:9", "envoy:2"]
    assert with_images(spec, {"main": "nginx:1"}) == {}
    assert spec == before


def test_set_image_names_the_containers_it_cannot_find_and_refuses_bad_words() -> None:
    spec = {"containers": [{"name": "main", "image": "nginx:1"}]}
    with pytest.raises(BerthError, match='unable to find container named "nope"'):
        with_images(spec, {"main": "nginx:2", "nope": "x"})
    for words in (["main"], ["=x"], ["main="], []):
        with pytest.raises(BerthError):
            image_words(words)


# --- tables and pages --------------------------------------------------------------------------

def test_replicaset_columns_and_wide_and_kind_prefixed_names() -> None:
    rs = replicaset(2, "nginx:2", replicas=3)
    rs["status"]["readyReplicas"] = 2
    lines = render_objects("ReplicaSet", [rs], None, now=NOW).splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert lines[1].split()[:4] == ["web-h2", "3", "3", "2"]
    wide = render_objects("ReplicaSet", [rs], "wide", now=NOW).splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["main", "nginx:2", "app=web,pod-template-hash=h2"]
    prefixed = render_objects("Deployment", [deployment()], None, now=NOW, kind_prefix=True).splitlines()
    assert prefixed[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert prefixed[1].split()[:4] == ["deployment/web", "3/3", "3", "3"]


def test_describe_deployment_shows_counts_strategy_template_conditions_and_replicasets() -> None:
    current = deployment(image="nginx:2", total=4, available=3)
    listed = [replicaset(1, "nginx:1", replicas=1), replicaset(2, "nginx:2", replicas=3),
              replicaset(3, "nginx:0"), replicaset(4, "nginx:2", owner="other", replicas=9)]
    event = {"kind": "Event", "type": "Normal", "reason": "ScalingReplicaSet",
             "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
             "source": {"component": "deployment-controller"}, "lastTimestamp": "2026-11-26T14:59:00Z",
             "message": "Scaled up replica set web-h2 to 3"}
    page = describe_deployment(current, listed, [event], NOW)
    assert "Replicas:               3 desired | 3 updated | 4 total | 3 available | 0 unavailable" in page
    assert "StrategyType:           RollingUpdate" in page
    assert "MinReadySeconds:        0" in page
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in page
    assert "Selector:               app=web" in page
    assert "    Image:" in page and "nginx:2" in page
    assert [line.split() for line in page.splitlines() if line.startswith("  Progressing")] == [
        ["Progressing", "True", "NewReplicaSetAvailable"]]
    assert "OldReplicaSets:         web-h1 (1/1 replicas created)" in page
    assert "NewReplicaSet:          web-h2 (3/3 replicas created)" in page
    assert "Scaled up replica set web-h2 to 3" in page.split("Events:")[1]


def test_describe_replicaset_shows_its_controller_counts_and_pods_by_phase() -> None:
    rs = replicaset(2, "nginx:2", replicas=3)
    pods = [{"kind": "Pod", "metadata": {"name": f"p{i}", "ownerReferences": [
        {"kind": "ReplicaSet", "uid": "rs-h2", "controller": True}]}, "status": {"phase": phase}}
        for i, phase in enumerate(["Running", "Running", "Pending", "Failed"])]
    pods.append({"kind": "Pod", "metadata": {"name": "stray"}, "status": {"phase": "Running"}})
    page = describe_replicaset(rs, pods, [], NOW)
    assert "Controlled By:          Deployment/web" in page
    assert "Replicas:               3 current / 3 desired" in page
    assert "Pods Status:            2 Running / 1 Waiting / 0 Succeeded / 1 Failed" in page
    assert "pod-template-hash=h2" in page


def test_a_pod_template_shows_each_container_with_ports_resources_env_and_probes() -> None:
    shown = template("nginx:2", note="x")
    shown["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
    shown["spec"]["containers"][0].update({
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": 250, "memory": 64 * 2**20}},
        "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "readinessProbe": {"httpGet": {"port": 80, "path": "/ok"}}})
    text = "\n".join(pod_template_lines(shown))
    for part in ("Labels:", "app=web", "Annotations:", "note=x", "Init Containers:", "   setup:",
                 "   main:", "Port:         80/TCP", "cpu:  250m", "memory:  64Mi", "A:  1",
                 "<set to the key 'k' in secret 's'>", "Readiness:", "http-get http://:80/ok", "sleep"):
        assert part in text, part


# --- the commands against a stand-in master ----------------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from _serve()


def scale_of(replicas: int, rv: int = 40) -> dict[str, Any]:
    return {"kind": "Scale", "metadata": {"name": "web", "resourceVersion": rv},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}}


def sent(fake: FakeServer, method: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == method]


def test_scale_writes_the_scale_subresource_and_checks_current_replicas_first(fake: FakeServer) -> None:
    fake.json("GET", f"{NS}/deployments/web/scale", scale_of(3))
    fake.json("PATCH", f"{NS}/deployments/web/scale", scale_of(5))
    result = run(fake.url, "scale", "deploy/web", "--replicas", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "deployment/web scaled\n"
    assert json.loads(sent(fake, "PATCH")[-1]["body"]) == {"spec": {"replicas": 5}}

    result = run(fake.url, "scale", "deployment", "web", "--replicas", "5", "--current-replicas", "3")
    assert result.exit_code == 0, result.output
    assert json.loads(sent(fake, "PATCH")[-1]["body"]) == {"spec": {"replicas": 5},
                                                          "metadata": {"resourceVersion": 40}}
    patches = len(sent(fake, "PATCH"))
    result = run(fake.url, "scale", "deploy", "web", "--replicas", "1", "--current-replicas", "2")
    assert result.exit_code == 1
    assert "Expected replicas to be 2, was 3" in result.stderr
    assert len(sent(fake, "PATCH")) == patches


def test_scale_refuses_a_kind_without_replicas(fake: FakeServer) -> None:
    result = run(fake.url, "scale", "pod/web", "--replicas", "2")
    assert result.exit_code == 1
    assert "scale works on deployments, replicasets, not pods" in result.stderr
    assert fake.requests == []


def test_undo_reports_a_conflict_and_changes_nothing(fake: FakeServer) -> None:
    fake.json("GET", f"{NS}/deployments/web", deployment(image="nginx:2"))
    fake.json("GET", f"{NS}/replicasets", {"items": [replicaset(1, "nginx:1"), replicaset(2, "nginx:2")]})
    fake.json("PATCH", f"{NS}/deployments/web", {"error": "Deployment web was modified", "reason": "Conflict",
                                                 "field": "metadata.resourceVersion"}, status=409)
    result = run(fake.url, "rollout", "undo", "deploy/web")
    assert result.exit_code == 1
    assert 'deployment "web" changed while it was being rolled back' in result.stderr
    [patch] = sent(fake, "PATCH")
    assert json.loads(patch["body"])["metadata"]["resourceVersion"] == 40
    assert patch["headers"]["Content-Type"] == "application/merge-patch+json"


def test_rollout_status_exits_non_zero_past_the_deadline_and_zero_when_done(fake: FakeServer) -> None:
    fake.json("GET", f"{NS}/deployments/web", deployment(updated=1, reason="ProgressDeadlineExceeded"))
    result = run(fake.url, "rollout", "status", "deploy/web")
    assert result.exit_code == 1
    assert 'deployment "web" exceeded its progress deadline' in result.stderr
    fake.json("GET", f"{NS}/deployments/web", deployment())
    result = run(fake.url, "rollout", "status", "deployment", "web", "--watch=false")
    assert (result.exit_code, result.stdout) == (0, 'deployment "web" successfully rolled out\n')
    fake.json("GET", f"{NS}/deployments/web", deployment(updated=1))
    result = run(fake.url, "rollout", "status", "deploy/web", "-w=false")
    assert result.exit_code == 0 and "1 out of 3 new replicas have been updated" in result.stdout


def test_delete_cascade_is_sent_as_the_propagation_policy(fake: FakeServer) -> None:
    fake.json("DELETE", f"{NS}/deployments/web", deployment())
    assert run(fake.url, "delete", "deploy", "web", "--cascade=orphan").exit_code == 0
    assert run(fake.url, "delete", "deploy", "web", "--cascade", "Background").exit_code == 0
    assert run(fake.url, "delete", "deploy", "web").exit_code == 0
    policies = [r["query"].get("propagationPolicy") for r in sent(fake, "DELETE")]
    assert policies == [["Orphan"], ["Background"], None]
    fake.json("DELETE", f"{NS}/deployments/web", {
        "error": "propagationPolicy Foreground is not supported yet", "reason": "FieldValueNotSupported",
        "field": "propagationPolicy"}, status=400)
    result = run(fake.url, "delete", "deploy", "web", "--cascade=foreground")
    assert result.exit_code == 1
    assert "propagationPolicy Foreground is not supported yet" in result.stderr
    assert sent(fake, "DELETE")[-1]["query"]["propagationPolicy"] == ["Foreground"]


def conflict_once(fake: FakeServer, path: str, answer: dict[str, Any]) -> None:
    """PATCH `path`: a 409 the first time (a status written in between), then `answer`."""
    calls = []

    def route(handler: Any, query: Any, body: bytes) -> None:
        calls.append(body)
        if len(calls) == 1:
            handler.send_json(409, {"error": "modified", "reason": "Conflict",
                                    "field": "metadata.resourceVersion"})
        else:
            handler.send_json(200, answer)

    fake.routes[("PATCH", path)] = route


def test_a_pinned_change_reads_and_decides_again_after_a_conflict(fake: FakeServer) -> None:
    fake.json("GET", f"{NS}/deployments/web/scale", scale_of(3))
    conflict_once(fake, f"{NS}/deployments/web/scale", scale_of(4))
    result = run(fake.url, "scale", "deploy/web", "--replicas", "4", "--current-replicas", "3")
    assert result.exit_code == 0, result.output
    assert len([r for r in fake.requests if r["path"].endswith("/scale") and r["method"] == "GET"]) == 2

    fake.json("GET", f"{NS}/deployments/web", deployment())
    conflict_once(fake, f"{NS}/deployments/web", deployment(paused=True))
    result = run(fake.url, "rollout", "pause", "deploy/web")
    assert (result.exit_code, result.stdout) == (0, "deployment/web paused\n")
    patches = [json.loads(r["body"]) for r in sent(fake, "PATCH") if r["path"] == f"{NS}/deployments/web"]
    assert patches == [{"spec": {"paused": True}, "metadata": {"resourceVersion": 40}}] * 2


def test_a_resource_version_the_user_gave_is_not_retried(fake: FakeServer) -> None:
    conflict_once(fake, f"{NS}/deployments/web/scale", scale_of(4))
    result = run(fake.url, "scale", "deploy/web", "--replicas", "4", "--resource-version", "7")
    assert result.exit_code == 1 and "Conflict" in result.stderr
    assert json.loads(sent(fake, "PATCH")[0]["body"])["metadata"] == {"resourceVersion": 7}
