"""Containers' security contexts as the engines' options, and Pod Security admission by namespace
level: pure tables, and the API's 403 naming the field on real masters."""

from __future__ import annotations

from typing import Any

import pytest

from master.api.pod_security import baseline_problems, level_of, restricted_problems
from master.runtime.driver import DRIVERS
from master.runtime.env import EnvError
from master.runtime.security import security_args
from tests.harness import MasterCluster


def pod(container_context: dict[str, Any] | None = None, pod_context: dict[str, Any] | None = None,
        **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox"}
    if container_context is not None:
        container["securityContext"] = container_context
    made: dict[str, Any] = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
                            "spec": {"containers": [container], **spec}}
    if pod_context is not None:
        made["spec"]["securityContext"] = pod_context
    return made


@pytest.mark.parametrize(("container", "pod_level", "args"), [
    (None, None, ["--cap-drop=NET_RAW"]),  # Berth's default: the engine's less what baseline bans
    ({"runAsUser": 1000, "runAsGroup": 100, "readOnlyRootFilesystem": True,
      "allowPrivilegeEscalation": False}, None,
     ["--user=1000:100", "--read-only", "--security-opt=no-new-privileges", "--cap-drop=NET_RAW"]),
    ({"runAsUser": 2000}, {"runAsUser": 1000, "runAsGroup": 10},  # the container's field wins
     ["--user=2000:10", "--cap-drop=NET_RAW"]),
    ({"capabilities": {"drop": ["NET_RAW"], "add": ["SYS_TIME"]}}, None,
     ["--cap-drop=NET_RAW", "--cap-add=SYS_TIME"]),  # its own drop list: exactly that
    ({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, None,
     ["--cap-drop=ALL", "--cap-add=NET_BIND_SERVICE"]),
    ({"capabilities": {"add": ["NET_ADMIN"]}}, None, ["--cap-drop=NET_RAW", "--cap-add=NET_ADMIN"]),
    ({"privileged": True, "capabilities": {"drop": ["ALL"]}}, None, ["--privileged"]),
    ({"runAsNonRoot": True}, {"runAsUser": 1000}, ["--user=1000", "--cap-drop=NET_RAW"]),
])
def test_a_security_context_becomes_the_engines_options(container: dict | None, pod_level: dict | None,
                                                         args: list[str]) -> None:
    made = pod(container, pod_level)
    assert security_args(made, made["spec"]["containers"][0]) == args
    argv = DRIVERS["podman"].run_container(made, made["spec"]["containers"][0])
    assert argv.index(args[0]) < argv.index("--")  # options, before the image


@pytest.mark.parametrize(("container", "pod_level"), [
    ({"runAsNonRoot": True}, None),
    ({"runAsNonRoot": True, "runAsUser": 0}, None),
    (None, {"runAsNonRoot": True}),
])
def test_run_as_non_root_without_a_user_does_not_start(container: dict | None,
                                                       pod_level: dict | None) -> None:
    made = pod(container, pod_level)
    with pytest.raises(EnvError, match="runAsNonRoot and image will run as root"):
        security_args(made, made["spec"]["containers"][0])


RESTRICTED_OK = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                 "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}


@pytest.mark.parametrize(("made", "baseline", "restricted"), [
    (pod(), None, "containers[0].securityContext.allowPrivilegeEscalation"),
    (pod(RESTRICTED_OK), None, None),
    (pod({**RESTRICTED_OK, "capabilities": None}), None,  # restricted names ALL itself
     "containers[0].securityContext.capabilities.drop"),
    (pod({"privileged": True}), "containers[0].securityContext.privileged",
     "containers[0].securityContext.privileged"),
    (pod({"capabilities": {"add": ["SYS_ADMIN"]}}), "containers[0].securityContext.capabilities.add",
     "containers[0].securityContext.capabilities.add"),
    (pod({**RESTRICTED_OK, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}), None,
     "containers[0].securityContext.capabilities.add"),
    (pod({**RESTRICTED_OK, "capabilities": {"drop": ["NET_RAW"]}}), None,
     "containers[0].securityContext.capabilities.drop"),
    (pod(RESTRICTED_OK, volumes=[{"name": "h", "hostPath": {"path": "/srv"}}]), "volumes[0].hostPath",
     "volumes[0].hostPath"),
    (pod({**RESTRICTED_OK, "runAsNonRoot": None}), None, "containers[0].securityContext.runAsNonRoot"),
    (pod({**RESTRICTED_OK, "runAsNonRoot": None}, {"runAsNonRoot": True}), None, None),  # the pod's
    (pod({**RESTRICTED_OK, "runAsUser": 0}), None, "containers[0].securityContext.runAsUser"),
])
def test_the_pod_security_standards_table(made: dict, baseline: str | None, restricted: str | None) -> None:
    spec = made["spec"]
    assert next((field for field, _ in baseline_problems(spec)), None) == baseline
    assert next((field for field, _ in restricted_problems(spec)), None) == restricted


def test_a_ports_host_port_breaks_baseline() -> None:
    made = pod()
    made["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert [f for f, _ in baseline_problems(made["spec"])] == ["containers[0].ports[0].hostPort"]


@pytest.mark.parametrize(("labels", "level"), [
    (None, "privileged"), ({}, "privileged"), ({"berth.io/enforce": "baseline"}, "baseline"),
    ({"berth.io/enforce": "restricted"}, "restricted"), ({"berth.io/enforce": "strict-ish"}, "restricted"),
])
def test_a_namespaces_level_is_its_label(labels: dict | None, level: str) -> None:
    namespace = None if labels is None else {"metadata": {"name": "team", "labels": labels}}
    assert level_of(namespace) == level


def test_a_restricted_namespace_refuses_a_privileged_pod_naming_the_field(cluster: MasterCluster) -> None:
    session = cluster.session()
    namespace = {"kind": "Namespace",
                 "metadata": {"name": "locked", "labels": {"berth.io/enforce": "restricted"}}}
    assert session.post(cluster.url(0, "/api/v1/namespaces"), json=namespace, timeout=10).status_code == 201
    pods = "/api/v1/namespaces/locked/pods"
    privileged = pod({"privileged": True})
    del privileged["metadata"]["namespace"], privileged["metadata"]["uid"]
    answer = session.post(cluster.url(0, pods), json=privileged, timeout=10)
    assert answer.status_code == 403, answer.text
    assert answer.json()["field"] == "spec.containers[0].securityContext.privileged"
    assert "restricted" in answer.json()["error"]
    template = {"kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}}, "spec": privileged["spec"]}}}
    answer = session.post(cluster.url(0, "/api/v1/namespaces/locked/deployments"), json=template, timeout=10)
    assert answer.status_code == 403
    assert answer.json()["field"] == "spec.template.spec.containers[0].securityContext.privileged"
    allowed = pod(RESTRICTED_OK)
    del allowed["metadata"]["namespace"], allowed["metadata"]["uid"]
    assert session.post(cluster.url(0, pods), json=allowed, timeout=10).status_code == 201
    elsewhere = session.post(cluster.url(0, "/api/v1/namespaces/default/pods"), json=privileged, timeout=10)
    assert elsewhere.status_code == 201  # default has no level: privileged, Kubernetes' default
