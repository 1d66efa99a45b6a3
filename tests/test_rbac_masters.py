"""RBAC through the real API of three masters: a group's RoleBinding confines its users to one
namespace, `can-i` answers as the requests are decided, a deleted binding takes effect on a follower's
next request, escalation is refused, built-ins are the code's, and an agent stays confined."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import STORE_ONLY, TEST_ROOT
from tests.harness import CLI, PROJECT_DIR, TOKENS, MasterCluster, cli_env, pod, wait_until

ALICE, LEAD = ("alice", ("team-a",), "alice-token-3f9c1"), ("lead", ("leads",), "lead-token-77d2e")
RBAC = "rbac.authorization.k8s.io/v1"
POD_WRITER = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "pod-writer", "namespace": "a"},
              "rules": [{"apiGroups": [""], "resources": ["pods"],
                         "verbs": ["get", "list", "create", "delete"]}]}
DEVS = {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "devs", "namespace": "a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-writer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}]}
ROLES_A = "/api/v1/namespaces/a/roles"
BINDINGS_A = "/api/v1/namespaces/a/rolebindings"


@pytest.fixture(scope="module")
def rbac_cluster() -> Iterator[MasterCluster]:
    cluster = MasterCluster(TEST_ROOT / "rbac-masters", size=3, extra_settings=STORE_ONLY,
                            extra_tokens=[ALICE, LEAD])
    cluster.start_all()
    try:
        cluster.wait_ready()
        admin = cluster.session()
        for path, body in ((ROLES_A, POD_WRITER), (BINDINGS_A, DEVS)):
            answer = admin.post(cluster.url(0, path), json=body)
            assert answer.status_code == 201, answer.text
        for index in range(3):  # every master applied them (a follower learns a commit a moment later)
            wait_until(lambda i=index: can_i(cluster, i, ALICE, verb="list", resource="pods",
                                             namespace="a")["allowed"], 10, what=f"master {index}'s binding")
        yield cluster
    finally:
        cluster.close()


def as_user(cluster: MasterCluster, user: tuple[str, Any, str]) -> requests.Session:
    return cluster.token_session(user[2])


def can_i(cluster: MasterCluster, index: int, user: tuple[str, Any, str], **attributes: Any) -> dict:
    review = {"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attributes}}
    answer = as_user(cluster, user).post(cluster.url(index, "/api/v1/selfsubjectaccessreviews"),
                                         json=review)
    assert answer.status_code == 201, answer.text
    return answer.json()["status"]


def test_a_group_bound_in_namespace_a_creates_pods_there_not_in_b(rbac_cluster: MasterCluster) -> None:
    alice = as_user(rbac_cluster, ALICE)
    made = alice.post(rbac_cluster.url(1, "/api/v1/namespaces/a/pods"), json=pod("p1", "a"))
    assert made.status_code == 201, made.text
    refused = alice.post(rbac_cluster.url(1, "/api/v1/namespaces/b/pods"), json=pod("p1", "b"))
    assert refused.status_code == 403
    message = refused.json()["error"]
    assert all(word in message for word in ("alice", "create", "Pod", "namespace b", "pods")), message
    assert alice.get(rbac_cluster.url(2, "/api/v1/namespaces/a/pods")).status_code == 200
    assert alice.get(rbac_cluster.url(2, "/api/v1/pods")).status_code == 403  # every namespace: not granted
    assert alice.get(rbac_cluster.url(2, "/api/v1/namespaces/a/configmaps")).status_code == 403
    assert alice.delete(rbac_cluster.url(0, "/api/v1/namespaces/a/pods/p1")).status_code == 200


def test_can_i_answers_as_the_requests_are_decided(rbac_cluster: MasterCluster) -> None:
    assert can_i(rbac_cluster, 0, ALICE, verb="create", resource="pods", namespace="a")["allowed"] is True
    denied = can_i(rbac_cluster, 1, ALICE, verb="create", resource="po", namespace="b")
    assert denied["allowed"] is False and denied["denied"] is True and "pods" in denied["reason"]
    assert can_i(rbac_cluster, 2, ALICE, verb="get", resource="pods", subresource="log",
                 namespace="a")["allowed"] is False
    env = {**cli_env(rbac_cluster), "BERTH_TOKEN": ALICE[2]}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60,
                              cwd=PROJECT_DIR, stdin=subprocess.DEVNULL)

    yes = cli("auth", "can-i", "create", "pods", "-n", "a")
    assert (yes.returncode, yes.stdout) == (0, "yes\n"), yes.stderr
    no = cli("auth", "can-i", "create", "pods", "-n", "b")
    assert (no.returncode, no.stdout) == (1, "no\n"), no.stderr
    assert cli("auth", "can-i", "*", "*", "-n", "a").returncode == 1
    listed = cli("auth", "can-i", "--list", "-n", "a")
    assert listed.returncode == 0 and "pods" in listed.stdout and "[get list create delete]" in listed.stdout
    env["BERTH_TOKEN"] = TOKENS["admin"][1]
    assert cli("auth", "can-i", "*", "*").stdout == "yes\n"
    env["BERTH_TOKEN"] = ALICE[2]
    who = cli("auth", "whoami")
    assert who.returncode == 0 and "alice" in who.stdout and "team-a" in who.stdout, who.stderr


def test_a_deleted_binding_takes_effect_at_once_on_a_follower(rbac_cluster: MasterCluster) -> None:
    admin, alice = rbac_cluster.session(), as_user(rbac_cluster, ALICE)
    binding = {**DEVS, "metadata": {"name": "devs-2", "namespace": "a"},
               "subjects": [{"kind": "User", "name": "alice"}]}
    leader = rbac_cluster.leader_index()
    follower = (leader + 1) % 3
    assert admin.post(rbac_cluster.url(leader, BINDINGS_A), json=binding).status_code == 201
    assert admin.delete(rbac_cluster.url(leader, f"{BINDINGS_A}/devs")).status_code == 200
    wait_until(lambda: can_i(rbac_cluster, follower, ALICE, verb="list", resource="pods",
                             namespace="a")["reason"].endswith("RoleBinding a/devs-2 of Role a/pod-writer"),
               10, what="the follower applied both")
    assert alice.get(rbac_cluster.url(follower, "/api/v1/namespaces/a/pods")).status_code == 200  # cached
    deleted = admin.delete(rbac_cluster.url(leader, f"{BINDINGS_A}/devs-2"))
    assert deleted.status_code == 200
    revision = deleted.json()["metadata"]["resourceVersion"]
    wait_until(lambda: rbac_cluster.status(follower)["revision"] >= revision, 10, interval=0.005,
               what="the follower applied the delete")
    assert alice.get(rbac_cluster.url(follower, "/api/v1/namespaces/a/pods")).status_code == 403
    assert admin.post(rbac_cluster.url(leader, BINDINGS_A), json=DEVS).status_code == 201  # as it was


def test_escalation_is_refused(rbac_cluster: MasterCluster) -> None:
    admin, operator = rbac_cluster.session(), rbac_cluster.session("operator")
    lead = as_user(rbac_cluster, LEAD)
    # the lead manages roles and bindings in namespace a, and may read pods there
    manager = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "manager", "namespace": "a"},
               "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["get", "list", "create", "update", "delete"]},  # not escalate or bind, which * would be
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    assert admin.post(rbac_cluster.url(0, ROLES_A), json=manager).status_code == 201
    leads = {**DEVS, "metadata": {"name": "leads", "namespace": "a"},
             "roleRef": {**DEVS["roleRef"], "name": "manager"},
             "subjects": [{"kind": "Group", "name": "leads"}]}
    assert admin.post(rbac_cluster.url(0, BINDINGS_A), json=leads).status_code == 201
    wait_until(lambda: can_i(rbac_cluster, 1, LEAD, verb="create", resource="roles",
                             namespace="a")["allowed"], 10, what="master 1 applied the lead's binding")

    def role(name: str, resources: list[str], verbs: list[str]) -> dict:
        return {"kind": "Role", "metadata": {"name": name, "namespace": "a"},
                "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}]}

    wider = lead.post(rbac_cluster.url(1, ROLES_A),
                      json=role("secrets", ["secrets", "secrets/values"], ["get"]))
    assert wider.status_code == 403 and wider.json()["field"] == "rules[0]", wider.text
    reader = role("pod-reader", ["pods"], ["get"])
    assert lead.post(rbac_cluster.url(1, ROLES_A), json=reader).status_code == 201
    to_admin = {**leads, "metadata": {"name": "me-admin", "namespace": "a"},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "lead"}]}
    refused = lead.post(rbac_cluster.url(1, BINDINGS_A), json=to_admin)
    assert refused.status_code == 403 and "cluster-admin" in refused.json()["error"], refused.text
    to_reader = {**to_admin, "metadata": {"name": "readers", "namespace": "a"},
                 "roleRef": {"kind": "Role", "name": "pod-reader"}}
    assert lead.post(rbac_cluster.url(1, BINDINGS_A), json=to_reader).status_code == 201
    changed = lead.put(rbac_cluster.url(1, f"{BINDINGS_A}/readers"),
                       json={**to_reader, "roleRef": {"kind": "Role", "name": "manager"}})
    assert changed.status_code == 422 and changed.json()["field"] == "roleRef", changed.text
    robot = {**to_reader, "metadata": {"name": "robot", "namespace": "a"},
             "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "a"}]}
    service_account = lead.post(rbac_cluster.url(1, BINDINGS_A), json=robot)
    assert service_account.status_code == 422 and "ServiceAccount" in service_account.json()["error"]
    # an operator writes no RBAC object: it may not bind itself to cluster-admin, nor write a role
    self_admin = {"kind": "ClusterRoleBinding", "metadata": {"name": "op-admin"},
                  "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                  "subjects": [{"kind": "User", "name": "operator"}]}
    bindings = rbac_cluster.url(0, "/api/v1/clusterrolebindings")
    assert operator.post(bindings, json=self_admin).status_code == 403
    assert operator.post(rbac_cluster.url(0, "/api/v1/apply"), json=self_admin).status_code == 403
    assert operator.post(rbac_cluster.url(0, ROLES_A), json=role("x", ["pods"], ["get"])).status_code == 403


def test_built_ins_are_listed_and_never_written(rbac_cluster: MasterCluster) -> None:
    admin = rbac_cluster.session()
    listed = admin.get(rbac_cluster.url(2, "/api/v1/clusterroles")).json()["items"]
    assert {"cluster-admin", "berth-operator", "view"} <= {o["metadata"]["name"] for o in listed}
    assert admin.get(rbac_cluster.url(2, "/api/v1/clusterrolebindings/view")).json()["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "berth:viewers"}]
    view = rbac_cluster.url(0, "/api/v1/clusterroles/view")
    merge = {"Content-Type": "application/merge-patch+json"}
    replaced = {"kind": "ClusterRole", "metadata": {"name": "view"}}
    for answer in (admin.delete(view), admin.put(view, json=replaced),
                   admin.patch(view, json={"rules": []}, headers=merge),
                   admin.post(rbac_cluster.url(0, "/api/v1/clusterroles"),
                              json={"kind": "ClusterRole", "metadata": {"name": "cluster-admin"}})):
        assert answer.status_code == 403 and "built in" in answer.json()["error"], answer.text


def test_an_agent_stays_confined_whatever_is_bound_to_its_group(rbac_cluster: MasterCluster) -> None:
    admin, agent = rbac_cluster.session(), rbac_cluster.session("agent")
    nodes_admin = {"kind": "ClusterRoleBinding", "metadata": {"name": "nodes-admin"},
                   "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"kind": "Group", "name": "system:nodes"}]}
    bindings = rbac_cluster.url(0, "/api/v1/clusterrolebindings")
    assert admin.post(bindings, json=nodes_admin).status_code == 201
    try:
        assert agent.get(rbac_cluster.url(1, "/api/v1/namespaces/default/secrets")).status_code == 403
        assert agent.get(rbac_cluster.url(1, "/api/v1/namespaces/default/pods/p")).status_code == 403
        own = agent.get(rbac_cluster.url(1, "/api/v1/pods"), params={"fieldSelector": "spec.nodeName=h1"})
        assert own.status_code == 200
        other = agent.patch(rbac_cluster.url(1, "/api/v1/nodes/h9/status"), json={"status": {}},
                            headers={"Content-Type": "application/merge-patch+json"})
        assert other.status_code == 403
    finally:
        admin.delete(rbac_cluster.url(0, "/api/v1/clusterrolebindings/nodes-admin"))


def test_secret_values_are_shown_to_a_role_naming_them_in_its_namespace(rbac_cluster: MasterCluster) -> None:
    admin, alice = rbac_cluster.session(), as_user(rbac_cluster, ALICE)
    secret = {"kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "rbac-s3cret"}}
    for ns in ("a", "b"):
        made = admin.post(rbac_cluster.url(0, f"/api/v1/namespaces/{ns}/secrets"), json=secret)
        assert made.status_code == 201
    keys_only = {"kind": "Role", "metadata": {"name": "secret-keys", "namespace": "a"},
                 "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}
    values = {**keys_only, "metadata": {"name": "secret-values", "namespace": "a"},
              "rules": [{"apiGroups": [""], "resources": ["secrets", "secrets/values"], "verbs": ["get"]}]}
    for role in (keys_only, values):
        assert admin.post(rbac_cluster.url(0, ROLES_A), json=role).status_code == 201
    bind = {**DEVS, "metadata": {"name": "alice-keys", "namespace": "a"},
            "roleRef": {"kind": "Role", "name": "secret-keys"},
            "subjects": [{"kind": "User", "name": "alice"}]}
    assert admin.post(rbac_cluster.url(0, BINDINGS_A), json=bind).status_code == 201
    url = rbac_cluster.url(0, "/api/v1/namespaces/a/secrets/db")
    wait_until(lambda: alice.get(url).status_code == 200, 10, what="alice reads secrets in a")
    assert alice.get(url).json()["data"] == {"password": None}  # keys, as the view role shows them
    assert admin.post(rbac_cluster.url(0, BINDINGS_A), json={
        **bind, "metadata": {"name": "alice-values", "namespace": "a"},
        "roleRef": {"kind": "Role", "name": "secret-values"}}).status_code == 201
    wait_until(lambda: alice.get(url).json()["data"]["password"] is not None, 10, what="values shown")
    assert alice.get(url).json()["data"] == {"password": "cmJhYy1zM2NyZXQ="}
    listed = alice.get(rbac_cluster.url(0, "/api/v1/namespaces/a/secrets")).json()["items"]
    assert [item["data"] for item in listed] == [{"password": "cmJhYy1zM2NyZXQ="}]
    assert alice.get(rbac_cluster.url(0, "/api/v1/namespaces/b/secrets/db")).status_code == 403
