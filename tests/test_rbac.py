"""RBAC decided without a master: rules against requests, roles and cluster roles bound to users and
groups, subresources, wildcards, resourceNames, namespaces; the built-in roles equal to the four fixed
roles they replaced (bench/fixed_roles.py); escalation's cover; the kinds' validation."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any

import pytest

from bench.fixed_roles import fixed_role_allows
from berth.kinds import KINDS
from master.api.auth import Principal, TokenBook, decide, digest, request_of, sees_secret_values
from master.api.rbac_admission import admit_rbac
from master.errors import ApiError
from master.objects.validate import validate_object
from master.rbac.book import RuleBook
from master.rbac.builtin import RBAC_KINDS, builtin_objects
from master.rbac.cache import RbacCache
from master.rbac.rules import Request, Rule, TooWide, allows, covers

CORE = ("",)


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def binding(name: str, namespace: str | None, ref: tuple[str, str], *subjects: tuple[str, str]) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"kind": ref[0], "name": ref[1]},
            "subjects": [{"kind": kind, "name": who} for kind, who in subjects]}


def rule(resources: list[str], verbs: list[str], groups: list[str] | None = None,
         names: list[str] | None = None) -> dict[str, Any]:
    out = {"apiGroups": groups if groups is not None else [""], "resources": resources, "verbs": verbs}
    return {**out, "resourceNames": names} if names else out


# --- one rule against one request ---------------------------------------------------------

@pytest.mark.parametrize(("rule_", "request_", "allowed"), [
    (Rule(CORE, ("pods",), ("get",)), Request("get", "pods"), True),
    (Rule(CORE, ("pods",), ("get",)), Request("list", "pods"), False),
    (Rule(("berth",), ("pods",), ("get",)), Request("get", "pods"), True),  # berth names "" too
    (Rule(("rbac.authorization.k8s.io",), ("pods",), ("get",)), Request("get", "pods"), False),
    (Rule(("*",), ("*",), ("*",)), Request("delete", "roles", "rbac.authorization.k8s.io"), True),
    (Rule(CORE, ("*",), ("get",)), Request("get", "roles", "rbac.authorization.k8s.io"), False),
    (Rule(CORE, ("pods",), ("*",)), Request("create", "pods", subresource="exec"), False),
    (Rule(CORE, ("pods/exec",), ("create",)), Request("create", "pods", subresource="exec"), True),
    (Rule(CORE, ("pods/exec",), ("create",)), Request("create", "pods"), False),
    (Rule(CORE, ("*",), ("get",)), Request("get", "pods", subresource="log"), True),  # * covers subresources
    (Rule(CORE, ("*/scale",), ("update",)), Request("update", "deployments", subresource="scale"), True),
    (Rule(CORE, ("*/scale",), ("update",)), Request("update", "deployments"), False),
    (Rule(CORE, ("*/scale",), ("update",)), Request("update", "deployments", subresource="status"), False),
    (Rule(CORE, ("configmaps",), ("get",), ("a",)), Request("get", "configmaps", name="a"), True),
    (Rule(CORE, ("configmaps",), ("get",), ("a",)), Request("get", "configmaps", name="b"), False),
    (Rule(CORE, ("configmaps",), ("create",), ("a",)), Request("create", "configmaps"), False),  # no name yet
    (Rule(CORE, ("configmaps",), ("list",), ("a",)), Request("list", "configmaps"), False),
])
def test_a_rule_allows_a_request(rule_: Rule, request_: Request, allowed: bool) -> None:
    assert allows(rule_, request_) is allowed


# --- roles and bindings: users, groups, namespaces ----------------------------------------

BOOK = RuleBook(
    roles=[role("pod-writer", "a", rule(["pods"], ["get", "list", "create", "delete"]),
                rule(["pods/log"], ["get"])),
           role("cm-one", "a", rule(["configmaps"], ["get", "update"], names=["settings"]))],
    cluster_roles=[cluster_role("reader", rule(["pods", "nodes"], ["get", "list", "watch"])),
                   cluster_role("scaler", rule(["*/scale"], ["get", "update", "patch"]))],
    role_bindings=[binding("devs", "a", ("Role", "pod-writer"), ("Group", "team-a")),
                   binding("carol-cm", "a", ("Role", "cm-one"), ("User", "carol")),
                   binding("readers-in-b", "b", ("ClusterRole", "reader"), ("User", "dave")),
                   binding("dangling", "a", ("Role", "gone"), ("User", "dave"))],
    cluster_role_bindings=[binding("sre", None, ("ClusterRole", "scaler"), ("Group", "sre"))])


@pytest.mark.parametrize(("user", "groups", "request_", "allowed"), [
    ("alice", ("team-a",), Request("create", "pods", namespace="a"), True),
    ("alice", ("team-a",), Request("create", "pods", namespace="b"), False),  # its RoleBinding's namespace
    ("alice", ("team-a",), Request("list", "pods", namespace=None), False),  # every namespace: cluster grants
    ("alice", ("team-a",), Request("get", "pods", subresource="log", namespace="a"), True),
    ("alice", ("team-a",), Request("create", "pods", subresource="exec", namespace="a"), False),
    ("alice", ("team-a",), Request("update", "pods", namespace="a"), False),
    ("bob", (), Request("create", "pods", namespace="a"), False),  # not in the group
    ("carol", (), Request("get", "configmaps", name="settings", namespace="a"), True),
    ("carol", (), Request("get", "configmaps", name="other", namespace="a"), False),
    ("dave", (), Request("get", "pods", namespace="b"), True),  # a ClusterRole bound in one namespace
    ("dave", (), Request("get", "pods", namespace="a"), False),
    ("dave", (), Request("get", "nodes", namespace=""), False),  # ... never the cluster-scoped kinds
    ("erin", ("sre",), Request("update", "deployments", subresource="scale", namespace="z"), True),
    ("erin", ("sre",), Request("update", "deployments", namespace="z"), False),
])
def test_bindings_grant_their_roles_rules_where_they_hold(user: str, groups: tuple[str, ...],
                                                         request_: Request, allowed: bool) -> None:
    decision = BOOK.decide(user, groups, request_)
    assert decision.allowed is allowed, decision.reason
    if allowed:
        assert decision.reason.startswith("allowed by ")
    else:
        assert request_.verb in decision.reason and request_.resource in decision.reason


def test_a_binding_to_a_missing_role_grants_nothing_and_rules_for_lists_what_holds() -> None:
    assert BOOK.rules_for("dave", (), "a") == []
    assert BOOK.role_rules("Role", "a", "gone") is None
    assert BOOK.rules_for("alice", ("team-a",), "a")[0].resources == ("pods",)


# --- the built-in roles: exactly the four fixed roles -------------------------------------------

REPORTS = ("heartbeat", "probes", "runtime-events", "metrics")
SUBRESOURCE_REQUESTS = [("get", "Pod", "log"), ("create", "Pod", "exec"), ("create", "Pod", "portforward"),
                        ("create", "Pod", "eviction"),
                        *[(verb, kind, "scale") for kind in ("Deployment", "ReplicaSet")
                          for verb in ("get", "update", "patch")],
                        *[("update", "Node", r) for r in REPORTS],
                        ("update", "Secret", "encryption"), ("get", None, None), ("apply", None, None)]


def _every_request_the_api_makes() -> list[tuple[str, str | None, str | None]]:
    kinds = [k for k in KINDS if k not in RBAC_KINDS]
    plain = [(verb, kind, None) for kind in kinds
             for verb in ("get", "list", "watch", "create", "update", "patch", "delete")]
    status = [(verb, kind, "status") for kind in kinds for verb in ("get", "update", "patch")]
    return plain + status + SUBRESOURCE_REQUESTS


@pytest.mark.parametrize("role_", ["admin", "operator", "viewer", "agent"])
def test_the_built_in_roles_decide_as_the_fixed_roles_did(role_: str) -> None:
    who, checked = Principal("h1", role_), 0
    for (verb, kind, sub), name, node in itertools.product(_every_request_the_api_makes(), (None, "x", "h1"),
                                                           (None, "h1")):
        expected = fixed_role_allows(role_, "h1", verb, kind, name, sub, node)
        for namespace in ((None, "a") if kind and KINDS[kind].namespaced else (None,)):
            got = decide(who, verb, kind, name, subresource=sub, node=node, namespace=namespace)
            assert got.allowed is expected, (verb, kind, sub, name, node, namespace, got.reason)
            checked += 1
    assert checked > 1500


def test_only_cluster_admin_sees_secret_values_and_nobody_else_writes_rbac() -> None:
    assert sees_secret_values(Principal("a", "admin"), "default")
    for role_ in ("operator", "viewer", "agent"):
        assert not sees_secret_values(Principal("x", role_), "default")
        assert not decide(Principal("x", role_), "create", "RoleBinding", namespace="a").allowed
        assert not decide(Principal("x", role_), "update", "ClusterRole", "view").allowed
    assert decide(Principal("x", "viewer"), "list", "ClusterRole").allowed  # reads them, as every object


def test_a_user_in_a_role_group_is_that_role_and_groups_alone_grant_nothing_built_in() -> None:
    assert decide(Principal("g", None, ("system:masters",)), "delete", "Namespace", "x").allowed
    nobody = Principal("n", None, ("team-a",))
    assert not decide(nobody, "list", "Pod").allowed
    assert decide(nobody, "get", None).allowed  # discovery: the cluster's status, the API document
    assert not decide(nobody, "apply", None).allowed


def test_an_agent_stays_confined_to_its_node_whatever_its_groups() -> None:
    agent = Principal("h1", None, ("system:nodes", "system:masters"))
    assert decide(agent, "update", "Node", "h1", subresource="status").allowed
    assert not decide(agent, "update", "Node", "h2", subresource="status").allowed
    assert decide(agent, "list", "Pod", node="h1").allowed
    assert decide(agent, "list", "Pod").allowed  # every pod, another node's as a peer alone (auth.peer_view)
    assert not decide(agent, "get", "Pod", "p", namespace="default").allowed
    assert not decide(agent, "create", "Pod", "p", subresource="exec", namespace="default").allowed
    assert not decide(agent, "get", "Secret", "s", namespace="default").allowed


def test_the_built_ins_are_shown_as_defaults() -> None:
    names = {o["metadata"]["name"] for o in builtin_objects("ClusterRole")}
    assert names == {"cluster-admin", "berth-operator", "view"}
    for obj in builtin_objects("ClusterRole") + builtin_objects("ClusterRoleBinding"):
        assert obj["metadata"]["labels"] == {"berth.io/bootstrapping": "rbac-defaults"}
        validate_object(obj)  # what the API shows is a valid object of its kind


# --- escalation's cover -------------------------------------------------------------------------

@pytest.mark.parametrize(("owner", "wanted", "covered"), [
    ([Rule(("*",), ("*",), ("*",))], Rule(CORE, ("pods",), ("create",)), True),
    ([Rule(CORE, ("pods",), ("get", "list"))], Rule(CORE, ("pods",), ("get",)), True),
    ([Rule(CORE, ("pods",), ("get",))], Rule(CORE, ("pods",), ("get", "delete")), False),
    ([Rule(CORE, ("pods",), ("get",))], Rule(CORE, ("*",), ("get",)), False),  # a wildcard needs one
    ([Rule(CORE, ("pods",), ("get",))], Rule(("*",), ("pods",), ("get",)), False),
    ([Rule(CORE, ("*/scale",), ("get",))], Rule(CORE, ("deployments/scale",), ("get",)), True),
    ([Rule(CORE, ("pods",), ("get",), ("a",))], Rule(CORE, ("pods",), ("get",), ("a",)), True),
    ([Rule(CORE, ("pods",), ("get",), ("a",))], Rule(CORE, ("pods",), ("get",)), False),
    ([Rule(("berth",), ("pods",), ("get",))], Rule(CORE, ("pods",), ("get",)), True),
    ([Rule(CORE, ("pods",), ("*",))], Rule(CORE, ("pods",), ("get", "escalate")), True),
])
def test_a_role_is_covered_only_by_rules_granting_all_it_grants(owner: list[Rule], wanted: Rule,
                                                               covered: bool) -> None:
    assert covers(owner, wanted) is covered


# --- the kinds ---------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "field"), [
    (role("r", "a", rule(["pod"], ["get"])), "rules[0]"),
    (role("r", "a", rule(["pods"], ["gett"])), "rules[0].verbs[0]"),
    (role("r", "a", rule(["pods/scale"], ["get"])), "rules[0]"),
    (role("r", "a", rule(["roles"], ["get"])), "rules[0]"),  # RBAC's kinds are in their own group
    (role("r", "a", rule(["pods"], ["get"], groups=["apps"])), "rules[0].apiGroups[0]"),
    (role("r", "a", {**rule(["pods"], ["get"]), "nonResourceURLs": ["/x"]}), "rules[0].nonResourceURLs"),
    ({**binding("b", "a", ("Role", "r"), ("User", "u")), "roleRef": {"kind": "Thing", "name": "r"}},
     "roleRef.kind"),
    (binding("b", None, ("Role", "r"), ("User", "u")), "roleRef.kind"),  # ClusterRoles only
    ({**binding("b", "a", ("Role", "r")), "subjects": [{"kind": "Robot", "name": "x"}]}, "subjects[0].kind"),
])
def test_rbac_objects_are_validated_naming_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as refused:
        validate_object(document)
    assert refused.value.status == 400 and refused.value.field == field, refused.value.message


def test_rbac_objects_take_kubernetes_api_version() -> None:
    rules = rule(["pods", "*/scale", "pods/log"], ["*"], groups=["", "berth"])
    obj = validate_object({**role("r", "a", rules),
                           "apiVersion": "rbac.authorization.k8s.io/v1"})
    assert obj["apiVersion"] == "rbac.authorization.k8s.io/v1" and obj["rules"][0]["verbs"] == ["*"]
    rb = validate_object({**binding("b", "a", ("ClusterRole", "view"), ("Group", "team-a")),
                          "apiVersion": "rbac.authorization.k8s.io/v1"})
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"


# --- the tokens file ----------------------------------------------------------------------

def test_a_token_may_name_groups_without_a_role() -> None:
    book = TokenBook([{"name": "alice", "groups": ["team-a"], "sha256": digest("t1")},
                      {"name": "olga", "role": "operator", "groups": ["team-b"], "sha256": digest("t2")}])
    alice = book.authenticate("Bearer t1")
    assert alice.role is None and alice.all_groups == ("team-a", "system:authenticated")
    assert book.authenticate("Bearer t2").all_groups == ("berth:operators", "team-b", "system:authenticated")
    for bad in ({"name": "x", "sha256": digest("t")}, {"name": "x", "groups": "team", "sha256": digest("t")},
                {"name": "x", "groups": [""], "sha256": digest("t")},
                {"name": "x", "role": "root", "sha256": digest("t")}):
        with pytest.raises(ValueError):
            TokenBook([bad])


# --- the cache follows the store --------------------------------------------------------------

class FakeStore:
    """What RbacCache reads of a Store; objects added without telling the listener until `tell`."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.listeners: list[Any] = []
        self.snapshots_loaded = 0
        self.reads = 0

    def list(self, kind: str) -> list[dict[str, Any]]:
        return self.objects.get(kind, [])

    def read(self, reader: Any) -> tuple[Any, int]:
        self.reads += 1
        return reader(self), 0

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def tell(self, *kinds: str) -> None:
        for listener in self.listeners:
            listener([SimpleNamespace(kind=kind) for kind in kinds])


def test_the_cache_keeps_decisions_until_the_store_changes_rbac_objects() -> None:
    store = FakeStore()
    cache = RbacCache(store)
    alice = Principal("alice", None, ("team-a",))
    asked = request_of("create", "Pod", None, None, "a")

    def ask() -> bool:
        return cache.decide(("alice", "create-pods-a"), lambda book: book.decide(
            alice.name, alice.all_groups, asked)).allowed

    assert not ask()
    store.objects = {"Role": [role("pod-writer", "a", rule(["pods"], ["create"]))],
                     "RoleBinding": [binding("devs", "a", ("Role", "pod-writer"), ("Group", "team-a"))]}
    assert not ask()  # nothing told: the decision is the cache's
    reads = store.reads
    store.tell("Pod", "ConfigMap")
    assert not ask() and store.reads == reads  # other kinds change nothing
    store.tell("Pod", "RoleBinding")
    assert ask() and store.reads == reads + 1  # rebuilt once
    assert ask() and store.reads == reads + 1
    store.objects = {}
    store.snapshots_loaded += 1  # a snapshot replaced the state: no event told it
    assert not ask()


def test_a_rebuild_parses_only_the_role_versions_it_has_not_seen() -> None:
    writer = {**role("w", "a", rule(["pods"], ["get"])), "metadata": {"name": "w", "namespace": "a",
                                                                     "resourceVersion": 4}}
    first = RuleBook([writer])
    again = RuleBook([writer], parsed=first.parsed)
    assert again.role_rules("Role", "a", "w") is first.role_rules("Role", "a", "w")
    changed = {**writer, "metadata": {**writer["metadata"], "resourceVersion": 9},
               "rules": [rule(["pods"], ["list"])]}
    assert RuleBook([changed], parsed=first.parsed).role_rules("Role", "a", "w")[0].verbs == ("list",)


# --- escalation and the other rules of RBAC's writes --------------------------------------------

OPERATOR = Principal("olga", "operator")


def test_a_role_may_grant_only_what_its_writer_holds_there() -> None:
    held = role("r", "a", rule(["pods", "pods/exec"], ["get", "create"]))
    admit_rbac(validate_object(held), OPERATOR, None)
    for wider, field in ((rule(["secrets/values"], ["get"]), "rules[0]"),  # the values it never sees
                         (rule(["*"], ["get"]), "rules[0]"),  # a wildcard needs a wildcard
                         (rule(["namespaces"], ["delete"]), "rules[0]"),
                         (rule(["roles"], ["create"], groups=["rbac.authorization.k8s.io"]), "rules[0]")):
        with pytest.raises(ApiError) as refused:
            admit_rbac(validate_object(role("r", "a", wider)), OPERATOR, None)
        assert refused.value.status == 403 and refused.value.field == field
        assert "olga" in refused.value.message
    everything = cluster_role("c", rule(["*"], ["*"], groups=["*"]))
    admit_rbac(validate_object(everything), Principal("a", "admin"), None)


def test_a_binding_may_bind_only_a_role_its_writer_holds() -> None:
    pods = role("pods", "a", rule(["pods"], ["get"]))
    to_admin = validate_object(binding("b", "a", ("ClusterRole", "cluster-admin"), ("User", "olga")))
    with pytest.raises(ApiError) as refused:
        admit_rbac(to_admin, OPERATOR, None)
    assert refused.value.status == 403 and "cluster-admin" in refused.value.message
    with pytest.raises(ApiError) as missing:  # not there yet: whoever wrote it later would widen this
        admit_rbac(validate_object(binding("b", "a", ("Role", pods["metadata"]["name"]), ("User", "x"))),
                   OPERATOR, None)
    assert missing.value.status == 403 and "bind verb" in missing.value.message
    admit_rbac(to_admin, Principal("root", "admin"), None)  # cluster-admin holds everything (and bind)


def test_a_binding_keeps_its_role_names_no_service_account_and_built_ins_are_not_written() -> None:
    admin = Principal("root", "admin")
    current = validate_object(binding("b", "a", ("ClusterRole", "view"), ("Group", "g")))
    with pytest.raises(ApiError) as changed:
        admit_rbac(validate_object(binding("b", "a", ("ClusterRole", "cluster-admin"), ("Group", "g"))),
                   admin, current)
    assert (changed.value.status, changed.value.field) == (422, "roleRef")
    robot = {**binding("r", "a", ("ClusterRole", "view")),
             "subjects": [{"kind": "ServiceAccount", "name": "ci"}]}
    with pytest.raises(ApiError) as service_account:
        admit_rbac(validate_object(robot), admin, None)
    assert (service_account.value.status, service_account.value.field) == (422, "subjects[0].kind")
    with pytest.raises(ApiError) as built_in:
        admit_rbac(validate_object(cluster_role("view")), admin, None)
    assert built_in.value.status == 403 and "built in" in built_in.value.message


def test_covering_is_bounded_whatever_the_rules_hold() -> None:
    owner = [Rule(CORE, ("pods",), ("*",)), Rule(CORE, ("configmaps",), ("*",))]
    verbs = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
    names = tuple(f"n{i}" for i in range(64))
    wide = Rule(CORE, ("pods", "configmaps"), verbs, names)  # no one rule of the owner covers it whole
    assert covers(owner, wide)  # 1,024 atoms, each covered
    with pytest.raises(TooWide):
        covers(owner, wide, [1000])
    groups = ("", "berth", "*", "rbac.authorization.k8s.io")
    everything = Rule(groups, ("pods", "configmaps", "*"), verbs, names)
    assert covers([Rule(("*",), ("*",), ("*",))], everything, [0])  # covered whole: no atom counted
    biggest = {"apiGroups": ["", "berth", "*", "rbac.authorization.k8s.io"], "resourceNames": list(names),
               "resources": sorted(KINDS[k].plural for k in KINDS if k not in RBAC_KINDS),
               "verbs": [*verbs, "bind", "escalate", "*"]}
    started = time.perf_counter()
    with pytest.raises(ApiError) as refused:
        admit_rbac(validate_object(role("r", "a", *[biggest] * 256)), OPERATOR, None)
    assert refused.value.status in (403, 422) and time.perf_counter() - started < 2
