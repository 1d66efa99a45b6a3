"""`berth auth can-i` and `berth auth whoami` against a stand-in master: what they send, what they
print, and kubectl's exit status (0 yes, 1 no)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from berth.cli.columns import columns_for
from tests.test_cli_unit import FakeServer, _serve, run

REVIEWS = "/api/v1/selfsubjectaccessreviews"


@pytest.fixture
def master() -> Iterator[FakeServer]:
    yield from _serve()


def _answer(master: FakeServer, allowed: bool, reason: str = "") -> None:
    master.json("POST", REVIEWS, {"status": {"allowed": allowed, "reason": reason}}, 201)


def _asked(master: FakeServer) -> dict:
    return json.loads(master.requests[-1]["body"])["spec"]["resourceAttributes"]


def test_can_i_says_yes_and_exits_0(master: FakeServer) -> None:
    _answer(master, True, "allowed by RoleBinding a/devs of Role a/pod-writer")
    result = run(master.url, "auth", "can-i", "create", "pods", "-n", "a")
    assert (result.exit_code, result.stdout) == (0, "yes\n")
    assert _asked(master) == {"verb": "create", "resource": "pods", "namespace": "a"}


def test_can_i_says_no_with_the_reason_on_stderr_and_exits_1(master: FakeServer) -> None:
    _answer(master, False, "no role bound to it grants create pods in namespace b")
    result = run(master.url, "auth", "can-i", "create", "pods", "-n", "b")
    assert (result.exit_code, result.stdout) == (1, "no\n")
    assert "no role bound to it" in result.stderr
    quiet = run(master.url, "auth", "can-i", "create", "pods", "-q")
    assert (quiet.exit_code, quiet.stdout) == (1, "")
    assert _asked(master)["namespace"] == "default"  # the config's namespace, as kubectl's context


def test_can_i_takes_a_name_a_subresource_and_every_namespace(master: FakeServer) -> None:
    _answer(master, True)
    assert run(master.url, "auth", "can-i", "get", "pods/log", "web", "-n", "a").exit_code == 0
    assert _asked(master) == {"verb": "get", "resource": "pods", "subresource": "log", "namespace": "a",
                              "name": "web"}
    every = run(master.url, "auth", "can-i", "update", "deploy", "--subresource", "scale", "-A")
    assert every.exit_code == 0
    assert _asked(master) == {"verb": "update", "resource": "deploy", "subresource": "scale",
                              "namespace": ""}


def test_can_i_reports_a_refused_question_as_an_error(master: FakeServer) -> None:
    field = "spec.resourceAttributes.verb"
    master.json("POST", REVIEWS, {"error": f"{field}: Input should be 'get', ...",
                                  "reason": "FieldValueInvalid", "field": field}, 400)
    result = run(master.url, "auth", "can-i", "fly", "pods")
    assert result.exit_code == 1 and "verb" in result.stderr and result.stdout == ""


def test_whoami_prints_the_user_and_its_groups(master: FakeServer) -> None:
    master.json("POST", "/api/v1/selfsubjectreviews", {"status": {"userInfo": {
        "username": "alice", "groups": ["team-a", "system:authenticated"]}}}, 201)
    result = run(master.url, "auth", "whoami")
    assert result.exit_code == 0, result.output
    rows = [line.split(None, 1) for line in result.stdout.splitlines()]
    assert rows == [["ATTRIBUTE", "VALUE"], ["Username", "alice"], ["Groups", "team-a, system:authenticated"]]


def test_bindings_are_listed_with_their_role_as_kubectl_does() -> None:
    bound = {"metadata": {"name": "devs", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "roleRef": {"kind": "Role", "name": "pod-writer"},
             "subjects": [{"kind": "Group", "name": "team-a"}, {"kind": "User", "name": "alice"},
                          {"kind": "Group", "name": "team-b"}]}
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        columns = columns_for(kind, wide=True)
        assert [c.header for c in columns] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS"]
        shown = [c.value(bound, now) for c in columns]
        assert shown == ["devs", "Role/pod-writer", "5m", "alice", "team-a,team-b"]


def test_can_i_list_prints_the_rules_that_hold_in_the_namespace(master: FakeServer) -> None:
    master.json("POST", "/api/v1/selfsubjectrulesreviews", {"status": {"incomplete": False, "resourceRules": [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get"],
         "resourceNames": ["a", "b"]}]}}, 201)
    result = run(master.url, "auth", "can-i", "--list", "-n", "a")
    assert result.exit_code == 0, result.output
    assert json.loads(master.requests[-1]["body"])["spec"] == {"namespace": "a"}
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [["RESOURCES", "RESOURCE", "NAMES", "VERBS"], ["pods", "[]", "[get", "list]"],
                    ["pods/log", "[]", "[get", "list]"],
                    ["roles.rbac.authorization.k8s.io", "[a", "b]", "[get]"]]
    assert run(master.url, "auth", "can-i").exit_code == 2  # a usage error, as click's


def test_can_i_asks_for_everything_with_wildcards(master: FakeServer) -> None:
    _answer(master, False)
    assert run(master.url, "auth", "can-i", "*", "*", "-q").exit_code == 1
    assert _asked(master) == {"verb": "*", "resource": "*", "namespace": "default"}
